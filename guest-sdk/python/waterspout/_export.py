"""The glue between componentize-py's raw exports and the app's handler classes.

``guest-sdk/python/build`` writes a tiny entry module per component::

    import hello as _app
    from waterspout import _export
    RequestHandler = _export.request_handler(_app)
    Dispatch = RequestHandler.Dispatch

componentize-py exports those classes as the WIT interfaces `request-handler`
and `dispatch` (or `websocket-handler`, `background-worker`); each call finds the route's handler class, runs the
user's method (driving ``async def`` ones to completion) and turns
``HTTPError`` and uncaught exceptions into the WIT's ``http-error``.
"""

import inspect
import traceback

from componentize_py_types import Err

from . import log, pubsub, web

CLASS_SETTING = "waterspout:class"


def handler_classes(module, base):
    """The handler classes an app module defines: subclasses of ``base``
    defined in the module itself (not imported), leaves of its hierarchy."""
    defined = [
        value
        for value in vars(module).values()
        if inspect.isclass(value)
        and issubclass(value, base)
        and value is not base
        and value.__module__ == module.__name__
    ]
    return [c for c in defined if not any(o is not c and issubclass(o, c) for o in defined)]


# (module name, base class, class name asked for) → (class, None) or (None, message).
# The answer depends only on the app module, fixed for the component's life:
# found once, so a reused instance does not scan the module per request.
_class_cache = {}


def pick_class(module, base, settings):
    """The class a route asked for (``class = "Name"`` in waterspout.toml, which
    arrives as the setting ``waterspout:class``), or the module's only one."""
    name = settings.pop(CLASS_SETTING, None)
    key = (module.__name__, base, name)
    try:
        cls, error = _class_cache[key]
    except KeyError:
        try:
            cls, error = _find_class(module, base, name), None
        except LookupError as e:
            cls, error = None, str(e)
        _class_cache[key] = cls, error
    if error is not None:
        raise LookupError(error)  # a new exception: a cached one would grow its traceback
    return cls


def _find_class(module, base, name):
    if name is not None:
        cls = getattr(module, name, None)
        if not (inspect.isclass(cls) and issubclass(cls, base)):
            raise LookupError(
                "the route asks for class %r, which %s does not define as a %s subclass"
                % (name, module.__name__, base.__name__)
            )
        return cls
    classes = handler_classes(module, base)
    if len(classes) == 1:
        return classes[0]
    if not classes:
        raise LookupError("%s defines no %s subclass" % (module.__name__, base.__name__))
    raise LookupError(
        "%s defines several handler classes (%s): give each route a `class = \"Name\"` "
        "in waterspout.toml" % (module.__name__, ", ".join(sorted(c.__name__ for c in classes)))
    )


def _internal_error(where):
    """Logs the current exception's traceback and returns the 500 the client
    sees (no detail: the traceback stays in the host log)."""
    log.error("uncaught exception in %s\n%s", where, traceback.format_exc().rstrip())
    return Err(web._types.HttpError(status=500, reason=None, log_message=None))


def _keeps(handler, name, base):
    """Whether ``handler`` has the base class's method ``name`` (``base``):
    not overridden by its class, nor set on the object."""
    return getattr(type(handler), name) is base and name not in handler.__dict__


def request_handler(module):
    """The `request-handler` export for an app module's ``RequestHandler`` classes."""

    # componentize-py may make a new export object for every call: the state
    # of the request lives here, shared by them.
    class State:
        handler = None
        setup_error = None
        exc_info = None

    class RequestHandlerExport:

        def initialize(self, settings):
            settings = dict(settings)
            State.handler = None
            State.setup_error = None
            State.exc_info = None
            try:
                cls = pick_class(module, web.RequestHandler, settings)
                handler = cls()
                handler.settings = settings
                handler.request = web.HTTPServerRequest(None)
                web._run(handler.initialize(**settings))
                State.handler = handler
            except Exception:  # noqa: BLE001 — reported by prepare as a 500
                State.setup_error = traceback.format_exc().rstrip()

        def _step(self, req, method_name):
            # A wait that saw the client hang up: whatever the method did,
            # nothing reaches the client; Tornado calls on_connection_close.
            try:
                self._run_step(req, method_name)
            except Err:
                if not pubsub._take_client_closed():
                    raise
                self._connection_closed()
                return
            if pubsub._take_client_closed():
                self._connection_closed()

        def _connection_closed(self):
            try:
                web._run(State.handler.on_connection_close())
            except Exception:  # noqa: BLE001
                log.error("uncaught exception in on_connection_close\n%s", traceback.format_exc().rstrip())

        def _run_step(self, req, method_name):
            if State.handler is None:
                log.error("the handler could not be set up:\n%s", State.setup_error or "initialize was not called")
                raise Err(web._types.HttpError(status=500, reason=None, log_message=None))
            handler = State.handler
            try:
                handler._bind(req)
                if method_name == "prepare":
                    web._run(handler.prepare())
                    return
                if handler._finished:
                    return
                request = handler.request
                kwargs = request.path_kwargs
                args = [] if kwargs else list(request.path_args)
                handler.path_args, handler.path_kwargs = args, kwargs
                web._run(getattr(handler, method_name)(*args, **kwargs))
            except web.Finish as finish:
                if not handler._finished and not web._response.finished():
                    handler.finish(*finish.args[:1])
            except pubsub.StreamClosedError:
                return
            except web.HTTPError as error:
                State.exc_info = (type(error), error, error.__traceback__)
                handler._reason = error.reason or web._reason_phrase(error.status_code)
                raise Err(error._to_raw()) from None
            except Exception:  # noqa: BLE001 — a 500, traceback to the log only
                State.exc_info = None
                raise _internal_error("%s.%s" % (type(handler).__name__, method_name)) from None

        def prepare(self, req):
            self._step(req, "prepare")

        def get(self, req):
            self._step(req, "get")

        def head(self, req):
            self._step(req, "head")

        def post(self, req):
            self._step(req, "post")

        def put(self, req):
            self._step(req, "put")

        def delete(self, req):
            self._step(req, "delete")

        def patch(self, req):
            self._step(req, "patch")

        def options(self, req):
            self._step(req, "options")

        def write_error(self, req, status, reason):
            handler = State.handler
            if handler is None:
                return
            handler._bind(req)
            handler._reason = reason
            handler._finished = False
            kwargs = {"exc_info": State.exc_info} if State.exc_info else {}
            try:
                web._run(handler.write_error(status, **kwargs))
            except Exception:  # noqa: BLE001
                log.error("uncaught exception in write_error\n%s", traceback.format_exc().rstrip())

        def on_finish(self, req):
            handler = State.handler
            if handler is None:
                return
            handler._bind(req)
            try:
                web._run(handler.on_finish())
            except Exception:  # noqa: BLE001
                log.error("uncaught exception in on_finish\n%s", traceback.format_exc().rstrip())
            finally:
                handler._bind(None)

    RequestHandlerExport.__name__ = "RequestHandler"

    steps = RequestHandlerExport()
    base_prepare = web.RequestHandler.prepare
    base_on_finish = web.RequestHandler.on_finish
    # `Method` enum value → the verb's name, made on first use.
    verbs = {}

    class DispatchExport:
        """The `dispatch` export: a whole request in one call (Tornado's
        ``_execute``). An ``Err`` from prepare or the verb goes back to the
        host before ``write_error`` and ``on_finish``, which the host then
        calls through `request-handler`, as on the four-call path."""

        def handle(self, req, settings, method, path_args, path_kwargs):
            try:
                self._handle(req, settings, method, path_args, path_kwargs)
            except pubsub.Parked:
                # A wait parked the request: the host runs it again later.
                if State.handler is not None:
                    State.handler._bind(None)

        def _handle(self, req, settings, method, path_args, path_kwargs):
            steps.initialize(settings)
            handler = State.handler
            if handler is not None:
                # The route's groups came with the call: no host call for them.
                cache = handler.request._cache
                cache["path_args"] = path_args
                cache["path_kwargs"] = dict(path_kwargs)
            # The base class's prepare does nothing (and cannot finish the
            # response): a handler that keeps it needs no call.
            if handler is None or not _keeps(handler, "prepare", base_prepare):
                steps._step(req, "prepare")
                if web._response.finished():
                    return self._finish(req, handler)
            if not verbs:
                verbs.update((m, m.name.lower()) for m in web._types.Method)
            steps._step(req, verbs[method])
            self._finish(req, handler)

        @staticmethod
        def _finish(req, handler):
            # The base class's on_finish does nothing, and nothing can tell
            # whether it ran: then the host finishes the response when this
            # call returns (no host call, no Python).
            if handler is not None and _keeps(handler, "on_finish", base_on_finish):
                handler._bind(None)
                return
            try:
                web._response.finish()
            except Err:
                pass  # the handler finished it (one host call fewer when it did not)
            steps.on_finish(req)

    DispatchExport.__name__ = "Dispatch"
    RequestHandlerExport.Dispatch = DispatchExport
    return RequestHandlerExport


def websocket_handler(module):
    """The `websocket-handler` export for an app module's ``WebSocketHandler`` classes."""
    from . import websocket

    class State:
        handler = None
        setup_error = None

    class WebsocketHandlerExport:

        def initialize(self, settings):
            settings = dict(settings)
            State.handler = None
            State.setup_error = None
            try:
                cls = pick_class(module, websocket.WebSocketHandler, settings)
                handler = cls()
                handler.settings = settings
                handler.request = web.HTTPServerRequest(None)
                web._run(handler.initialize(**settings))
                State.handler = handler
            except Exception:  # noqa: BLE001 — refused in open as a 500
                State.setup_error = traceback.format_exc().rstrip()

        def select_subprotocol(self, req, subprotocols):
            if State.handler is None:
                return None
            State.handler.request._bind(req)
            try:
                return State.handler.select_subprotocol(list(subprotocols))
            except Exception:  # noqa: BLE001
                log.error("uncaught exception in select_subprotocol\n%s", traceback.format_exc().rstrip())
                return None

        def open(self, req):
            if State.handler is None:
                log.error("the handler could not be set up:\n%s", State.setup_error)
                raise Err(web._types.HttpError(status=500, reason=None, log_message=None))
            handler = State.handler
            handler.request._bind(req)
            handler.request._load_all()
            kwargs = handler.request.path_kwargs
            args = [] if kwargs else list(handler.request.path_args)
            handler.path_args, handler.path_kwargs = args, kwargs
            try:
                web._run(handler.open(*args, **kwargs))
            except web.HTTPError as error:
                raise Err(error._to_raw()) from None
            except Exception:  # noqa: BLE001
                raise _internal_error("%s.open" % type(handler).__name__) from None

        def on_message(self, message):
            handler = State.handler
            if handler is None:
                return
            value = message.value
            try:
                web._run(handler.on_message(value))
            except Exception:  # noqa: BLE001 — as Tornado: log, then close the connection
                log.error(
                    "uncaught exception in %s.on_message\n%s",
                    type(handler).__name__,
                    traceback.format_exc().rstrip(),
                )
                handler.close(1011, "Internal Error")

        def on_close(self, code, reason):
            handler = State.handler
            if handler is None:
                return
            handler.close_code = code
            handler.close_reason = reason
            handler._closed = True
            try:
                web._run(handler.on_close())
            except Exception:  # noqa: BLE001
                log.error("uncaught exception in on_close\n%s", traceback.format_exc().rstrip())

    WebsocketHandlerExport.__name__ = "WebsocketHandler"
    return WebsocketHandlerExport


def background_worker(module):
    """The `background-worker` export for an app module's ``Worker`` subclass."""
    from . import queues, worker

    class BackgroundWorkerExport:

        def run(self, settings):
            settings = dict(settings)
            try:
                cls = pick_class(module, worker.Worker, settings)
                instance = cls()
                instance.settings = settings
                web._run(instance.initialize(**{k: v for k, v in settings.items() if ":" not in k}))
                web._run(instance.run())
            except queues.QueueStopping:
                return
            except Exception:  # noqa: BLE001 — logged; the host restarts the worker
                where = module.__name__
                log.error("uncaught exception in worker %s\n%s", where, traceback.format_exc().rstrip())
                raise Err("uncaught exception in worker %s (traceback in the log)" % where) from None

    BackgroundWorkerExport.__name__ = "BackgroundWorker"
    return BackgroundWorkerExport
