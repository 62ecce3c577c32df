# frozen_string_literal: true

module TaskerCore
  # Base class of step handlers. Implement #execute(context) and return a Hash (or any
  # value Conversion accepts): that is the step's result. Raise RetryableError or
  # PermanentError to fail; any other exception is a retryable failure that records the
  # exception's class, message and backtrace.
  class StepHandler
    def execute(_context)
      raise NotImplementedError, "#{self.class} must implement #execute(context)"
    end
  end
end
