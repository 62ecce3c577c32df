# frozen_string_literal: true

# Loads the native extension (TaskerCore::Native). Build it with
# `rake -f workers/ruby/Rakefile compile`.
begin
  require "tasker_core/tasker_core"
rescue LoadError => e
  raise TaskerCore::WorkerError,
        "the tasker_core native extension is not built (#{e.message}); " \
        "run `rake -f workers/ruby/Rakefile compile` (needs Rust, ruby-dev and libclang)"
end
