# The two commands a newcomer needs (see README.md):
#   make serve   — builds everything and serves examples/hello on 127.0.0.1:8888
#   make test    — builds everything and runs the whole test suite
#
# `rustup target add` runs first and on its own: RUSTUP_AUTO_INSTALL=0 means a
# toolchain file alone never installs the wasm32-wasip2 target, and rustup must
# not run while cargo is building.

CARGO ?= cargo

.PHONY: setup serve test bench bench-quick bench-deps lint load fuzz tools tools-c

setup:
	rustup target add wasm32-wasip2

serve: setup
	$(CARGO) run -p waterspout -- serve --build examples/hello

test: setup tools
	$(CARGO) test --workspace
	$(MAKE) bench-quick

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The full benchmark (minutes): scenarios a–d, writes BENCHMARKS.md and bench/chart.svg.
bench: setup bench-deps
	$(CARGO) build --release -p waterspout -p waterspout-bench
	$(CARGO) run --release -p waterspout-bench -- $(BENCH_ARGS)

# One short pass of scenario a: a smoke test (no thresholds), part of `make test`.
bench-quick: bench-deps
	$(CARGO) run -p waterspout-bench -- --quick

# wrk from apt; the guests the benchmark serves.
bench-deps:
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd examples && $(CARGO) build --release --target wasm32-wasip2
	cd tests/guests && $(CARGO) build --release --target wasm32-wasip2

# The long runs of docs/SECURITY.md, outside `make test`: load (30 s, 256
# connections) and every fuzz target for FUZZ_SECONDS (nightly).
load: setup
	$(CARGO) test -p waterspout-tests --test load -- --ignored --nocapture

fuzz: setup
	scripts/fuzz.sh

# The guest toolchains of the other languages, installed by the project into
# .tools/ (the test build compiles every example from source with them).
tools: tools-c

# C (guest-sdk/c): Debian's clang 19, lld, wasi-libc and wasm32 compiler-rt;
# wit-bindgen and wasm-tools from crates.io into .tools/cargo (a few minutes,
# once); the WASI preview1 reactor adapter for a wasmtime 48 host, written out
# of its crate by guest-sdk/c/adapter into .tools/.
TOOLS := $(CURDIR)/.tools
C_APT := clang-19 lld-19 wasi-libc libclang-rt-19-dev-wasm32
WIT_BINDGEN_VERSION := 0.63.0
WASM_TOOLS_VERSION := 1.263.0
ADAPTER_VERSION := 48.0.8
tools-c:
	@dpkg -s $(C_APT) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(C_APT); }
	@$(TOOLS)/cargo/bin/wit-bindgen --version 2>/dev/null | grep -qF ' $(WIT_BINDGEN_VERSION)' || \
		$(CARGO) install --locked --root $(TOOLS)/cargo wit-bindgen-cli@$(WIT_BINDGEN_VERSION)
	@$(TOOLS)/cargo/bin/wasm-tools --version 2>/dev/null | grep -qF ' $(WASM_TOOLS_VERSION)' || \
		$(CARGO) install --locked --root $(TOOLS)/cargo wasm-tools@$(WASM_TOOLS_VERSION)
	@test -s $(TOOLS)/wasi_snapshot_preview1.reactor-$(ADAPTER_VERSION).wasm || \
		CARGO_TARGET_DIR=$(TOOLS)/adapter-target $(CARGO) run --quiet --locked --release \
			--manifest-path guest-sdk/c/adapter/Cargo.toml -- $(TOOLS)/wasi_snapshot_preview1.reactor-$(ADAPTER_VERSION).wasm
