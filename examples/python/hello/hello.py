# Tornado's "Hello, world", ported to Waterspout: only the imports and the
# app/route lines changed: `import tornado` became `import waterspout as
# tornado`, and the route `(r"/", MainHandler)` is a `[[route]]` in
# waterspout.toml.
#
# Run it from the repository root:
#   cargo run -p waterspout -- serve examples/python/hello
# then: curl http://127.0.0.1:8888/
#
# The Tornado original:
#
#   import asyncio
#   import tornado
#
#   class MainHandler(tornado.web.RequestHandler):
#       def get(self):
#           self.write("Hello, world")
#
#   def make_app():
#       return tornado.web.Application([
#           (r"/", MainHandler),
#       ])
#
#   async def main():
#       app = make_app()
#       app.listen(8888)
#       await asyncio.Event().wait()
#
#   if __name__ == "__main__":
#       asyncio.run(main())

import waterspout as tornado


class MainHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("Hello, world")

