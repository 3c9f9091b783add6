// The `handler` world's exports (`request-handler` and `dispatch`) for an
// app's `RequestHandler` classes. The build bundles this as the component's
// entry:
//
//     import * as app from "APP.js";
//     export const { requestHandler, dispatch } = serveRequests(app);

import * as response from "waterspout:handler/response@0.1.0";
import {
  host,
  HTTPError,
  RequestHandler,
  Request,
  pickClass,
  settingsObject,
  logException,
  isThenable,
  reasonPhrase,
} from "./index.js";
import { clientClosed, StreamClosedError } from "./pubsub.js";

host.response = response;

/**
 * The `request-handler` and `dispatch` exports serving the RequestHandler
 * classes `app` exports (`{ requestHandler, dispatch }`).
 */
export function serveRequests(app) {
  const baseInitialize = RequestHandler.prototype.initialize;
  /** @type {RequestHandler | null} this instance's handler (one per request) */
  let handler = null;
  /** Why no handler could be made (a 500 on every call), if so. */
  let setupError = null;
  /** The exception behind the last error, for `writeError`'s `info.error`. */
  let lastError = undefined;

  // The http-error record the host expects for an exception.
  function toHttpError(error, where) {
    lastError = error;
    if (error instanceof HTTPError) {
      return { status: error.statusCode, reason: error.reason, logMessage: error.logMessage };
    }
    if (error instanceof StreamClosedError) {
      return { status: 500, reason: undefined, logMessage: "the client closed the connection" };
    }
    logException(where, error);
    return { status: 500, reason: undefined, logMessage: undefined };
  }

  // After a step: the error page `sendError` queued, if any.
  function writePendingError() {
    const pending = handler._pendingError;
    if (!pending) return undefined;
    handler._writingError = true;
    const done = () => {
      handler._writingError = false;
      handler._pendingError = null;
      try {
        response.finish();
      } catch {
        // already finished
      }
    };
    let result;
    try {
      result = handler.writeError(pending.status, { reason: pending.reason, error: pending.error });
    } catch (error) {
      logException("writeError", error);
      done();
      return undefined;
    }
    if (isThenable(result)) {
      return result.then(done, (error) => {
        logException("writeError", error);
        done();
      });
    }
    done();
    return undefined;
  }

  // Runs `prepare` or a verb: returns nothing (ok), throws an http-error
  // record (err), or returns a promise of either for an async method.
  function step(req, name, method) {
    if (setupError) {
      throw toHttpError(setupError, "initialize");
    }
    bind(req);
    let result;
    try {
      result = name === "prepare" ? method.call(handler) : method.apply(handler, pathArguments());
    } catch (error) {
      throw toHttpError(error, `${handler.constructor.name}.${name}`);
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        () => writePendingError(),
        (error) => {
          throw toHttpError(error, `${handler.constructor.name}.${name}`);
        },
      );
    }
    const pending = writePendingError();
    if (pending) return pending;
    return undefined;
  }

  // A wait saw the client hang up: whatever the verb did goes nowhere;
  // Tornado calls on_connection_close.
  function connectionClosed() {
    if (!clientClosed.value) return false;
    clientClosed.value = false;
    if (handler) quietly(`${handler.constructor.name}.onConnectionClose`, () => handler.onConnectionClose());
    return true;
  }

  // One `Request` per request: each export call lends the request anew, so
  // only the handle changes between calls; values read in `prepare` stay
  // cached for the verb and `onFinish`.
  // (`initialize` makes a new handler, whose constructor made a new `Request`.)
  function bind(req) {
    if (handler.request instanceof Request) handler.request._raw = req;
    else handler.request = new Request(req);
  }

  // The verb's arguments: the named groups as one object, else the positional ones.
  function pathArguments() {
    const kwargs = handler.request.pathKwargs;
    for (const _ in kwargs) return [kwargs];
    return handler.request.pathArgs;
  }

  const verb = (name) => (req) => {
    if (!handler && !setupError) setupError = new Error("initialize was not called");
    let result;
    try {
      result = step(req, name, handler ? handler[name] : undefined);
    } catch (error) {
      if (connectionClosed()) return undefined;
      throw error;
    }
    if (isThenable(result)) {
      return Promise.resolve(result).then(
        (value) => (connectionClosed() ? undefined : value),
        (error) => {
          if (connectionClosed()) return undefined;
          throw error;
        },
      );
    }
    connectionClosed();
    return result;
  };

  function quietly(where, run) {
    try {
      const result = run();
      if (isThenable(result)) {
        return Promise.resolve(result).then(
          () => undefined,
          (error) => logException(where, error),
        );
      }
    } catch (error) {
      logException(where, error);
    }
    return undefined;
  }

  const requestHandler = {
    initialize(settings) {
      handler = null;
      setupError = null;
      lastError = undefined;
      const object = settingsObject(settings);
      let Class;
      try {
        Class = pickClass(app, RequestHandler, object);
      } catch (error) {
        setupError = error;
        return undefined;
      }
      handler = new Class();
      handler.settings = object;
      // The base class's `initialize` does nothing: skip the call.
      if (handler.initialize === baseInitialize) return undefined;
      return quietly(`${Class.name}.initialize`, () => handler.initialize(object));
    },
    prepare: verb("prepare"),
    get: verb("get"),
    head: verb("head"),
    post: verb("post"),
    put: verb("put"),
    delete: verb("delete"),
    patch: verb("patch"),
    options: verb("options"),
    writeError(req, status, reason) {
      if (!handler) {
        response.write(new TextEncoder().encode(`<html><title>${status}: ${reason}</title><body>${status}: ${reason}</body></html>`));
        return undefined;
      }
      bind(req);
      handler._writingError = true;
      const info = { reason: reason || reasonPhrase(status), error: lastError };
      const result = quietly(`${handler.constructor.name}.writeError`, () => handler.writeError(status, info));
      if (result) return result.then(() => (handler._writingError = false));
      handler._writingError = false;
      return undefined;
    },
    onFinish(req) {
      if (!handler) return undefined;
      bind(req);
      return quietly(`${handler.constructor.name}.onFinish`, () => handler.onFinish());
    },
  };

  const basePrepare = RequestHandler.prototype.prepare;
  const baseOnFinish = RequestHandler.prototype.onFinish;

  // Runs `next` after `result`, at once unless it is a promise.
  const after = (result, next) => (isThenable(result) ? Promise.resolve(result).then(next) : next());

  // The `dispatch` export: a whole request in one call (Tornado's
  // `_execute`). An http-error from prepare or the verb is thrown back to
  // the host before `writeError` and `onFinish`, which the host then calls
  // through `request-handler`, as on the four-call path.
  const dispatch = {
    handle(req, settings, method, pathArgs, pathKwargs) {
      return after(requestHandler.initialize(settings), () => {
        if (handler) {
          // The route's groups came with the call: no host call for them.
          bind(req);
          handler.request._cache.set("pathArgs", pathArgs);
          handler.request._cache.set("pathKwargs", Object.fromEntries(pathKwargs));
        }
        const finishUp = () => {
          // The base class's `onFinish` does nothing, and nothing can tell
          // whether it ran: the host finishes the response when this call
          // returns (no host call, no guest code).
          if (handler && handler.onFinish === baseOnFinish) return undefined;
          try {
            response.finish();
          } catch {
            // the handler finished it (one host call fewer when it did not)
          }
          return after(requestHandler.onFinish(req), () => undefined);
        };
        const runVerb = () => {
          // `method` is the WIT enum's tag: "get", "head", … (never "other").
          const run = requestHandler[method];
          if (!run) throw { status: 405, reason: undefined, logMessage: undefined };
          return after(run(req), finishUp);
        };
        // The base class's `prepare` does nothing: nothing to run, and the
        // response cannot be finished by it.
        if (handler && handler.prepare === basePrepare) return runVerb();
        return after(requestHandler.prepare(req), () => (response.finished() ? finishUp() : runVerb()));
      });
    },
  };

  return { requestHandler, dispatch };
}
