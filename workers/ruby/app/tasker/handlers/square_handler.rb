# frozen_string_literal: true

module RubyExamples
  # Squares the product of its parents' results, or the task's even_number at the root.
  class SquareHandler < TaskerCore::StepHandler
    def execute(context)
      input =
        if context.parents.empty?
          context.task_context.fetch("even_number") do
            raise TaskerCore::PermanentError, "the task context needs an even_number"
          end
        else
          context.parents.map { |name| context.dependency_result(name) }.reduce(1, :*)
        end
      raise TaskerCore::PermanentError, "expected a number, got #{input.inspect}" unless input.is_a?(Numeric)

      input * input
    end
  end
end
