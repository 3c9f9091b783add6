#!/usr/bin/env bash
# Checks the host's layering (docs/ARCHITECTURE.md): a module may import its
# own layer and the layers below it, never one above. Also: the server knows
# nothing of wasmtime, the runtime nothing of hyper or `App`, services
# neither wasmtime nor hyper, and the version store no wasmtime.
#
# Run by `make lint` and by `make test` (so by CI). Exits 1 and names every
# offending line.
set -euo pipefail
cd "$(dirname "$0")/../host/src"

# The layers, top first. The bottom layer is plain data and helpers.
rank() {
    case "$1" in
        cli) echo 9 ;;
        admin) echo 8 ;;
        server) echo 7 ;;
        handlers) echo 6 ;;
        app) echo 5 ;;
        deploy) echo 4 ;;
        runtime) echo 3 ;;
        capabilities) echo 2 ;;
        services) echo 1 ;;
        config | manifest | registry | router | metrics | body | text | statics | client | logtail | head) echo 0 ;;
        *) echo "" ;;
    esac
}

# The layer a file belongs to: its top folder, or its file name at the top.
layer_of() {
    local first="${1%%/*}"
    echo "${first%.rs}"
}

failed=0
fail() {
    echo "layers: $*" >&2
    failed=1
}

while IFS= read -r file; do
    case "$file" in lib.rs | main.rs) continue ;; esac
    layer="$(layer_of "$file")"
    own="$(rank "$layer")"
    if [ -z "$own" ]; then
        fail "$file: not in any layer (add its folder to scripts/layers.sh and docs/ARCHITECTURE.md)"
        continue
    fi
    # Every `crate::NAME` the file mentions (comments included: a doc link
    # upwards is a dependency too).
    while IFS=: read -r line name; do
        target="$(rank "$name")"
        # `crate::SERVER_NAME` and the like: the crate root's constants.
        [ -z "$target" ] && continue
        if [ "$target" -gt "$own" ]; then
            fail "$file:$line: the $layer layer imports crate::$name, a layer above it"
        fi
    done < <(grep -noE 'crate::[a-z_]+' "$file" | sed -E 's/^([0-9]+):crate::/\1:/')

    # What a layer must not use at all (comments aside).
    forbid() {
        local pattern="$1" why="$2"
        while IFS= read -r hit; do
            fail "$file:${hit%%:*}: $why"
        done < <(grep -nE "$pattern" "$file" | grep -vE '^[0-9]+:[[:space:]]*//' || true)
    }
    case "$layer" in
        server) forbid '\bwasmtime' "the server knows nothing of wasmtime" ;;
        runtime) forbid '\bhyper::|crate::app\b' "the runtime knows neither hyper nor App" ;;
        services) forbid '\bwasmtime|\bhyper::' "services know neither wasmtime nor hyper" ;;
    esac
    case "$file" in
        deploy/versions.rs) forbid '\bwasmtime' "the version store deals in bytes and JSON only" ;;
    esac
done < <(find . -name '*.rs' | sed 's|^\./||' | sort)

if [ "$failed" -ne 0 ]; then
    echo "layers: see docs/ARCHITECTURE.md, \"The layers\"" >&2
    exit 1
fi
echo "layers: ok ($(find . -name '*.rs' | wc -l) files)"
