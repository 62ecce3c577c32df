# frozen_string_literal: true

require_relative "lib/tasker_core/version"
require_relative "tasks/vendor_crates"

# The gem carries the workspace crates its native extension needs
# (ext/tasker_core/vendor/), so that `gem install` compiles it anywhere with a Rust
# toolchain, Ruby's headers and libclang. They are gathered only when the gem is
# packaged, in a stage under target/ruby-gem/: `rake -f workers/ruby/Rakefile gem`.
gem_root = __dir__
if TaskerCoreBuild::Vendor.in_workspace?(gem_root)
  raise "tasker_core: inside the Tasker repository, build the gem with `rake -f workers/ruby/Rakefile gem` " \
        "(it stages the gem and the crates it carries under target/ruby-gem/)"
end

Gem::Specification.new do |spec|
  spec.name = "tasker_core"
  spec.version = TaskerCore::VERSION
  spec.summary = "Ruby step handlers for Tasker workflows, run by the Rust worker runtime"
  spec.description = "Write Tasker step handlers in Ruby; the embedded Rust runtime claims steps " \
                     "from PostgreSQL queues, extends leases, enforces timeouts and records results."
  spec.license = "MIT"
  spec.authors = ["Tasker contributors"]
  spec.homepage = "https://example.invalid/tasker"
  spec.required_ruby_version = ">= 3.0"
  spec.files = Dir.chdir(gem_root) do
    Dir["lib/**/*.rb", "bin/*", "README.md", "CHANGELOG.md", "tasks/*.rb",
        "ext/tasker_core/{extconf.rb,Cargo.toml}", "ext/tasker_core/src/**/*.rs",
        "ext/tasker_core/vendor/**/*"].select { |f| File.file?(f) }.sort
  end
  spec.bindir = "bin"
  spec.executables = ["tasker-ruby-worker"]
  spec.require_paths = ["lib"]
  spec.extensions = ["ext/tasker_core/extconf.rb"]
end
