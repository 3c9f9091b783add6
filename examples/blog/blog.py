"""Tornado's blog demo (tornado/demos/blog) on Waterspout, in Python.

Templates (minijinja, rendered by the host), a static stylesheet, sign-in
with the signed cookie ``blogdemo_user``, XSRF-protected forms to write and
edit posts. Posts are kept in ``/data/posts.json``, the handler's granted
``data_dir`` (the demo used PostgreSQL). Sign-in takes a name only (the demo
had accounts with bcrypt passwords).

Build: ``../../guest-sdk/python/build blog.py ../target/python/blog.wasm``;
serve: ``waterspout serve examples/blog``.
"""

import datetime
import json
import os
import re
import unicodedata
import urllib.parse

import tornado.web

POSTS = "/data/posts.json"


def load_posts():
    try:
        with open(POSTS) as f:
            return json.load(f)
    except FileNotFoundError:
        return []


def save_posts(posts):
    # Written beside and renamed over: a reader never sees half a file.
    tmp = POSTS + ".tmp"
    with open(tmp, "w") as f:
        json.dump(posts, f)
    os.replace(tmp, POSTS)


def newest_first(posts):
    return sorted(posts, key=lambda p: p["published"], reverse=True)


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
        entry = next((p for p in load_posts() if p["slug"] == slug), None)
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
            entry = next((p for p in load_posts() if p["id"] == int(id)), None)
        self.render("compose.html", entry=entry)

    @tornado.web.authenticated
    def post(self):
        id = self.get_argument("id", None)
        title = self.get_argument("title")
        text = self.get_argument("markdown")
        now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        posts = load_posts()
        if id:
            entry = next((p for p in posts if p["id"] == int(id)), None)
            if entry is None:
                raise tornado.web.HTTPError(404)
            entry.update(title=title, markdown=text, updated=now)
            slug = entry["slug"]
        else:
            slug = unicodedata.normalize("NFKD", title)
            slug = re.sub(r"[^\w]+", " ", slug)
            slug = "-".join(slug.lower().strip().split())
            slug = slug.encode("ascii", "ignore").decode("ascii") or "entry"
            while any(p["slug"] == slug for p in posts):
                slug += "-2"
            posts.append(dict(
                id=max((p["id"] for p in posts), default=0) + 1,
                author=self.current_user, title=title, slug=slug, markdown=text,
                published=now, updated=now,
            ))
        save_posts(posts)
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
