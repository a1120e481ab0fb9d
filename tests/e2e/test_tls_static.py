"""OpenSSL linked into the executable (docs/TLS.md, "Which processes, which
library"): a C HTTPS client built here with -static against Debian's
libssl.a/libcrypto.a carries SSL_read/SSL_write in its .symtab and gets the
probes libssl.so gets; its stripped copy cannot be probed, and weft says so
(log and `weft inspect`). The client prints what its OpenSSL negotiated:
the spans are checked against it field by field."""
import os
import re
import subprocess

import pytest

from conftest import APPS, ROOT, WEFT
from test_tls import attach_args
from test_tls_attrs import FRONTS, check_tls, ngx  # noqa: F401 (fixtures)

SRC = os.path.join(APPS, "tls_static", "client.c")
OUT = os.path.join(ROOT, "build", "tls_static")


@pytest.fixture(scope="module")
def clients():
    """{"static": path, "stripped": path}, built once (kept while newer than the source)."""
    os.makedirs(OUT, exist_ok=True)
    static, stripped = os.path.join(OUT, "client-static"), os.path.join(OUT, "client-stripped")
    if not os.path.exists(stripped) or os.path.getmtime(stripped) < os.path.getmtime(SRC):
        subprocess.run(["gcc", "-O2", "-static", "-o", static, SRC, "-lssl", "-lcrypto", "-pthread"], check=True,
                       capture_output=True)
        subprocess.run(["strip", "-o", stripped, static], check=True)
    syms = subprocess.run(["nm", static], capture_output=True, text=True, check=True).stdout
    assert re.search(r" T SSL_read\n", syms) and re.search(r" T SSL_write\n", syms)
    assert not subprocess.run(["readelf", "-d", static], capture_output=True, text=True).stdout.count("NEEDED")
    return {"static": static, "stripped": stripped}


def start(binary, ngx, paths):
    """The client, waiting for its go (stdin) before it connects."""
    args = [binary, str(ngx.p13)] + paths
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def inspect_tls(pid):
    out = subprocess.run([WEFT, "inspect", str(pid)], capture_output=True, text=True, check=True).stdout
    return out[out.index("\nTLS"):]


@pytest.mark.parametrize("front", FRONTS)
def test_static_openssl_client_is_probed(weft_factory, ngx, clients, front):
    p = start(clients["static"], ngx, ["/tls/a", "/tls/b?q=1"])
    try:
        # No libssl mapped: the executable's own functions are found.
        tls = inspect_tls(p.pid)
        assert re.search(rf"OpenSSL +linked into the executable {re.escape(clients['static'])} \(static, "
                         r"version unknown\): SSL_read, SSL_read_ex, SSL_write, SSL_write_ex, SSL_set_fd\n", tls), tls
        w = weft_factory(attach_args([p.pid] + ngx.pids), env=dict(os.environ, WEFT_CAPTURE_FRONT=front))
        assert re.search(rf"tls: pid {p.pid}: OpenSSL \(version unknown\) linked into the executable "
                         rf"{re.escape(clients['static'])}: probed SSL_read, SSL_read_ex, SSL_write\+0x[0-9a-f]+, "
                         r"SSL_write_ex\+0x[0-9a-f]+, SSL_set_fd", w.stderr), w.stderr
        out, err = p.communicate("go\n", timeout=20)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0, err
    says = [l.split(" ", 2) for l in out.splitlines()]
    assert [s[2] for s in says] == ["HTTP/1.1 200 OK"] * 2 and says[0][0] == "TLSv1.3", out
    client = w.wait_spans(lambda s: s["kind"] == "CLIENT", count=2)
    server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=2)
    assert len(client) == 2 and len(server) == 2, w.stderr
    by_path = {s["attributes"]["url.path"]: s for s in client}
    assert sorted(by_path) == ["/tls/a", "/tls/b"], w.stderr
    for (proto, cipher, _), path in zip(says, ("/tls/a", "/tls/b")):
        s = by_path[path]
        a = s["attributes"]
        assert s["resource"]["process.pid"] == p.pid
        assert s["resource"]["process.executable.name"] == "client-static"
        assert a["url.scheme"] == "https" and a["http.request.method"] == "GET"
        assert a["url.full"] == f"https://127.0.0.1:{ngx.p13}{path}" + ("?q=1" if path == "/tls/b" else "")
        assert a["http.response.status_code"] == 200 and s["status"] == "UNSET"
        assert a["server.port"] == ngx.p13
        check_tls(s, proto, cipher)
    # nginx's side of the same connections (the second one resumed).
    for s in server:
        check_tls(s, says[0][0], says[0][1])


def test_stripped_static_openssl_is_named_not_probed(weft_factory, ngx, clients):
    p = start(clients["stripped"], ngx, ["/tls/s"])
    try:
        tls = inspect_tls(p.pid)
        want = (rf"OpenSSL linked into {re.escape(clients['stripped'])}: not probeable: stripped "
                r"\(no \.symtab: SSL_read/SSL_write cannot be found\)")
        assert re.search(r"OpenSSL +" + want, tls), tls
        w = weft_factory(attach_args([p.pid] + ngx.pids))
        assert re.search(rf"tls: pid {p.pid}: {want}: its TLS connections get no spans", w.stderr), w.stderr
        # Not taken for a program that loads the host's libssl later.
        assert not re.search(rf"tls: pid {p.pid}: OpenSSL /", w.stderr), w.stderr
        out, err = p.communicate("go\n", timeout=20)
    finally:
        p.kill()
        p.wait()
    assert p.returncode == 0 and out.endswith("HTTP/1.1 200 OK\n"), err
    # nginx's span arrives; the client's ciphertext makes none.
    server = w.wait_spans(lambda s: s["kind"] == "SERVER", count=1)
    assert [s["attributes"]["url.path"] for s in server] == ["/tls/s"], w.stderr
    assert not [s for s in w.spans() if s["kind"] == "CLIENT"], w.spans()


def test_doctor_names_the_hosts_openssl():
    """weft doctor: the host's libssl and its version (what `weft run`
    probes everywhere), as the libcrypto beside it says."""
    r = subprocess.run([WEFT, "doctor"], capture_output=True, text=True, timeout=60)
    version = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    want = re.search(r"\(Library: (OpenSSL [^)]+)\)", version).group(1)
    assert re.search(rf"^  ok   OpenSSL +/usr/lib/x86_64-linux-gnu/libssl\.so\.3 \({re.escape(want)}\): ", r.stdout,
                     re.M), r.stdout
