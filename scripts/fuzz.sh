#!/usr/bin/env bash
# Runs every fuzz target (fuzz/fuzz_targets/) for a bounded time and keeps
# what they find as regression inputs.
#
#   scripts/fuzz.sh                 # each target FUZZ_SECONDS (default 60 s)
#   FUZZ_SECONDS=600 scripts/fuzz.sh upload router
#
# Needs the nightly toolchain (rustup toolchain install nightly); installs
# cargo-fuzz if missing. The corpus grows in fuzz/corpus/<target>/ (seeded
# from fuzz/seeds/ and the built guest components); crashes, timeouts and
# out-of-memory inputs are copied to fuzz/regressions/<target>/, which
# `cargo test -p waterspout-tests --test security fuzz_regressions` replays
# on stable. Exits non-zero if any target found something.
set -uo pipefail
cd "$(dirname "$0")/../fuzz"

SECONDS_EACH="${FUZZ_SECONDS:-60}"
# ASan finds little in safe Rust and halves the speed; FUZZ_SANITIZER=address to use it.
SANITIZER="${FUZZ_SANITIZER:-none}"
TARGETS=("$@")
if [ ${#TARGETS[@]} -eq 0 ]; then
    TARGETS=(manifest router body upload)
fi

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked || exit 2
fi

cargo +nightly fuzz build -O -s "$SANITIZER" || exit 2

found=0
for target in "${TARGETS[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus" "artifacts/$target" "regressions/$target"
    cp -n seeds/"$target"/* "$corpus"/ 2>/dev/null
    if [ "$target" = upload ]; then
        # Real components make mutations reach the validator's depths.
        for wasm in ../tests/guests/target/wasm32-wasip2/release/*.wasm ../examples/target/wasm32-wasip2/release/*.wasm; do
            [ -f "$wasm" ] && cp -n "$wasm" "$corpus"/
        done
    fi
    echo "== $target: ${SECONDS_EACH}s"
    # -rss_limit_mb: a single input must not use more than 2 GiB (the
    # pooling allocator's reservations are virtual, not resident).
    cargo +nightly fuzz run -O -s "$SANITIZER" "$target" "$corpus" -- \
        -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
        -max_len=262144 -print_final_stats=1 2>&1 | tail -n 25
    for artifact in artifacts/"$target"/*; do
        [ -f "$artifact" ] || continue
        name="$(basename "$artifact")"
        if [ ! -f "regressions/$target/$name" ]; then
            cp "$artifact" "regressions/$target/$name"
            echo "fuzz.sh: $target found $name (kept in fuzz/regressions/$target/)"
            found=1
        fi
    done
done
exit $found
