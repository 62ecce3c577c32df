# frozen_string_literal: true

module TaskerCore
  module Worker
    # Ruby threads that run handlers. Each waits for the next step in a native call that
    # releases the GVL (no polling), runs the handler, and hands the outcome back.
    class Dispatcher
      BACKTRACE_LINES = 20

      def initialize(threads:)
        @count = threads
        @threads = []
      end

      def start
        @threads = Array.new(@count) do |i|
          Thread.new do
            Thread.current.name = "tasker-handler-#{i}"
            run_loop
          end
        end
        self
      end

      def join(timeout = nil)
        deadline = timeout && (Process.clock_gettime(Process::CLOCK_MONOTONIC) + timeout)
        @threads.each do |t|
          remaining = deadline && [deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC), 0].max
          t.join(remaining)
        end
        @threads.none?(&:alive?)
      end

      def alive?
        @threads.any?(&:alive?)
      end

      private

      def run_loop
        while (event = Native.next_step)
          self.class.handle(event)
        end
      end

      # Runs one step event (JSON from the native side) and reports its outcome.
      def self.handle(event_json)
        event = JSON.parse(event_json)
        id = event.fetch("event_id")
        reported = false
        begin
          context = StepContext.new(event.fetch("context"))
          handler = Registry.resolve(context.callable).new
          result = Conversion.dump(handler.execute(context))
          Native.complete_step(id, result)
          reported = true
        rescue RetryableError => e
          reported = fail_step(id, e, "retryable_error", true, retry_after: e.retry_after)
        rescue HandlerNotFoundError => e
          reported = fail_step(id, e, "handler_not_found", false)
        rescue ConversionError => e
          reported = fail_step(id, e, "conversion_error", false)
        rescue PermanentError => e
          reported = fail_step(id, e, "permanent_error", false)
        rescue StandardError, ScriptError => e
          reported = fail_step(id, e, e.class.name, true)
        ensure
          # Interrupt, SignalException, Thread#kill: tell the worker the attempt did not
          # finish, so it is retried rather than left waiting.
          unless reported
            Native.fail_step(id, JSON.generate("message" => "the Ruby handler was interrupted",
                                               "error_type" => "interrupted", "retryable" => true))
          end
        end
      end

      def self.fail_step(id, error, error_type, retryable, retry_after: nil)
        failure = {
          "message" => error.message.to_s,
          "error_type" => error_type,
          "error_class" => error.class.name,
          "retryable" => retryable,
          "backtrace" => (error.backtrace || []).first(BACKTRACE_LINES)
        }
        failure["retry_after_ms"] = (retry_after.to_f * 1000).round if retry_after
        Native.fail_step(id, JSON.generate(failure))
        true
      end
    end
  end
end
