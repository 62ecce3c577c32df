# frozen_string_literal: true

require_relative "lib/tasker_core/version"

Gem::Specification.new do |spec|
  spec.name = "tasker_core"
  spec.version = TaskerCore::VERSION
  spec.summary = "Ruby step handlers for Tasker workflows, run by the Rust worker runtime"
  spec.description = "Write Tasker step handlers in Ruby; the embedded Rust runtime claims steps " \
                     "from PostgreSQL queues, extends leases, enforces timeouts and records results."
  spec.license = "MIT"
  spec.authors = ["Tasker contributors"]
  spec.required_ruby_version = ">= 3.0"
  spec.files = Dir["lib/**/*.rb", "bin/*", "ext/tasker_core/extconf.rb", "README.md", "CHANGELOG.md"]
  spec.bindir = "bin"
  spec.executables = ["tasker-ruby-worker"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/tasker_core/extconf.rb"]
end
