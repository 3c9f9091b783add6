# The two commands a newcomer needs (see README.md):
#   make serve   — builds everything and serves examples/hello on 127.0.0.1:8888
#   make test    — builds everything and runs the whole test suite
#
# `rustup target add` runs first and on its own: RUSTUP_AUTO_INSTALL=0 means a
# toolchain file alone never installs the wasm32-wasip2 target, and rustup must
# not run while cargo is building.

CARGO ?= cargo

.PHONY: setup serve test bench bench-quick bench-deps lint load fuzz tools tools-python

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

# Guest toolchains for the SDKs in other languages, installed into .tools/ at
# the repository root (never system-wide).
tools: tools-python

# componentize-py for guest-sdk/python (`guest-sdk/python/build APP.py OUT.wasm`).
PYTHON ?= python3
COMPONENTIZE_PY_VERSION = 0.25.1
tools-python: .tools/python/.installed-$(COMPONENTIZE_PY_VERSION)

.tools/python/.installed-$(COMPONENTIZE_PY_VERSION):
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || (apt-get update -qq && apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv .tools/python
	.tools/python/bin/pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)
	touch $@
