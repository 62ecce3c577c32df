# frozen_string_literal: true

module TaskerCore
  # Finds the handler class for a template step's `handler.callable`: an explicit
  # registration first, then the constant of that name ("Payments::ValidateOrderHandler").
  module Registry
    @handlers = {}
    @lock = Mutex.new

    class << self
      def register(name, klass)
        raise ArgumentError, "#{klass.inspect} is not a class" unless klass.is_a?(Class)

        @lock.synchronize { @handlers[name.to_s] = klass }
      end

      def registered
        @lock.synchronize { @handlers.dup }
      end

      def resolve(callable)
        klass = @lock.synchronize { @handlers[callable] }
        klass ||= constant(callable)
        raise HandlerNotFoundError, "no handler class #{callable} is registered or defined in this worker" unless klass
        raise HandlerNotFoundError, "#{callable} is a #{klass.class}, not a class" unless klass.is_a?(Class)

        klass
      end

      # Whether #resolve finds a class for the callable (the worker checks every callable
      # of the templates it serves at start, and refuses to start when one has none).
      def resolvable?(callable)
        resolve(callable)
        true
      rescue HandlerNotFoundError
        false
      end

      def clear!
        @lock.synchronize { @handlers.clear }
      end

      private

      def constant(name)
        return nil unless name.match?(/\A(::)?[A-Z]\w*(::[A-Z]\w*)*\z/)

        Object.const_get(name)
      rescue NameError
        nil
      end
    end
  end

  # Registers a handler class under a name (when it differs from the class's name).
  def self.register_handler(name, klass)
    Registry.register(name, klass)
  end
end
