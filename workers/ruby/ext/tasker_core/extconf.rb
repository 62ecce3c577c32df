# frozen_string_literal: true

# Writes a Makefile that builds the extension with Cargo (the rb_sys gem and
# rake-compiler are not needed): `make` builds and copies tasker_core.so next to this
# file, `make install` copies it under $(sitearchdir)/tasker_core/, where RubyGems
# collects it.
#
# An installed gem builds vendor/Cargo.toml, a workspace of the crates the gem carries
# (see tasks/vendor_crates.rb); inside the repository, Cargo.toml, a member of the
# Tasker workspace. TASKER_CARGO_PROFILE=debug builds without --release;
# CARGO_TARGET_DIR and CARGO_NET_OFFLINE are honoured as by any cargo build. A target
# directory inside the installed gem (the default for a packaged gem) is removed after
# `make install`, so that an installed gem does not keep gigabytes of build output.
require "rbconfig"

dlext = RbConfig::CONFIG["DLEXT"]
libext = RbConfig::CONFIG["host_os"] =~ /darwin/ ? "dylib" : "so"
sitearch = RbConfig::CONFIG["sitearchdir"]
here = __dir__
# Inside the repository, vendor/ may be a stale copy left by an earlier `gem build`:
# build the workspace member then, and the vendored workspace only in an installed gem.
root_manifest = File.expand_path("../../../../Cargo.toml", here)
in_workspace = File.file?(root_manifest) && File.read(root_manifest).include?("workers/ruby/ext/tasker_core")
vendored = File.file?(File.join(here, "vendor", "Cargo.toml"))
manifest = vendored && !in_workspace ? "vendor/Cargo.toml" : "Cargo.toml"
profile = ENV.fetch("TASKER_CARGO_PROFILE", "release")
unless %w[release debug].include?(profile)
  abort "tasker_core: TASKER_CARGO_PROFILE must be release or debug, not #{profile.inspect}"
end
release_flag = profile == "release" ? "--release" : ""
target_dir = "$$(cd #{here} && cargo metadata --format-version 1 --no-deps --manifest-path #{manifest} " \
             "| ruby -rjson -e 'puts JSON.parse($$stdin.read)[\"target_directory\"]')"

File.write(File.join(here, "Makefile"), <<~MAKE)
  sitearchdir ?= #{sitearch}
  all:
  \tcd #{here} && cargo build #{release_flag} --manifest-path #{manifest} -p tasker_core
  \tcp #{target_dir}/#{profile}/libtasker_core.#{libext} #{here}/tasker_core.#{dlext}
  install: all
  \tmkdir -p $(DESTDIR)$(sitearchdir)/tasker_core
  \tcp #{here}/tasker_core.#{dlext} $(DESTDIR)$(sitearchdir)/tasker_core/tasker_core.#{dlext}
  \ttarget=#{target_dir}; case "$$target" in #{here}/vendor/*) rm -rf "$$target";; esac
  clean:
  \trm -f #{here}/tasker_core.#{dlext}
MAKE
