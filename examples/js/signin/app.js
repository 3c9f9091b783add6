// Signed cookies, XSRF, a template and the login guard in JavaScript: the
// Tornado original would be
//
//   class MainHandler(tornado.web.RequestHandler):
//       def get_current_user(self):
//           return self.get_signed_cookie("user")
//       @tornado.web.authenticated
//       def get(self):
//           self.render("hello.html", name=self.current_user)
//
// Serve: cargo run -p waterspout -- serve --build examples/js/signin

import { RequestHandler, authenticated } from "waterspout";

class BaseHandler extends RequestHandler {
  getCurrentUser() {
    return this.getSignedCookie("user");
  }
}

export class MainHandler extends BaseHandler {
  get = authenticated(function () {
    this.render("hello.html", { name: this.currentUser });
  });

  post = authenticated(function () {
    this.write(`posted by ${this.currentUser}`);
  });
}

export class LoginHandler extends BaseHandler {
  get() {
    this.setSignedCookie("user", this.getArgument("name"));
    this.write("signed in");
  }
}

export class TokenHandler extends BaseHandler {
  get() {
    this.write(this.xsrfToken);
  }
}
