# The two commands a newcomer needs (see README.md):
#   make serve   — builds everything and serves examples/hello on 127.0.0.1:8888
#   make test    — builds everything and runs the whole test suite
#
# `rustup target add` runs first and on its own: RUSTUP_AUTO_INSTALL=0 means a
# toolchain file alone never installs the wasm32-wasip2 target, and rustup must
# not run while cargo is building.

CARGO ?= cargo

.PHONY: setup serve test bench bench-quick fuzz lint

setup:
	rustup target add wasm32-wasip2

serve: setup
	$(CARGO) run -p waterspout -- serve --build examples/hello

test: setup
	$(CARGO) test --workspace

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: setup
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	$(CARGO) build --release -p waterspout-bench
	$(CARGO) run --release -p waterspout -- build examples/hello
	$(CARGO) run --release -p waterspout-bench -- $(BENCH_ARGS)
