# frozen_string_literal: true

module RubyExamples
  # Fails retryably until the attempt named by initialization["succeed_on_attempt"].
  class FlakyHandler < TaskerCore::StepHandler
    def execute(context)
      wanted = context.inputs.fetch("succeed_on_attempt", 2)
      if context.attempt < wanted
        raise TaskerCore::RetryableError.new("upstream busy (attempt #{context.attempt})", retry_after: 0.1)
      end

      { attempts: context.attempt, finished_at: Time.at(0).utc }
    end
  end

  # Always refuses its input.
  class RejectHandler < TaskerCore::StepHandler
    def execute(context)
      raise TaskerCore::PermanentError, "order #{context.task_context['order_id'].inspect} is not acceptable"
    end
  end
end

module RubyExamples
  # Sleeps initialization["ms"] milliseconds, running the garbage collector meanwhile.
  class SlowHandler < TaskerCore::StepHandler
    def execute(context)
      ms = context.inputs.fetch("ms", 100)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + (ms / 1000.0)
      while Process.clock_gettime(Process::CLOCK_MONOTONIC) < deadline
        GC.start
        sleep 0.02
      end
      { slept_ms: ms }
    end
  end
end
