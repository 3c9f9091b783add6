"""{{ name }}'s tests, as Tornado's ``AsyncHTTPTestCase``.

Run them with ``python3 -m unittest`` (or ``pytest``) in this directory. The
base class builds the app once (the ``build`` lines of waterspout.toml),
starts the real ``waterspout serve`` on 127.0.0.1:0 for each test and stops
it afterwards. The host binary is ``$WATERSPOUT_BIN``, else ``waterspout`` on
the PATH.
"""

import os
import sys
import unittest

# waterspout.testing comes with the SDK, in the Waterspout checkout.
sys.path.insert(0, os.environ.get("WATERSPOUT_PYTHON_SDK", "{{ sdk }}/guest-sdk/python"))

from waterspout.testing import AsyncHTTPTestCase  # noqa: E402


class AppTest(AsyncHTTPTestCase):
    def get_app_dir(self):
        return os.path.dirname(os.path.abspath(__file__))

    def test_hello(self):
        response = self.fetch("/")
        self.assertEqual(response.code, 200)
        self.assertEqual(response.body, b"Hello, world")

    def test_hello_by_name(self):
        response = self.fetch("/?name=Ann")
        self.assertEqual(response.body, b"Hello, Ann")

    def test_unknown_path_is_404(self):
        self.assertEqual(self.fetch("/nowhere").code, 404)
{%- if websocket %}

    def test_echo(self):
        ws = self.websocket_connect("/echo")
        ws.write_message("hi")
        self.assertEqual(ws.read_message(), "hi")
        ws.close()
{%- endif %}


if __name__ == "__main__":
    unittest.main()
