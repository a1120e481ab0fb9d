"""Demo service `catalog`: product data.

  GET /items           list of items
  GET /items/<id>      one item, 404 if unknown
"""
import random
import time

from demohttp import Handler, port_of, serve

ITEMS = {
    1: {"id": 1, "name": "loom", "stock": 3},
    2: {"id": 2, "name": "shuttle", "stock": 12},
    3: {"id": 3, "name": "bobbin", "stock": 40},
    4: {"id": 4, "name": "heddle", "stock": 0},
}


class Catalog(Handler):
    def do_GET(self):
        time.sleep(random.uniform(0.002, 0.012))  # a database, say
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/items":
            return self.reply(200, list(ITEMS.values()))
        if path.startswith("/items/"):
            try:
                item = ITEMS.get(int(path[len("/items/"):]))
            except ValueError:
                item = None
            if item:
                return self.reply(200, item)
            return self.reply(404, {"error": "no such item"})
        self.reply(404, {"error": "not found"})


if __name__ == "__main__":
    serve(Catalog, port_of("CATALOG_PORT", 8082))
