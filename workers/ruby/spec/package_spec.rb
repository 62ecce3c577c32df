# frozen_string_literal: true

require "spec_helper"
require "tmpdir"
require "rubygems/package"
require_relative "support/tasker_e2e"

# `rake gem` in the repository, `gem install --local` into an empty GEM_HOME outside
# it, and a worker from the installed gem runs a workflow against a real server. The
# install compiles the extension from the sources the gem carries, with Cargo offline
# (crates come from the local Cargo cache, as the rest of the test build fetched them).
# TASKER_CARGO_PROFILE=debug and the workspace's target directory keep that to a
# rebuild of the project's own crates.
RSpec.describe "the packaged gem", if: ENV["DATABASE_URL"] do
  include TaskerE2E

  before(:all) do
    @tmp = Dir.mktmpdir("tasker-gem-")
    @gem_file = File.join(@tmp, "tasker_core.gem")
    out, status = Open3.capture2e({ "GEM_OUTPUT" => @gem_file }, "rake", "-f", File.join(TaskerE2E::RUBY_DIR, "Rakefile"), "gem")
    raise "rake gem failed:\n#{out}" unless status.success?
    # The crates are gathered under target/, never into the source tree.
    raise "ext/tasker_core/vendor/ was written" if File.exist?(File.join(TaskerE2E::RUBY_DIR, "ext/tasker_core/vendor"))

    @gem_home = File.join(@tmp, "gems")
    install_env = {
      "GEM_HOME" => @gem_home, "GEM_PATH" => @gem_home, "CARGO_NET_OFFLINE" => "true",
      "TASKER_CARGO_PROFILE" => "debug",
      "CARGO_TARGET_DIR" => ENV.fetch("CARGO_TARGET_DIR", File.join(TaskerE2E::ROOT, "target")),
      "RUBYLIB" => nil, "RUBYOPT" => nil
    }
    out, status = Open3.capture2e(install_env, "gem", "install", "--local", "--no-document", @gem_file, chdir: @tmp)
    raise "gem install failed:\n#{out}" unless status.success?

    # The installed gem's worker, from a directory outside the repository, with the
    # example app copied there and no path into the repository's lib/.
    @app = File.join(@tmp, "app")
    FileUtils.cp_r(File.join(TaskerE2E::RUBY_DIR, "app"), @app)
    @gem_env = { "GEM_HOME" => @gem_home, "GEM_PATH" => @gem_home, "PATH" => ENV.fetch("PATH"),
                 "HOME" => ENV.fetch("HOME", @tmp) }
    start_server
    @worker, @worker_log = spawn_logged(
      "packaged-worker", @env.merge(@gem_env), File.join(@gem_home, "bin", "tasker-ruby-worker"),
      "--templates", File.join(@app, "tasker/tasks/templates"), "--require", File.join(@app, "tasker/handlers.rb"),
      chdir: @tmp, unsetenv_others: true
    )
    wait_for(@worker_log, "worker running as")
  end

  after(:all) do
    stop_processes(@worker)
    FileUtils.rm_rf(@tmp) if @tmp
  end

  it "carries the Rust sources it compiles and nothing built" do
    files = Gem::Package.new(@gem_file).spec.files
    expect(files).to include("ext/tasker_core/extconf.rb", "ext/tasker_core/src/lib.rs",
                             "ext/tasker_core/vendor/Cargo.toml", "ext/tasker_core/vendor/Cargo.lock",
                             "ext/tasker_core/vendor/tasker_core/Cargo.toml",
                             "ext/tasker_core/vendor/tasker-worker/src/lib.rs",
                             "ext/tasker_core/vendor/pgmq-notify/src/lib.rs")
    expect(files.grep(%r{\Aext/tasker_core/vendor/migrations/.+\.sql\z})).not_to be_empty
    expect(files.grep(%r{/target/|\.so\z|/Makefile\z})).to be_empty
    expect(files.grep(%r{\A(ext/tasker_core/vendor/)?(tasker-orchestration|tasker-client|tests)/})).to be_empty
  end

  it "loads the native extension from the installed gem" do
    loaded, status = Open3.capture2e(@gem_env, RbConfig.ruby, "-e",
                                     'require "tasker_core"; puts $LOADED_FEATURES.grep(/tasker_core\.so\z/)',
                                     chdir: @tmp, unsetenv_others: true)
    expect(status.success?).to be(true), loaded
    expect(loaded.strip).to start_with(@gem_home)
  end

  it "runs a workflow with the installed gem's worker, outside the repository" do
    done = wait_until(create("ruby_examples", "linear_workflow", { even_number: 2 }), "complete")
    expect(result(done, "linear_step_4")["result"]).to eq(65_536)
  end
end
