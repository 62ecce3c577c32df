# frozen_string_literal: true

module TaskerCore
  # What a handler may read about the step it runs; the same data as the Rust
  # StepContext.
  class StepContext
    attr_reader :task_uuid, :step_uuid, :step_name, :namespace, :task_name, :task_version,
                :correlation_id, :attempt, :max_attempts, :task_context, :inputs,
                :dependency_results, :parents, :callable

    def initialize(data)
      @task_uuid = data.fetch("task_uuid")
      @step_uuid = data.fetch("step_uuid")
      @step_name = data.fetch("step_name")
      @namespace = data.fetch("namespace")
      @task_name = data.fetch("task_name")
      @task_version = data.fetch("task_version")
      @correlation_id = data.fetch("correlation_id")
      @attempt = data.fetch("attempt")
      @max_attempts = data.fetch("max_attempts")
      @task_context = data.fetch("task_context")
      @inputs = data.fetch("initialization")
      @dependency_results = data.fetch("dependency_results")
      @parents = data.fetch("parents")
      @callable = data.fetch("callable")
    end

    # The result of an ancestor step, by name (nil if there is none).
    def dependency_result(name)
      dependency_results[name.to_s]
    end

    # A field inside an ancestor's result: dependency_field("load", "user", "id").
    def dependency_field(name, *path)
      path.reduce(dependency_result(name)) do |value, key|
        case value
        when Hash then value[key.to_s]
        when Array then key.is_a?(Integer) ? value[key] : nil
        end
      end
    end

    # Whether this attempt is a retry.
    def retry?
      attempt > 1
    end

    # The step's handler.initialization (alias of #inputs).
    def initialization
      inputs
    end
  end
end
