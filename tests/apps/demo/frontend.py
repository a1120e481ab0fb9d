"""Demo service `frontend`: the shop's public API, which calls catalog and
pricing for each request.

  GET /                 catalog /items
  GET /product/<id>     catalog /items/<id>, then pricing /price/<id>
                        (404 when the catalog does not know it, 200 without a
                        price when pricing fails)
  GET /checkout/<id>    like /product/<id>, but a pricing failure is a 502
  anything else         404 (no upstream call)
"""
from demohttp import Handler, get_json, port_of, serve

CATALOG = "http://127.0.0.1:%d" % port_of("CATALOG_PORT", 8082)
PRICING = "http://127.0.0.1:%d" % port_of("PRICING_PORT", 8083)


class Frontend(Handler):
    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        if path == "/":
            status, items = get_json(CATALOG + "/items")
            return self.reply(200 if status == 200 else 502, {"items": items})
        for prefix in ("/product/", "/checkout/"):
            if path.startswith(prefix):
                return self.product(path[len(prefix):], strict=prefix == "/checkout/")
        self.reply(404, {"error": "not found"})

    def product(self, item, strict):
        status, body = get_json(f"{CATALOG}/items/{item}")
        if status != 200:
            return self.reply(404 if status == 404 else 502, {"error": "catalog said %d" % status})
        pstatus, price = get_json(f"{PRICING}/price/{item}")
        if pstatus != 200:
            if strict:
                return self.reply(502, {"error": "pricing said %d" % pstatus})
            price = None
        self.reply(200, {"item": body, "price": price})


if __name__ == "__main__":
    serve(Frontend, port_of("FRONTEND_PORT", 8081))
