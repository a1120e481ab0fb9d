#!/usr/bin/python3
"""Uprobe hits per HTTPS exchange (docs/TLS.md): nginx (ssl) and a Python
http.client keep-alive client, both traced by weft attach; bpf_stats run
counts of the TLS probes divided by the requests. Prints ratios, times
nothing. Run as root from the repository: /usr/bin/python3 bench/tls_hits.py [N]"""
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))
from conftest import self_signed_cert  # noqa: E402
from test_tls import NginxTLS  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 200


def probe_counts():
    out = json.loads(subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True).stdout)
    return {p["name"]: p.get("run_cnt", 0) for p in out if p.get("name", "").startswith("probe_ssl")}


def main():
    d = tempfile.mkdtemp(prefix="weft-tls-hits-")
    crt, key = self_signed_cert(d)
    ngx = NginxTLS(d, (crt, key))
    prev = open("/proc/sys/kernel/bpf_stats_enabled").read().strip()
    w = None
    try:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write("1")
        cl = subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "apps", "py", "http_client.py")]
                              + [f"GET {ngx.url(f'/k/{i}')}" for i in range(N)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        args = [os.path.join(ROOT, "build", "weft"), "attach", "--propagation", "off", "-o", "json",
                "-p", str(cl.pid)] + [a for p in ngx.pids for a in ("-p", str(p))]
        w = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for line in w.stderr:
            if "ready:" in line:
                break
        c0 = probe_counts()
        cl.communicate("go\n", timeout=120)
        time.sleep(0.5)
        c1 = probe_counts()
    finally:
        open("/proc/sys/kernel/bpf_stats_enabled", "w").write(prev)
        if w:
            w.send_signal(2)
            w.wait()
        ngx.stop()
    total = 0
    for k in sorted(c1):
        n = c1[k] - c0.get(k, 0)
        total += n
        print(f"{k:22s} {n / N:5.2f} hits per exchange (client and server together)")
    print(f"{'all':22s} {total / N:5.2f} hits per exchange (client and server together)")


if __name__ == "__main__":
    main()
