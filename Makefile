# The two commands a newcomer needs (see README.md):
#   make serve   — builds the host and serves examples/hello on 127.0.0.1:8888
#   make test    — builds everything and runs the whole test suite
#
# `rustup target add` runs first and on its own: RUSTUP_AUTO_INSTALL=0 means a
# toolchain file alone never installs the wasm32-wasip2 target, and rustup must
# not run while cargo is building.
#
# One build per profile: every cargo command below selects the whole workspace
# (--workspace), and the binaries run from $(TARGET_DIR)/debug or /release.
# Resolver 3 unifies features only over the packages a command selects, so
# `cargo run -p waterspout` after `cargo test --workspace` resolved other
# features (reqwest, futures-util, indexmap, …) and built wasmtime and ~100
# crates a second time. Dev-dependencies count only when tests, examples or
# benches are built: scripts/check-features.sh (`make lint`) checks that they
# change no feature of the rest (see bench/Cargo.toml).

CARGO ?= cargo
# Where cargo builds: $CARGO_TARGET_DIR if set, as cargo does.
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

.PHONY: setup tools serve test bench bench-quick bench-deps lint layers load fuzz

setup:
	rustup target add wasm32-wasip2

# The guest toolchains of the other languages, installed into .tools/ (the
# tools-LANGUAGE targets below).
tools:

# `serve --build` builds the guest in its own workspace, where
# examples/hello/waterspout.toml looks for it: not in $CARGO_TARGET_DIR.
serve: setup
	$(CARGO) build --workspace --bin waterspout
	env -u CARGO_TARGET_DIR $(TARGET_DIR)/debug/waterspout serve --build examples/hello

test: setup tools layers
	$(CARGO) test --workspace
	$(MAKE) bench-quick

lint: setup layers
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p waterspout --no-default-features -- -D warnings
	scripts/check-features.sh

# The host's layering: no module imports a layer above its own (docs/ARCHITECTURE.md).
layers:
	scripts/layers.sh

# The full benchmark (minutes): scenarios a–d, writes BENCHMARKS.md and bench/chart.svg.
# One release build of all it runs: the bench, the server it starts and
# scenario b's criterion bench (`cargo bench --workspace`).
bench: setup bench-deps
	$(CARGO) build --release --workspace --bins --bench request_path
	$(TARGET_DIR)/release/waterspout-bench $(BENCH_ARGS)

# One short pass of scenario a: a smoke test (no thresholds), part of `make test`.
# After `cargo test --workspace` this only builds the two binaries (and
# `make serve` then builds nothing).
bench-quick: bench-deps
	$(CARGO) build --workspace --bins
	$(TARGET_DIR)/debug/waterspout-bench --quick

# wrk from apt; the guests the benchmark serves, where it looks for them
# (--target-dir: not in $CARGO_TARGET_DIR).
bench-deps:
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	cd examples && $(CARGO) build --release --target wasm32-wasip2 --target-dir target
	cd tests/guests && $(CARGO) build --release --target wasm32-wasip2 --target-dir target

# The long runs of docs/SECURITY.md, outside `make test`: load (30 s, 256
# connections) and every fuzz target for FUZZ_SECONDS (nightly).
load: setup
	$(CARGO) test --workspace --test load -- --ignored --nocapture

fuzz: setup
	scripts/fuzz.sh
