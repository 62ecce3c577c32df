# frozen_string_literal: true

# Writes a Makefile that builds the extension with Cargo (the rb_sys gem and
# rake-compiler are not needed): `make` builds and copies tasker_core.so next to this
# file, `make install` copies it to RubyGems' extension directory.
require "rbconfig"

dlext = RbConfig::CONFIG["DLEXT"]
libext = RbConfig::CONFIG["host_os"] =~ /darwin/ ? "dylib" : "so"
sitearch = RbConfig::CONFIG["sitearchdir"]
here = __dir__

File.write(File.join(here, "Makefile"), <<~MAKE)
  RUBYARCHDIR ?= #{sitearch}
  all:
  \tcd #{here} && cargo build --release --manifest-path Cargo.toml
  \tcp $$(cd #{here} && cargo metadata --format-version 1 --no-deps | ruby -rjson -e 'puts JSON.parse($$stdin.read)["target_directory"]')/release/libtasker_core.#{libext} #{here}/tasker_core.#{dlext}
  install: all
  \tmkdir -p $(DESTDIR)$(RUBYARCHDIR)/tasker_core
  \tcp #{here}/tasker_core.#{dlext} $(DESTDIR)$(RUBYARCHDIR)/tasker_core/tasker_core.#{dlext}
  clean:
  \trm -f #{here}/tasker_core.#{dlext}
MAKE
