"""Tornado's chat demo (demos/chat/chatdemo.py), ported to Waterspout.

It speaks the demo's protocol, so the demo's own ``chat.js`` works against it:

- ``GET /`` the page, with the cached messages;
- ``POST /a/message/new`` (form ``body``) → ``{"id", "body", "html"}``, the
  body HTML-escaped in ``html``;
- ``POST /a/message/updates`` (form ``cursor``: the ``id`` of the last
  message seen) → long-polls until ``{"messages": [...]}`` newer than the
  cursor; a cursor it does not know answers at once with the cached ones.

What changed from Tornado: the demo's ``MessageBuffer`` (a list and a
``tornado.locks.Condition`` in the one process) becomes ``history.py``: the
newest ``CACHE_SIZE`` (200) messages in one kv key, updated by
compare-and-swap, and the pub/sub topic ``chat`` to wake the waiting polls
(``await cond.wait()`` becomes ``pubsub.wait(...)``: the handler's instance
suspends in the host until a message comes, then reads the cache again).
Each message is also broadcast to the WebSocket group ``chat``
(chatsocket.py), so both variants see each other's messages. With
``[app] kv_persist = true`` the history survives a restart.
"""

import html
import uuid

import history
from waterspout import web

# How long one poll waits before answering `{"messages": []}` (the client polls again).
POLL_SECONDS = 60


def message_html(message):
    # templates/message.html: <div class="message" id="m{{ id }}">{{ body }}</div>
    return '<div class="message" id="m%s">%s</div>' % (
        html.escape(message["id"]),
        html.escape(message["body"]),
    )


def new_message(body):
    """A message as the demo makes it, stored and sent to every client."""
    if len(body) > history.MAX_BODY:
        raise web.HTTPError(400, reason="a message is at most %d characters" % history.MAX_BODY)
    message = {"id": str(uuid.uuid4()), "body": body}
    message["html"] = message_html(message)
    history.add(message)
    return message


def messages_since(cached, cursor):
    """As the demo's ``get_messages_since``: the messages after the one whose
    id is ``cursor``; all of them when the cursor is unknown."""
    results = []
    for message in reversed(cached):
        if message["id"] == cursor:
            break
        results.append(message)
    results.reverse()
    return results


class MainHandler(web.RequestHandler):
    def get(self):
        inbox = "\n".join(m["html"] for m in history.cached())
        self.write(PAGE.replace("{{ inbox }}", inbox))


class MessageNewHandler(web.RequestHandler):
    """Post a new message to the chat room."""

    def post(self):
        message = new_message(self.get_argument("body"))
        if self.get_argument("next", None):
            self.redirect(self.get_argument("next"))
        else:
            self.write(message)


class MessageUpdatesHandler(web.RequestHandler):
    """Long-polling request for new messages.

    Waits until new messages are available before returning anything.
    """

    def post(self):
        cursor = self.get_argument("cursor", None)
        after = history.wake_cursor()
        messages = messages_since(history.cached(), cursor)
        while not messages:
            # Suspends this handler in the host until a post wakes it (or the timeout).
            after = history.wait(after, POLL_SECONDS)
            if after is None:
                break
            messages = messages_since(history.cached(), cursor)
        self.write(dict(messages=messages))

    def on_connection_close(self):
        # The client went away during the wait: nothing to send, nothing to clean up.
        pass


PAGE = """<!DOCTYPE html>
<html>
  <head>
    <meta charset="UTF-8">
    <title>Tornado Chat Demo</title>
    <style>
      body { background: white; margin: 10px; }
      body, input { font-family: sans-serif; font-size: 10pt; color: black; }
      #body { position: absolute; bottom: 10px; left: 10px; }
      #input { margin-top: 0.5em; }
      #inbox .message { padding-top: 0.25em; }
      #nav { float: right; z-index: 99; }
    </style>
  </head>
  <body>
    <div id="nav"><span id="transport"></span>
      (<a href="/">long polling</a> | <a href="/?transport=websocket">WebSocket</a>)</div>
    <div id="body">
      <div id="inbox">
{{ inbox }}
      </div>
      <div id="input">
        <form action="/a/message/new" method="post" id="messageform">
          <table>
            <tr>
              <td><input type="text" name="body" id="message" style="width:500px"></td>
              <td style="padding-left:5px">
                <input type="submit" value="Post">
                <input type="hidden" name="next" value="/">
              </td>
            </tr>
          </table>
        </form>
      </div>
    </div>
    <script>
// The demo's chat.js (long polling) and its websocket demo's chat.js
// (/chatsocket), without jQuery.
var inbox = document.getElementById("inbox");
var form = document.getElementById("messageform");
var input = document.getElementById("message");
var useSocket = new URLSearchParams(location.search).get("transport") === "websocket";
document.getElementById("transport").textContent = useSocket ? "WebSocket" : "long polling";

function showMessage(message) {
  if (document.getElementById("m" + message.id)) return;
  var holder = document.createElement("div");
  holder.innerHTML = message.html;
  inbox.appendChild(holder.firstChild);
}

function post(url, args) {
  return fetch(url, {method: "POST", body: new URLSearchParams(args)});
}

var updater = {
  errorSleepTime: 500,
  cursor: null,
  socket: null,
  poll: function() {
    var args = {};
    if (updater.cursor) args.cursor = updater.cursor;
    document.body.dataset.ready = "1";
    post("/a/message/updates", args)
      .then(function(r) { if (!r.ok) throw new Error(r.status); return r.json(); })
      .then(function(response) {
        updater.newMessages(response);
        updater.errorSleepTime = 500;
        window.setTimeout(updater.poll, 0);
      })
      .catch(function() {
        updater.errorSleepTime *= 2;
        window.setTimeout(updater.poll, updater.errorSleepTime);
      });
  },
  newMessages: function(response) {
    if (!response.messages || !response.messages.length) return;
    var messages = response.messages;
    updater.cursor = messages[messages.length - 1].id;
    messages.forEach(showMessage);
  },
  start: function() {
    updater.socket = new WebSocket((location.protocol === "https:" ? "wss://" : "ws://") + location.host + "/chatsocket");
    updater.socket.onopen = function() { document.body.dataset.ready = "1"; };
    updater.socket.onmessage = function(event) { showMessage(JSON.parse(event.data)); };
  }
};

form.addEventListener("submit", function(e) {
  e.preventDefault();
  var body = input.value;
  input.value = "";
  if (useSocket) {
    updater.socket.send(JSON.stringify({body: body}));
  } else {
    post("/a/message/new", {body: body}).then(function(r) { return r.json(); }).then(showMessage);
  }
});
var last = inbox.querySelectorAll(".message");
if (last.length) updater.cursor = last[last.length - 1].id.slice(1);
if (useSocket) updater.start(); else updater.poll();
input.focus();
    </script>
  </body>
</html>
"""
