#!/usr/bin/python3
"""How often weft run --config picks up a short-lived program from its very
first request: N curl runs (selected by exe_path, started after weft is
ready) against an unselected server; prints the share of curl processes
whose request became a client span, and the agent's decision cost.

Run as root from the repository: /usr/bin/python3 bench/discovery/pickup.py [N]"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
WEFT = os.path.join(ROOT, "build", "weft")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    port = free_port()
    srv = subprocess.Popen(["/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd="/tmp",
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tempfile.NamedTemporaryFile(suffix=".jsonl", delete=False)
    env = dict(os.environ, WEFT_DISCOVERY_EXE_PATH="/usr/bin/curl")
    w = subprocess.Popen([WEFT, "run", "-o", "json", "--propagation", "off"], stdout=out, stderr=subprocess.PIPE,
                         text=True, env=env)
    for line in w.stderr:
        if "ready:" in line:
            break
    time.sleep(0.5)
    pids = []
    for _ in range(n):
        r = subprocess.Popen(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"])
        pids.append(r.pid)
        r.wait()
    time.sleep(1.5)
    w.send_signal(2)
    err = w.communicate(timeout=30)[1]
    srv.terminate()
    with open(out.name) as f:
        spans = [json.loads(l) for l in f]
    os.unlink(out.name)
    traced = {s["resource"]["process.pid"] for s in spans if s["kind"] == "CLIENT"}
    got = sum(1 for p in pids if p in traced)
    print(f"curl processes traced from their first request: {got}/{n} = {got / n:.2f}")
    for line in err.splitlines():
        if "discovery:" in line:
            print(line)


if __name__ == "__main__":
    main()
