"""Tornado's ``tornado.testing`` for Waterspout apps: test handlers against
the real host, over real sockets, with the standard library only.

This module runs in your test runner (CPython), not in the component::

    import os
    from waterspout.testing import AsyncHTTPTestCase

    class AppTest(AsyncHTTPTestCase):
        def get_app_dir(self):
            return os.path.dirname(os.path.abspath(__file__))

        def test_hello(self):
            response = self.fetch("/")
            self.assertEqual(response.code, 200)
            self.assertEqual(response.body, b"Hello, world")

``python3 -m unittest`` runs it. The first test of the process builds the app
(``waterspout build APP``: the ``build`` lines of its waterspout.toml); every
test then gets a server of its own (``waterspout serve`` on 127.0.0.1, a free
port, a fresh version store), stopped in ``tearDown``. Where Tornado's
``get_app()`` returns an Application, ``get_app_dir()`` returns the app's
directory (the routes are in its manifest).

With pytest, the ``waterspout_app`` fixture gives the same server (the app
directory is the test file's, or your ``waterspout_app_dir`` fixture's):
``pytest_plugins = ["waterspout.testing"]`` in conftest.py turns it on.

The host binary is ``$WATERSPOUT_BIN``, else ``waterspout`` on the PATH.
Requests and WebSocket reads give up after 30 s.
"""

import base64
import hashlib
import http.client
import os
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.parse

__all__ = [
    "AsyncHTTPTestCase",
    "AppServer",
    "HTTPClientError",
    "HTTPResponse",
    "WebSocketClientConnection",
]

IO_TIMEOUT = 30.0
START_TIMEOUT = 180.0


class HTTPResponse:
    """A response, as Tornado's ``tornado.httpclient.HTTPResponse``: ``code``,
    ``reason``, ``headers`` (case-insensitive, ``http.client.HTTPMessage``),
    ``body`` (bytes), ``effective_url``."""

    def __init__(self, code, reason, headers, body, effective_url):
        self.code = code
        self.reason = reason
        self.headers = headers
        self.body = body
        self.effective_url = effective_url

    @property
    def text(self):
        return self.body.decode("utf-8", "replace")

    def __repr__(self):
        return "HTTPResponse(code=%d, reason=%r, body=%r)" % (self.code, self.reason, self.body[:80])


class HTTPClientError(Exception):
    """Raised by ``fetch(..., raise_error=True)`` for a status >= 400, as
    Tornado's ``tornado.httpclient.HTTPClientError``."""

    def __init__(self, code, message=None, response=None):
        self.code = code
        self.message = message or http.client.responses.get(code, "Unknown")
        self.response = response
        super().__init__("HTTP %d: %s" % (code, self.message))


def _waterspout_bin():
    binary = os.environ.get("WATERSPOUT_BIN")
    if binary:
        if not os.path.isfile(binary):
            raise RuntimeError("WATERSPOUT_BIN=%s is not a file" % binary)
        return binary
    found = shutil.which("waterspout")
    if found is None:
        raise RuntimeError(
            "cannot find the `waterspout` binary: set WATERSPOUT_BIN to it, or put it on the PATH "
            "(`cargo install --path host` in the Waterspout checkout)"
        )
    return found


_built = {}
_build_lock = threading.Lock()


def build_app(app_dir):
    """Runs ``waterspout build APP_DIR`` once per process (the later calls
    return the first one's result). Raises ``RuntimeError`` with the build's
    output when it fails."""
    app_dir = os.path.abspath(app_dir)
    with _build_lock:
        if app_dir not in _built:
            result = subprocess.run(
                [_waterspout_bin(), "build", app_dir],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            _built[app_dir] = None if result.returncode == 0 else (
                "waterspout build %s failed (exit status %d):\n%s"
                % (app_dir, result.returncode, result.stdout.decode("utf-8", "replace"))
            )
        if _built[app_dir] is not None:
            raise RuntimeError(_built[app_dir])


class AppServer:
    """``waterspout serve APP_DIR`` on 127.0.0.1 (a free port) with a version
    store of its own. ``start()``, then ``fetch``/``websocket_connect``, then
    ``stop()``."""

    def __init__(self, app_dir):
        self.app_dir = os.path.abspath(app_dir)
        self.port = None
        self._process = None
        self._scratch = None
        self._log = None

    def start(self):
        self._scratch = tempfile.mkdtemp(prefix="waterspout-test-")
        port_file = os.path.join(self._scratch, "port")
        self._log = open(os.path.join(self._scratch, "log"), "w+b")
        env = dict(os.environ)
        # No admin API: it would want port 8889 in every test.
        env.pop("WATERSPOUT_ADMIN_TOKEN", None)
        self._process = subprocess.Popen(
            [
                _waterspout_bin(), "serve", self.app_dir,
                "--listen", "127.0.0.1:0",
                "--port-file", port_file,
                "--store", os.path.join(self._scratch, "store"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
            env=env,
        )
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with open(port_file) as f:
                    self.port = int(f.read().strip())
                return self
            except (OSError, ValueError):
                pass
            if self._process.poll() is not None or time.monotonic() > deadline:
                why = (
                    "exited with status %d" % self._process.returncode
                    if self._process.poll() is not None
                    else "did not listen within %d s" % START_TIMEOUT
                )
                log = self.log()
                self.stop()
                raise RuntimeError("waterspout serve %s %s; its log:\n%s" % (self.app_dir, why, log))
            time.sleep(0.05)

    def stop(self):
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None

    def log(self):
        """Everything the server has written to its log so far."""
        if self._log is None:
            return ""
        self._log.flush()
        with open(self._log.name, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def get_url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def fetch(self, path, method="GET", body=None, headers=None, raise_error=False, follow_redirects=True):
        """``method path`` with ``headers`` (a dict) and ``body`` (bytes or
        str), as Tornado's ``AsyncHTTPTestCase.fetch``: any status is a
        response unless ``raise_error``; redirects are followed (up to 5)
        unless ``follow_redirects=False``."""
        if isinstance(body, str):
            body = body.encode("utf-8")
        url = self.get_url(path)
        for _ in range(6):
            parts = urllib.parse.urlsplit(url)
            target = parts.path or "/"
            if parts.query:
                target += "?" + parts.query
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=IO_TIMEOUT)
            try:
                conn.request(method, target, body=body, headers=dict(headers or {}))
                raw = conn.getresponse()
                response = HTTPResponse(raw.status, raw.reason, raw.headers, raw.read(), url)
            finally:
                conn.close()
            location = response.headers.get("Location")
            if not (follow_redirects and response.code in (301, 302, 303, 307, 308) and location):
                break
            url = urllib.parse.urljoin(url, location)
            if response.code in (301, 302, 303) and method not in ("GET", "HEAD"):
                method, body = "GET", None
        if raise_error and response.code >= 400:
            raise HTTPClientError(response.code, response.reason, response)
        return response

    def websocket_connect(self, path, headers=None):
        """Opens a WebSocket to ``path`` (Tornado's ``websocket_connect``)."""
        return WebSocketClientConnection("127.0.0.1", self.port, path, headers)


class AsyncHTTPTestCase(unittest.TestCase):
    """Tornado's ``AsyncHTTPTestCase`` over a real ``waterspout serve``.

    Override ``get_app_dir()``; use ``self.fetch(path, method=, body=,
    headers=)``, ``self.get_url(path)``, ``self.get_http_port()`` and
    ``self.websocket_connect(path)``."""

    def get_app_dir(self):
        """The app's directory (where its waterspout.toml is)."""
        raise NotImplementedError("override get_app_dir() to return the app's directory")

    def setUp(self):
        super().setUp()
        build_app(self.get_app_dir())
        self._app_server = AppServer(self.get_app_dir()).start()

    def tearDown(self):
        self._app_server.stop()
        super().tearDown()

    def get_http_port(self):
        return self._app_server.port

    def get_url(self, path):
        return self._app_server.get_url(path)

    def fetch(self, path, raise_error=False, **kwargs):
        return self._app_server.fetch(path, raise_error=raise_error, **kwargs)

    def websocket_connect(self, path, headers=None):
        return self._app_server.websocket_connect(path, headers)

    def server_log(self):
        """Everything the server has written to its log so far."""
        return self._app_server.log()


_WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class WebSocketClientConnection:
    """A client WebSocket (RFC 6455), as Tornado's: ``write_message(message,
    binary=False)``, ``read_message()`` (str, bytes, or None once closed),
    ``close(code, reason)``. Blocking, with a 30 s timeout."""

    def __init__(self, host, port, path, headers=None):
        self.close_code = None
        self.close_reason = None
        self._sock = socket.create_connection((host, port), timeout=IO_TIMEOUT)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET %s HTTP/1.1" % path,
            "Host: %s:%d" % (host, port),
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + key,
            "Sec-WebSocket-Version: 13",
        ] + ["%s: %s" % item for item in (headers or {}).items()]
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self._buffer = b""
        while b"\r\n\r\n" not in self._buffer:
            chunk = self._sock.recv(4096)
            if not chunk:
                raise ConnectionError("WebSocket %s: the server closed during the handshake" % path)
            self._buffer += chunk
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status = head.split(b"\r\n", 1)[0].decode("latin-1")
        if " 101 " not in status + " ":
            self._sock.close()
            raise HTTPClientError(int(status.split()[1]), "WebSocket %s refused: %s" % (path, status))
        accept = base64.b64encode(hashlib.sha1(key.encode() + _WS_GUID).digest())
        fields = {}
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            fields[name.strip().lower()] = value.strip()
        if fields.get(b"sec-websocket-accept") != accept:
            self._sock.close()
            raise ConnectionError("WebSocket %s: wrong Sec-WebSocket-Accept" % path)

    def _recv_exactly(self, n):
        while len(self._buffer) < n:
            chunk = self._sock.recv(65536)
            if not chunk:
                raise ConnectionError("the connection closed")
            self._buffer += chunk
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _send_frame(self, opcode, payload):
        header = bytes([0x80 | opcode])
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def write_message(self, message, binary=False):
        if isinstance(message, str):
            message = message.encode("utf-8")
        self._send_frame(0x2 if binary else 0x1, bytes(message))

    def read_message(self):
        """The next message: str for text, bytes for binary, None once the
        connection is closed."""
        if self._sock is None:
            return None
        parts, kind = [], None
        try:
            while True:
                b0, b1 = self._recv_exactly(2)
                fin, opcode, n = b0 & 0x80, b0 & 0x0F, b1 & 0x7F
                if n == 126:
                    (n,) = struct.unpack("!H", self._recv_exactly(2))
                elif n == 127:
                    (n,) = struct.unpack("!Q", self._recv_exactly(8))
                payload = self._recv_exactly(n)
                if opcode == 0x8:
                    if len(payload) >= 2:
                        self.close_code = struct.unpack("!H", payload[:2])[0]
                        self.close_reason = payload[2:].decode("utf-8", "replace")
                    self._send_frame(0x8, payload[:2])
                    self._shutdown()
                    return None
                if opcode == 0x9:
                    self._send_frame(0xA, payload)
                    continue
                if opcode == 0xA:
                    continue
                if opcode in (0x1, 0x2):
                    kind = opcode
                parts.append(payload)
                if fin:
                    data = b"".join(parts)
                    return data.decode("utf-8") if kind == 0x1 else data
        except (ConnectionError, OSError):
            self._shutdown()
            return None

    def close(self, code=1000, reason=""):
        if self._sock is None:
            return
        try:
            self._send_frame(0x8, struct.pack("!H", code) + reason.encode("utf-8"))
            while self.read_message() is not None:
                pass
        except OSError:
            pass
        self._shutdown()

    def _shutdown(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None


try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None:

    @pytest.fixture
    def waterspout_app_dir(request):
        """The app under test: the test file's directory. Override it."""
        return os.path.dirname(str(request.fspath))

    @pytest.fixture
    def waterspout_app(waterspout_app_dir):
        """A started ``AppServer`` for the app (built once per process)."""
        build_app(waterspout_app_dir)
        server = AppServer(waterspout_app_dir).start()
        yield server
        server.stop()
