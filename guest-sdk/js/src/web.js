// Tornado's web helpers for JavaScript handlers: signed cookies, XSRF
// tokens, templates, URLs, `currentUser` and `authenticated`. The host does
// the work (the `cookie_secret` never reaches the guest) through the WIT
// interface `web`; index.js mixes these methods into RequestHandler (all of
// them) and WebSocketHandler (the signed-cookie readers).

import * as web from "waterspout:handler/web@0.1.0";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A `web-error` variant as text. */
function describe(error) {
  const payload = error?.payload ?? error;
  if (payload?.tag === "no-cookie-secret") return "the app has no [app] cookie_secret";
  if (payload?.tag === "no-template-path") return "the app has no [app] template_path";
  if (payload?.tag) return `${payload.tag}: ${payload.val}`;
  return String(error?.message ?? error);
}

function call(what, fn) {
  try {
    return fn();
  } catch (error) {
    const e = new Error(`${what}: ${describe(error)}`);
    e.webError = error?.payload ?? error;
    throw e;
  }
}

/** Set by index.js (which imports this module) to its HTTPError. @internal */
export const hooks = { HTTPError: Error };

const bytes = (value) => (typeof value === "string" ? encoder.encode(value) : new Uint8Array(value));
const text = (value) => (value === undefined || value === null ? undefined : decoder.decode(value));

/** What request and WebSocket handlers share: reading signed cookies, the user. */
export class SignedCookies {
  /** Tornado's `create_signed_value(name, value)`. */
  createSignedValue(name, value) {
    return call(`createSignedValue(${name})`, () => web.createSignedValue(String(name), bytes(value)));
  }

  /**
   * Tornado's `get_signed_cookie(name, value=None, max_age_days=31)`: the
   * value (a string) when signed by this app for `name` and young enough.
   */
  getSignedCookie(name, { value = undefined, maxAgeDays = 31, minVersion = undefined } = {}) {
    const raw =
      value === undefined
        ? call(`getSignedCookie(${name})`, () => web.getSignedCookie(String(name), Number(maxAgeDays), minVersion))
        : call(`getSignedCookie(${name})`, () =>
            web.decodeSignedValue(String(name), String(value), Number(maxAgeDays), minVersion),
          );
    return text(raw);
  }

  /** The signed-in user: `getCurrentUser()`'s result, cached for the request. */
  get currentUser() {
    if (!("_currentUser" in this)) this._currentUser = this.getCurrentUser();
    return this._currentUser;
  }

  set currentUser(value) {
    this._currentUser = value;
  }

  /** Override to find the user, e.g. `return this.getSignedCookie("user")`. */
  getCurrentUser() {
    return undefined;
  }
}

/** The response side: setting signed cookies, XSRF, templates, URLs. */
export class WebHelpers extends SignedCookies {
  /** Tornado's `set_signed_cookie(name, value, expires_days=30)`. */
  setSignedCookie(name, value, options = {}) {
    const signed = this.createSignedValue(name, value);
    this.setCookie(name, signed, { expiresDays: 30, ...options });
  }

  /** This page's masked XSRF token; sets the `_xsrf` cookie if needed. */
  get xsrfToken() {
    return web.xsrfToken();
  }

  /** `<input type="hidden" name="_xsrf" value="…"/>` for a form. */
  xsrfFormHtml() {
    return web.xsrfFormHtml();
  }

  /** The app's `login_url`. */
  getLoginUrl() {
    const url = web.loginUrl();
    if (url === undefined) throw new Error("set [app] login_url to use authenticated");
    return url;
  }

  /** What every template sees besides the values given to `render`. */
  getTemplateNamespace() {
    const r = this.request;
    return {
      current_user: this.currentUser ?? null,
      request: { method: r.method, uri: r.uri, path: r.path, host: r.host },
    };
  }

  /** Tornado's `render_string`: a template of `template_path` with `values`. */
  renderString(name, values = {}) {
    const context = JSON.stringify({ ...this.getTemplateNamespace(), ...values });
    try {
      return web.renderString(String(name), context);
    } catch (error) {
      // A template error is a 500; the host logged its file and line.
      throw new hooks.HTTPError(500, `render(${name}): ${describe(error)}`);
    }
  }

  /** Tornado's `render`: renders, writes and finishes. */
  render(name, values = {}) {
    return this.finish(this.renderString(name, values));
  }

  /** Tornado's `reverse_url(name, ...args)`. */
  reverseUrl(name, ...args) {
    const url = web.reverseUrl(String(name), args.map(String));
    if (url === undefined) throw new Error(`${name} not found in named urls`);
    return url;
  }

  /** Tornado's `static_url(path)`. */
  staticUrl(path) {
    return web.staticUrl(String(path));
  }
}

/**
 * Tornado's `@authenticated` as a wrapper: without `currentUser`, GET and
 * HEAD redirect to `login_url?next=…`, other methods get 403.
 *
 *     get = authenticated(function () { this.write(`hi ${this.currentUser}`); });
 */
export function authenticated(method) {
  return function (...args) {
      if (!this.currentUser) {
        if (this.request.method === "GET" || this.request.method === "HEAD") {
          let url = this.getLoginUrl();
          if (!url.includes("?")) {
            const next = /^[a-z][a-z0-9+.-]*:/i.test(url) ? this.request.fullUrl() : this.request.uri;
            url += "?" + new URLSearchParams({ next }).toString();
          }
          this.redirect(url);
          return undefined;
        }
        throw new hooks.HTTPError(403);
      }
      return method.apply(this, args);
  };
}

/** Copies a helper class's methods and accessors onto `target`'s prototype. */
export function mixin(target, source) {
  for (let proto = source.prototype; proto && proto !== Object.prototype; proto = Object.getPrototypeOf(proto)) {
    for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(proto))) {
      if (key === "constructor" || Object.prototype.hasOwnProperty.call(target.prototype, key)) continue;
      Object.defineProperty(target.prototype, key, descriptor);
    }
  }
}
