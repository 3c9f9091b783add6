"""Tornado's blog demo (tornado/demos/blog) on Waterspout, in Python.

Templates (minijinja, rendered by the host), a static stylesheet, sign-in
with the signed cookie ``blogdemo_user``, XSRF-protected forms to write and
edit posts. Posts are kept in the kv service (the demo used PostgreSQL):
``post:00000001`` → the post as JSON, ``slug:<slug>`` → its id (claimed
with ``compare_and_swap``, so two writers never share a slug) and the
counter ``next_id``; ``[app] kv_persist = true`` keeps them across restarts.
Sign-in takes a name only (the demo had accounts with bcrypt passwords).

Build: ``../../guest-sdk/python/build blog.py ../target/python/blog.wasm``;
serve: ``waterspout serve examples/blog``.
"""

import datetime
import json
import re
import unicodedata
import urllib.parse

import tornado.web
from waterspout import kv


def load_posts():
    posts = []
    for key in kv.list_keys("post:"):
        raw = kv.get(key)
        if raw is not None:
            posts.append(json.loads(raw))
    return posts


def post_by_id(id):
    raw = kv.get("post:%08d" % id)
    return json.loads(raw) if raw is not None else None


def post_by_slug(slug):
    id = kv.get_str("slug:" + slug)
    return post_by_id(int(id)) if id is not None else None


def save_post(post):
    kv.set("post:%08d" % post["id"], json.dumps(post))


def claim_slug(title, id):
    """A slug made from ``title`` that no other post has, claimed for ``id``."""
    slug = unicodedata.normalize("NFKD", title)
    slug = re.sub(r"[^\w]+", " ", slug)
    slug = "-".join(slug.lower().strip().split())
    slug = slug.encode("ascii", "ignore").decode("ascii") or "entry"
    while not kv.compare_and_swap("slug:" + slug, None, str(id)):
        slug += "-2"
    return slug


def newest_first(posts):
    return sorted(posts, key=lambda p: (p["published"], p["id"]), reverse=True)


def for_template(post):
    post = dict(post)
    post["paragraphs"] = [p.strip() for p in re.split(r"\n\s*\n", post["markdown"]) if p.strip()]
    return post


class BaseHandler(tornado.web.RequestHandler):
    def get_current_user(self):
        user = self.get_signed_cookie("blogdemo_user")
        return user.decode("utf-8") if user else None

    def get_template_namespace(self):
        namespace = super().get_template_namespace()
        namespace["blog_title"] = "Waterspout Blog"
        namespace["next_query"] = urllib.parse.urlencode({"next": self.request.uri})
        return namespace


class HomeHandler(BaseHandler):
    def get(self):
        entries = newest_first(load_posts())[:5]
        if not entries:
            self.redirect("/compose")
            return
        self.render("home.html", entries=[for_template(e) for e in entries])


class EntryHandler(BaseHandler):
    def get(self, slug):
        entry = post_by_slug(slug)
        if not entry:
            raise tornado.web.HTTPError(404)
        self.render("entry.html", entry=for_template(entry))


class ArchiveHandler(BaseHandler):
    def get(self):
        self.render("archive.html", entries=newest_first(load_posts()))


class FeedHandler(BaseHandler):
    def get(self):
        entries = newest_first(load_posts())[:10]
        self.set_header("Content-Type", "application/atom+xml")
        self.render("feed.xml", entries=[for_template(e) for e in entries])


class ComposeHandler(BaseHandler):
    @tornado.web.authenticated
    def get(self):
        id = self.get_argument("id", None)
        entry = None
        if id:
            entry = post_by_id(int(id))
        self.render("compose.html", entry=entry)

    @tornado.web.authenticated
    def post(self):
        id = self.get_argument("id", None)
        title = self.get_argument("title")
        text = self.get_argument("markdown")
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        if id:
            entry = post_by_id(int(id))
            if entry is None:
                raise tornado.web.HTTPError(404)
            entry.update(title=title, markdown=text, updated=now)
        else:
            id = kv.increment("next_id")
            entry = dict(
                id=id, author=self.current_user, title=title,
                slug=claim_slug(title, id), markdown=text, published=now, updated=now,
            )
        save_post(entry)
        slug = entry["slug"]
        self.redirect(self.reverse_url("entry", slug))


class AuthLoginHandler(BaseHandler):
    def get(self):
        self.render("login.html", error=None, next=self.get_argument("next", "/"))

    def post(self):
        name = self.get_argument("name", "").strip()
        if not name:
            self.render("login.html", error="a name is needed", next=self.get_argument("next", "/"))
            return
        self.set_signed_cookie("blogdemo_user", name, samesite="lax")
        self.redirect(self.get_argument("next", "/"))


class AuthLogoutHandler(BaseHandler):
    def get(self):
        self.clear_cookie("blogdemo_user")
        self.redirect(self.get_argument("next", "/"))


class WhoAmIHandler(BaseHandler):
    def get(self):
        if not self.current_user:
            raise tornado.web.HTTPError(401)
        self.set_header("Content-Type", "text/plain; charset=UTF-8")
        self.write(self.current_user)
