#!/bin/sh
# {{ name }}'s tests, run by `make test` (after `make` built the component):
# starts the real `waterspout serve` on 127.0.0.1:0, asks it with curl, stops
# it. Exit status 0 when every check passed.
set -u
cd "$(dirname "$0")"
WATERSPOUT_BIN=${WATERSPOUT_BIN:-waterspout}
command -v curl >/dev/null 2>&1 || { echo "test.sh: curl is needed" >&2; exit 2; }

tmp=$(mktemp -d)
unset WATERSPOUT_ADMIN_TOKEN
"$WATERSPOUT_BIN" serve . --listen 127.0.0.1:0 --port-file "$tmp/port" --store "$tmp/store" 2>"$tmp/log" &
server=$!
cleanup() { kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT INT TERM

# The server writes its port once it listens (compiling comes first).
i=0
until [ -s "$tmp/port" ]; do
    if ! kill -0 "$server" 2>/dev/null || [ $i -ge 600 ]; then
        echo "test.sh: the server did not start:" >&2
        cat "$tmp/log" >&2
        exit 1
    fi
    sleep 0.1
    i=$((i + 1))
done
url="http://127.0.0.1:$(cat "$tmp/port")"

failed=0
# check NAME EXPECTED ACTUAL
check() {
    if [ "$2" = "$3" ]; then
        echo "ok   $1"
    else
        echo "FAIL $1: expected '$2', got '$3'"
        failed=1
    fi
}

check "GET / says hello" "Hello, world" "$(curl -s --max-time 10 "$url/")"
check "GET /?name=Ann" "Hello, Ann" "$(curl -s --max-time 10 "$url/?name=Ann")"
check "an unknown path is 404" "404" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$url/nowhere")"
{%- if websocket %}
# curl speaks no WebSocket here: the handshake's 101 is checked.
check "/echo accepts a WebSocket" "101" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 \
    -H 'Connection: Upgrade' -H 'Upgrade: websocket' -H 'Sec-WebSocket-Version: 13' \
    -H 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==' "$url/echo")"
{%- endif %}

if [ $failed -ne 0 ]; then
    echo "--- server log ---"
    cat "$tmp/log"
    exit 1
fi
echo "all checks passed"
