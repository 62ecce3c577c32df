# One task runner. `make test` is exactly what CI runs after the lint steps.
.PHONY: test lint fmt build ci

build:
	cargo build --bins

test:
	scripts/test.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --all-features -- -D warnings

fmt:
	cargo fmt --all

ci:
	bash .ci/run
