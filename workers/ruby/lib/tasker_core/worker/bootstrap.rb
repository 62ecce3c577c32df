# frozen_string_literal: true

module TaskerCore
  module Worker
    # Starts the embedded worker: the Rust runtime claims steps; Ruby threads run them.
    module Bootstrap
      # A running worker.
      class Handle
        def initialize(info, dispatcher)
          @info = info
          @dispatcher = dispatcher
          @stopped = false
          @lock = Mutex.new
        end

        # The worker's id, namespaces, and live counters.
        def status
          JSON.parse(Native.status).merge("worker_id" => @info["worker_id"], "namespaces" => @info["namespaces"])
        end

        def running?
          !@stopped && JSON.parse(Native.status)["running"] == true
        end

        # Stops claiming, lets running handlers finish (within the worker's grace period),
        # and waits until every thread is gone. Safe to call more than once.
        def shutdown!(timeout: 60)
          @lock.synchronize do
            return true if @stopped

            Native.request_shutdown
            stopped = Native.wait_stopped(timeout.to_f)
            @dispatcher.join(timeout)
            @stopped = true
            stopped
          end
        end

        # Blocks until the worker stops (a signal or #shutdown! from another thread).
        def wait
          @dispatcher.join
          self
        end
      end

      # Starts the worker. Options override the layered configuration (config/tasker,
      # TASKER_ENV, TASKER__SECTION__KEY, DATABASE_URL), as for the Rust worker:
      # - templates: directory or file of task templates (default worker.template_path)
      # - namespaces: namespaces to serve (default: those of the templates)
      # - config: one more configuration file
      # - worker_id: the name in results and transitions
      # - threads: Ruby handler threads (default worker.max_concurrent_steps)
      # - trap_signals: shut down cleanly on TERM, INT and HUP (default true)
      # Raises WorkerError, naming each one, when a step of a served template has a
      # handler.callable that resolves to no class.
      def self.start!(templates: nil, namespaces: [], config: nil, worker_id: nil, threads: nil, trap_signals: true)
        options = {
          "templates" => templates&.to_s,
          "namespaces" => Array(namespaces).map(&:to_s),
          "config" => config&.to_s,
          "worker_id" => worker_id
        }.compact
        # The worker refuses to start when a served template names a callable that
        # resolves to no class (a forgotten --require), listing every one.
        resolvable = ->(callable) { Registry.resolvable?(callable) }
        info = JSON.parse(Native.bootstrap(JSON.generate(options), resolvable))
        count = threads || info.fetch("max_concurrent_steps")
        dispatcher = Dispatcher.new(threads: count).start
        handle = Handle.new(info, dispatcher)
        install_traps(handle) if trap_signals
        handle
      end

      def self.install_traps(handle)
        %w[TERM INT HUP].each do |signal|
          Signal.trap(signal) do
            # Trap context cannot take locks; stop from a thread of its own.
            Thread.new { handle.shutdown! }
          end
        end
      end
    end
  end
end
