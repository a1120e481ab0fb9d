"""`-o json` on a pipe: every span a whole line, written in few large writes
(each write to a pipe wakes its reader: at tens of thousands of spans a
second, a write per few spans cost weft and the reader more than making the
spans), and the pipe grown so a reader a little behind does not make each
write wait (user/export/sink_json.c)."""
import fcntl
import json
import signal
import subprocess
import threading
import time

from conftest import PY, WEFT

F_GETPIPE_SZ = 1032

# Keep-alive requests, one line on stdout when done; waits for stdin first.
CLIENT = r"""
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2])
sys.stdin.readline()
c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
for i in range(n):
    c.request("GET", f"/k/json/{i}")
    r = c.getresponse()
    r.read()
print("done", flush=True)
sys.stdin.readline()
"""


def syscw(pid):
    """write-like syscalls the process made (/proc/PID/io, all threads)."""
    with open(f"/proc/{pid}/io") as f:
        return int(next(l.split()[1] for l in f if l.startswith("syscw:")))


def test_json_lines_leave_in_few_large_writes(nginx, tmp_path):
    n = 3000
    (tmp_path / "client.py").write_text(CLIENT)
    cl = subprocess.Popen([PY, str(tmp_path / "client.py"), str(nginx.port), str(n)], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, text=True)
    w = subprocess.Popen([WEFT, "attach", "-p", str(cl.pid), "-o", "json", "--propagation", "off"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    lines = []
    ready = threading.Event()

    def read_stderr():
        for l in w.stderr:
            if b"ready:" in l:
                ready.set()

    def read_stdout():
        buf = b""
        while True:
            chunk = w.stdout.read1(1 << 20)
            if not chunk:
                break
            buf += chunk
            *done, buf = buf.split(b"\n")
            lines.extend(done)
        lines.append(buf)

    threads = [threading.Thread(target=read_stderr, daemon=True), threading.Thread(target=read_stdout, daemon=True)]
    for t in threads:
        t.start()
    try:
        assert ready.wait(60), "weft did not get ready"
        # the pipe weft writes to was grown (its read end is ours)
        assert fcntl.fcntl(w.stdout.fileno(), F_GETPIPE_SZ) == 1 << 20
        before = syscw(w.pid)
        cl.stdin.write("go\n")
        cl.stdin.flush()
        assert cl.stdout.readline().strip() == "done"
        deadline = time.time() + 10
        while len(lines) < n and time.time() < deadline:
            time.sleep(0.05)
        writes = syscw(w.pid) - before
        cl.stdin.write("go\n")
        cl.stdin.flush()
        assert cl.wait(30) == 0
        w.send_signal(signal.SIGINT)
        assert w.wait(30) == 0
        threads[1].join(10)
    finally:
        for p in (cl, w):
            if p.poll() is None:
                p.kill()
                p.wait()
    spans = [json.loads(l) for l in lines if l.strip()]
    paths = sorted(int(s["attributes"]["url.path"].rsplit("/", 1)[1]) for s in spans
                   if s["attributes"].get("url.path", "").startswith("/k/json/"))
    assert paths == list(range(n))  # every span, each a whole JSON line
    size = sum(len(l) + 1 for l in lines)
    # 256 KiB writes plus a flush per 100-ms tick; a 4 KiB buffer made
    # size / 4096 writes (about 600 here)
    assert writes <= n // 30, (writes, size)
