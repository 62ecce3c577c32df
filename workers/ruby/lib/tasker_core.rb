# frozen_string_literal: true

# Tasker workers in Ruby.
#
# Write step handlers as Ruby classes; the Rust worker runtime (loaded from the native
# extension) claims steps, extends leases, enforces timeouts and records results, and
# hands each step to a Ruby thread that runs your handler.
#
#   class Greet < TaskerCore::StepHandler
#     def execute(context)
#       { greeting: "hello #{context.task_context['name']}" }
#     end
#   end
#
#   handle = TaskerCore::Worker::Bootstrap.start!(templates: "app/tasker/tasks/templates")
#   handle.wait
require "json"

require_relative "tasker_core/version"
require_relative "tasker_core/errors"
require_relative "tasker_core/conversion"
require_relative "tasker_core/step_context"
require_relative "tasker_core/step_handler"
require_relative "tasker_core/registry"
require_relative "tasker_core/native"
require_relative "tasker_core/worker/dispatcher"
require_relative "tasker_core/worker/bootstrap"
