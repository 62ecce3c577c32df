#!/usr/bin/env bash
# The project's test command (`make test`): builds the binaries the end-to-end tests
# start, runs every Rust test, then builds the Ruby gem's native extension and runs its
# specs. When DATABASE_URL is unset it starts a throwaway PostgreSQL cluster under
# target/ and removes it afterwards.
#
# Extra arguments go to `cargo test` (and skip the Ruby specs), e.g.
# `scripts/test.sh -p tasker-shared`.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${DATABASE_URL:-}" ]; then
  pg_dir=target/tasker-test-pg
  DATABASE_URL=$(scripts/pg-ephemeral.sh start "$pg_dir")
  export DATABASE_URL
  trap 'scripts/pg-ephemeral.sh stop "$pg_dir"' EXIT
  echo "test: started a throwaway PostgreSQL at $DATABASE_URL" >&2
fi

cargo build --bins
cargo test --all-features "$@"

if [ $# -gt 0 ]; then
  exit 0
fi

ruby_ready() {
  command -v ruby >/dev/null 2>&1 && command -v rspec >/dev/null 2>&1 && command -v psql >/dev/null 2>&1 \
    && ruby -rrbconfig -e 'exit(File.exist?(File.join(RbConfig::CONFIG["rubyhdrdir"], "ruby.h")))'
}
if ruby_ready; then
  TASKER_CARGO_PROFILE=debug rake -f workers/ruby/Rakefile compile
  rspec -I workers/ruby/lib --default-path workers/ruby/spec workers/ruby/spec
elif [ "${CI:-}" = "true" ]; then
  echo "test: Ruby, its headers, rspec and psql are required in CI" >&2
  exit 1
else
  echo "test: skipped the Ruby gem's specs: install ruby-dev, libclang-dev, ruby-rspec and postgresql-client to run them" >&2
fi
