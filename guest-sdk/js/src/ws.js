// The `websocket` world's exports (`websocket-handler`) for an app's
// `WebSocketHandler` classes. The build bundles this as the component's entry:
//
//     import * as app from "APP.js";
//     export const websocketHandler = serveWebSockets(app);

import * as connection from "waterspout:handler/websocket-connection@0.1.0";
import {
  host,
  HTTPError,
  WebSocketHandler,
  Request,
  pickClass,
  settingsObject,
  logException,
  isThenable,
} from "./index.js";

host.connection = connection;

/** The `websocket-handler` export serving the WebSocketHandler classes `app` exports. */
export function serveWebSockets(app) {
  /** @type {WebSocketHandler | null} this connection's handler */
  let handler = null;
  let setupError = null;

  function quietly(where, run) {
    try {
      const result = run();
      if (isThenable(result)) {
        return Promise.resolve(result).catch((error) => logException(where, error));
      }
      return result;
    } catch (error) {
      logException(where, error);
    }
    return undefined;
  }

  function toHttpError(error, where) {
    if (error instanceof HTTPError) {
      return { status: error.statusCode, reason: error.reason, logMessage: error.logMessage };
    }
    logException(where, error);
    return { status: 500, reason: undefined, logMessage: undefined };
  }

  // A void export returns nothing, or a promise of nothing.
  const done = (result) => (isThenable(result) ? result.then(() => undefined) : undefined);

  return {
    initialize(settings) {
      handler = null;
      setupError = null;
      const object = settingsObject(settings);
      let Class;
      try {
        Class = pickClass(app, WebSocketHandler, object);
      } catch (error) {
        setupError = error;
        return undefined;
      }
      handler = new Class();
      handler.settings = object;
      return done(quietly(`${Class.name}.initialize`, () => handler.initialize(object)));
    },
    selectSubprotocol(req, subprotocols) {
      if (!handler) return undefined;
      handler.request = new Request(req);
      const chosen = quietly(`${handler.constructor.name}.selectSubprotocol`, () => handler.selectSubprotocol(subprotocols));
      if (isThenable(chosen)) return chosen.then((value) => value ?? undefined);
      return chosen ?? undefined;
    },
    open(req) {
      if (!handler) throw toHttpError(setupError ?? new Error("initialize was not called"), "initialize");
      const where = `${handler.constructor.name}.open`;
      const request = new Request(req);
      handler.request = request;
      const kwargs = request.pathKwargs;
      const args = Object.keys(kwargs).length > 0 ? [kwargs] : request.pathArgs;
      let result;
      try {
        result = handler.open(...args);
      } catch (error) {
        request._detach();
        throw toHttpError(error, where);
      }
      if (isThenable(result)) {
        return Promise.resolve(result).then(
          () => request._detach(),
          (error) => {
            request._detach();
            throw toHttpError(error, where);
          },
        );
      }
      request._detach();
      return undefined;
    },
    onMessage(message) {
      if (!handler) return undefined;
      return done(quietly(`${handler.constructor.name}.onMessage`, () => handler.onMessage(message.val)));
    },
    onClose(code, reason) {
      if (!handler) return undefined;
      handler.closeCode = code ?? undefined;
      handler.closeReason = reason ?? undefined;
      return done(quietly(`${handler.constructor.name}.onClose`, () => handler.onClose()));
    },
  };
}
