"""The build behind ``guest-sdk/python/build-wasi-http3 APP.py OUT.wasm``.

Runs componentize-py for the standard ``wasi:http/service@0.3.0`` world
(WASI p3). The WIT is the one the host serves: the ``src/p3/wit`` folder of
the ``wasmtime-wasi-http`` crate at the version in the repository's
``Cargo.lock``, from cargo's registry (``cargo fetch`` puts it there; any
build of the host does). Nothing is copied into the repository.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

SDK_DIR = Path(__file__).resolve().parent
ROOT = SDK_DIR.parent.parent
COMPONENTIZE_PY = ROOT / ".tools" / "python" / "bin" / "componentize-py"
WORLD = "wasi:http/service@0.3.0"
CRATE = "wasmtime-wasi-http"


def fail(message):
    print("guest-sdk/python/build-wasi-http3: " + message, file=sys.stderr)
    sys.exit(1)


def locked_version():
    """The version of ``wasmtime-wasi-http`` in the repository's Cargo.lock."""
    lock = (ROOT / "Cargo.lock").read_text()
    found = re.search(r'name = "%s"\nversion = "([^"]+)"' % re.escape(CRATE), lock)
    if not found:
        fail("%s is not in %s" % (CRATE, ROOT / "Cargo.lock"))
    return found.group(1)


def wit_dir():
    """The wasi:http 0.3 WIT shipped in the locked wasmtime-wasi-http crate."""
    version = locked_version()
    cargo_home = Path(os.environ.get("CARGO_HOME", Path.home() / ".cargo"))
    for source in sorted((cargo_home / "registry" / "src").glob("*/%s-%s" % (CRATE, version))):
        wit = source / "src" / "p3" / "wit"
        if (wit / "deps" / "http.wit").is_file():
            return wit
    fail(
        "the WIT of wasi:http 0.3 comes from the %s %s crate, which is not in %s; "
        "run `cargo fetch` in %s first" % (CRATE, version, cargo_home / "registry", ROOT)
    )


def main():
    parser = argparse.ArgumentParser(
        prog="guest-sdk/python/build-wasi-http3",
        description="Build a Python wasi:http 0.3 (wasi:http/service) component with componentize-py.",
    )
    parser.add_argument("app", type=Path, help="the app module, e.g. app.py (defines class Handler)")
    parser.add_argument("output", type=Path, help="the component to write, e.g. app.wasm")
    args = parser.parse_args()
    if args.app.suffix != ".py" or not args.app.is_file():
        fail("%s: expected an existing .py module" % args.app)
    app = args.app.resolve()
    output = args.output.resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    wit = wit_dir()
    print("componentize-py: %s (%s) → %s" % (app.name, WORLD, output), file=sys.stderr)
    started = time.monotonic()
    command = [
        str(COMPONENTIZE_PY),
        "-d", str(wit),
        "-w", WORLD,
        "componentize", app.stem,
        "-p", str(app.parent),
        "-o", str(output),
    ]
    result = subprocess.run(command)
    if result.returncode != 0:
        fail("componentize-py failed (exit %d): %s" % (result.returncode, " ".join(command)))
    print("built %s in %.1f s" % (output, time.monotonic() - started), file=sys.stderr)


if __name__ == "__main__":
    main()
