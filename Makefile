# The two commands a newcomer needs (see README.md):
#   make serve   — builds the host and serves examples/hello on 127.0.0.1:8888
#   make test    — builds everything and runs the whole test suite
#
# `rustup target add` runs first and on its own: RUSTUP_AUTO_INSTALL=0 means a
# toolchain file alone never installs the wasm32-wasip2 target (nor
# wasm32-unknown-unknown, the lean build of examples/hello), and rustup must
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

.PHONY: setup tools tools-c tools-js tools-python tools-browser tools-redis tools-nginx serve test bench bench-quick bench-deps lint layers load fuzz

setup:
	rustup target add wasm32-wasip2 wasm32-unknown-unknown

# The guest toolchains of the other languages, installed by the project into
# .tools/ (the test build compiles every example from source with them): the
# tools-LANGUAGE targets below.
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

# The full benchmark (about an hour): scenarios a–j, writes BENCHMARKS.md and
# bench/chart.svg (rewritten after each scenario, so a failure keeps the ones before).
# One release build of all it runs: the bench, the server it starts and
# scenario b's criterion bench (`cargo bench --workspace`). Scenario e serves
# the hello of each guest language, built here from source by the `build`
# line of its manifest (Python ~30 s, JavaScript ~55 s). Only some scenarios:
# `make bench BENCH_ARGS=--scenarios=e` (the other sections are kept).
# Scenario a alone takes ~10 min (44 wrk runs of 10 s: the hellos at 1, 64,
# 256 and 1024 connections, the bigger requests, 1/10/100 handlers).
# Scenario j holds 100,000 waiting clients over up to 10 local nodes:
# ~10 GiB and minutes (without it: `BENCH_ARGS=--scenarios=a,b,c,d,e,f,g,h,i`).
BENCH_LANGUAGE_APPS = examples/c/hello examples/python/hello examples/js/hello
bench: setup tools-c tools-js tools-python bench-deps
	$(CARGO) build --release --workspace --bins --bench request_path
	for app in $(BENCH_LANGUAGE_APPS); do $(TARGET_DIR)/release/waterspout build $$app || exit 1; done
	$(TARGET_DIR)/release/waterspout-bench $(BENCH_ARGS)

# One short pass of scenario a: a smoke test (no thresholds), part of `make test`.
# After `cargo test --workspace` this only builds the two binaries (and
# `make serve` then builds nothing).
bench-quick: bench-deps
	$(CARGO) build --workspace --bins
	$(TARGET_DIR)/debug/waterspout-bench --quick

# wrk, and for scenario i nginx (tools-nginx: Debian's nginx-light pulls in
# nginx, with ssl and http2) and h2load (nghttp2-client), from apt; for the
# clusters of scenarios h and j a redis-server (tools-redis); the
# guests the benchmark serves, where it looks for them (--target-dir: not in
# $CARGO_TARGET_DIR).
bench-deps: tools-nginx tools-redis
	command -v wrk >/dev/null || (apt-get update -qq && apt-get install -y -qq wrk)
	command -v h2load >/dev/null || (apt-get update -qq && apt-get install -y -qq nghttp2-client)
	cd examples && $(CARGO) build --release --target wasm32-wasip2 --target-dir target
	cd examples && $(CARGO) build --release --target wasm32-unknown-unknown --target-dir target -p hello
	cd tests/guests && $(CARGO) build --release --target wasm32-wasip2 --target-dir target

# The long runs of docs/SECURITY.md, outside `make test`: load (30 s, 256
# connections) and every fuzz target for FUZZ_SECONDS (nightly).
load: setup
	$(CARGO) test --workspace --test load -- --ignored --nocapture

fuzz: setup
	scripts/fuzz.sh

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

tools: tools-js

# JavaScript: componentize-js (called directly: jco 1.35's `componentize` is
# broken here), its runtime dependency preview2-shim (missing from its
# package.json), and esbuild (bundles an app with guest-sdk/js). Node and npm
# come from Debian when missing.
JS_TOOLS = @bytecodealliance/componentize-js@0.23.0 @bytecodealliance/preview2-shim@0.17.9 esbuild@0.25.12
tools-js:
	command -v node >/dev/null && command -v npm >/dev/null || (apt-get update -qq && apt-get install -y -qq nodejs npm)
	@if [ "$$(cat .tools/js/.installed 2>/dev/null)" != "$(JS_TOOLS)" ]; then \
		echo "npm install --prefix .tools/js $(JS_TOOLS)"; \
		npm install --prefix .tools/js --no-audit --no-fund --save-exact $(JS_TOOLS) && \
		echo "$(JS_TOOLS)" > .tools/js/.installed; \
	fi

tools: tools-python

# componentize-py for guest-sdk/python (`guest-sdk/python/build APP.py OUT.wasm`).
PYTHON ?= python3
COMPONENTIZE_PY_VERSION = 0.25.1
TORNADO_VERSION = 6.6.1
tools-python: .tools/python/.installed-$(COMPONENTIZE_PY_VERSION) .tools/python/.installed-tornado-$(TORNADO_VERSION)

# pip `tornado` for the tests: cookies and XSRF tokens are checked against
# Tornado's own create_signed_value / decode_signed_value (tests/integration/web.rs).
.tools/python/.installed-tornado-$(TORNADO_VERSION): .tools/python/.installed-$(COMPONENTIZE_PY_VERSION)
	.tools/python/bin/pip install --quiet --disable-pip-version-check tornado==$(TORNADO_VERSION)
	touch $@

.tools/python/.installed-$(COMPONENTIZE_PY_VERSION):
	$(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || (apt-get update -qq && apt-get install -y -qq python3-venv)
	$(PYTHON) -m venv .tools/python
	.tools/python/bin/pip install --quiet --disable-pip-version-check componentize-py==$(COMPONENTIZE_PY_VERSION)
	touch $@

tools: tools-browser tools-redis

# Headless Chromium and its WebDriver, from Debian: the page tests (chat,
# blog) drive two real browser windows through chromedriver. curl: the
# HTTP/2-over-TLS test also speaks to the server with `curl --http2`.
BROWSER_APT = chromium chromium-driver curl
tools-browser:
	@dpkg -s $(BROWSER_APT) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(BROWSER_APT); }

# redis-server from Debian: the cluster tests start their own on a free port
# (tests/harness/redis.rs); nothing is left running.
REDIS_APT = redis-server
tools-redis:
	@dpkg -s $(REDIS_APT) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(REDIS_APT); }

tools: tools-nginx

# nginx from Debian (nginx-light: the proxy modules, no extras): the cluster
# tests put it in front of three nodes as the load balancer (docs/cluster.md).
NGINX_APT = nginx-light
tools-nginx:
	@dpkg -s $(NGINX_APT) >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(NGINX_APT); }
