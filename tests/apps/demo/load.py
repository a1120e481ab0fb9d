"""Demo load: one request to the frontend every ~200 ms, over a rotating mix of
routes (including a 404), until killed or for DEMO_LOAD_SECONDS. Prints a
one-line summary on exit."""
import collections
import itertools
import os
import signal
import sys
import time
import urllib.error
import urllib.request

BASE = "http://127.0.0.1:%s" % os.environ.get("FRONTEND_PORT", "8081")
ROUTES = ["/", "/product/1", "/product/2", "/checkout/3", "/product/9", "/nope", "/product/4", "/checkout/1"]
INTERVAL = float(os.environ.get("DEMO_INTERVAL", "0.2"))
LIMIT = float(os.environ.get("DEMO_LOAD_SECONDS", "0")) or float("inf")

counts = collections.Counter()


def done(*_):
    summary = " ".join(f"{k}x{v}" for k, v in sorted(counts.items()))
    print(f"load: {sum(counts.values())} requests sent to frontend ({summary})", file=sys.stderr, flush=True)
    sys.exit(0)


signal.signal(signal.SIGTERM, done)
signal.signal(signal.SIGINT, done)

start = time.monotonic()
for route in itertools.cycle(ROUTES):
    t = time.monotonic()
    if t - start >= LIMIT:
        done()
    try:
        with urllib.request.urlopen(BASE + route, timeout=5) as r:
            r.read()
            counts[r.status] += 1
    except urllib.error.HTTPError as e:
        counts[e.code] += 1
    except (urllib.error.URLError, OSError):
        counts["error"] += 1
    time.sleep(max(0.0, INTERVAL - (time.monotonic() - t)))
