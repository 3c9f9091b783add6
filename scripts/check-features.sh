#!/usr/bin/env bash
# Checks that building tests changes no feature of what the binaries need, so
# that `make serve` (`cargo build --workspace --bin waterspout`) after
# `make test` (`cargo test --workspace`) builds nothing new: cargo resolves
# features over the packages selected, with dev-dependencies only when
# tests, examples or benches are built. A dependency listed here with fewer
# features without dev-dependencies would be built twice (with everything
# that depends on it, often wasmtime); ask for the missing features in a
# normal dependency (see zerocopy in bench/Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per package (host and target apart): "name version|features".
features() {
    cargo tree --workspace --edges "$1" --prefix none --format '{p}|{f}' |
        sed 's/ (\*)$//' | sort -u
}
without_dev=$(features normal,build)
with_dev=$(features normal,build,dev)
differ=$(comm -23 <(echo "$without_dev") <(echo "$with_dev"))
if [ -n "$differ" ]; then
    echo "dev-dependencies change the features of (features without them):" >&2
    echo "$differ" >&2
    exit 1
fi
echo "features: one set with and without dev-dependencies"
