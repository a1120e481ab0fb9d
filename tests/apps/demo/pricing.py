"""Demo service `pricing`: prices, slow now and then, and failing about one
call in six with a 500.

  GET /price/<id>      price of one item
"""
import random
import time

from demohttp import Handler, port_of, serve

PRICES = {1: 1299.0, 2: 24.5, 3: 3.2, 4: 89.0}


class Pricing(Handler):
    def do_GET(self):
        path = self.path.split("?", 1)[0].rstrip("/")
        if not path.startswith("/price/"):
            return self.reply(404, {"error": "not found"})
        # Mostly fast, sometimes a slow cache miss.
        time.sleep(random.uniform(0.001, 0.005) if random.random() < 0.8 else random.uniform(0.02, 0.06))
        if random.random() < 1 / 6:
            return self.reply(500, {"error": "pricing backend unavailable"})
        try:
            item = int(path[len("/price/"):])
        except ValueError:
            return self.reply(400, {"error": "bad item id"})
        if item not in PRICES:
            return self.reply(404, {"error": "no price"})
        self.reply(200, {"id": item, "price": PRICES[item], "currency": "EUR"})


if __name__ == "__main__":
    serve(Pricing, port_of("PRICING_PORT", 8083))
