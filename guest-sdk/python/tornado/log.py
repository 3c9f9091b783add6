"""``tornado.log``'s loggers; their records go to the host's log."""

import logging

import waterspout.log  # noqa: F401 — routes `logging` to the host

access_log = logging.getLogger("tornado.access")
app_log = logging.getLogger("tornado.application")
gen_log = logging.getLogger("tornado.general")
