# frozen_string_literal: true

module TaskerCore
  # Base class of every error this gem raises.
  class Error < StandardError; end

  # Raise from a handler when another attempt may succeed (a timeout, a 503).
  # `retry_after:` (seconds) overrides the step's backoff for the next attempt.
  class RetryableError < Error
    attr_reader :retry_after

    def initialize(message = nil, retry_after: nil)
      super(message)
      @retry_after = retry_after
    end
  end

  # Raise from a handler when no attempt will succeed (bad input, a missing record).
  class PermanentError < Error; end

  # A handler's result holds a value that has no JSON form.
  class ConversionError < PermanentError; end

  # No handler class is registered or defined for a step's callable.
  class HandlerNotFoundError < PermanentError; end

  # The native extension is missing or the worker could not start.
  class WorkerError < Error; end
end
