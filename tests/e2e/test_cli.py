"""Command-line validation: every bad option is refused with a clear message
and exit status 2, before any BPF program is loaded (in well under a
second), and never echoes an OTLP header value."""
import os
import subprocess
import time

import pytest

from conftest import WEFT, cgroup2_root

SECRET = "s3cr3tT0kenXYZ"


def weft(*args, env=None):
    e = dict(os.environ)
    for k in list(e):
        if k.startswith("OTEL_"):
            del e[k]
    e.update(env or {})
    t0 = time.monotonic()
    r = subprocess.run([WEFT, *args], capture_output=True, text=True, timeout=30, env=e)
    return r, time.monotonic() - t0


@pytest.mark.parametrize("args,message", [
    (["-d", "nan"], "--duration: 'nan' is not a number of seconds"),
    (["-d", "inf"], "--duration: 'inf' is not a number of seconds"),
    (["-d", "1e400"], "--duration: '1e400' is not a number of seconds"),
    (["-d", "-5"], "--duration: '-5'"),
    (["-d", "1e-400"], "--duration: '1e-400'"),
    (["-d", "31622401"], "at most 31622400 (a year)"),
    (["--cgroup", "/nonexistent/weft"], "--cgroup: '/nonexistent/weft': No such file or directory"),
    (["--cgroup", "/etc/hostname"], "--cgroup: '/etc/hostname' is not a directory"),
    (["--cgroup", "/tmp"], "--cgroup: '/tmp' is not in a cgroup v2 file system"),
    (["--cgroup", ""], "--cgroup: '': No such file or directory"),
    (["-o", ""], "--output: empty: choose one or more of console, json, otlp"),
    (["-o", ","], "--output: empty name in ','"),
    (["-o", "json,"], "--output: empty name in 'json,'"),
    (["-o", "console,console,console,console,console"], "--output: 'console' is given twice"),
    (["-o", "jsonl"], "--output: unknown output 'jsonl'"),
    (["--otlp-endpoint", "http://[::1"], "'[' of an IPv6 address is not closed by ']'"),
    (["--otlp-endpoint", "http://[::1]x:4318"], "unexpected characters after ']'"),
    (["--otlp-endpoint", "http://localhost:99999999"], "the port is over 65535"),
    (["--otlp-endpoint", "http://localhost:0"], "port 0"),
    (["--otlp-endpoint", "http://localhost:43a8/"], "the port is not a number"),
    (["--otlp-endpoint", "http://localhost:"], "empty port"),
    (["--otlp-endpoint", "http://fe80::1:4318"], "an IPv6 address must be in brackets"),
    (["--otlp-endpoint", "http://exa$mple:4318"], "invalid character in the host name"),
])
def test_bad_option_refused_at_once(args, message):
    r, took = weft("attach", "-p", str(os.getpid()), "-o", "otlp", *args) if "-o" not in args \
        else weft("attach", "-p", str(os.getpid()), *args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert message in r.stderr, r.stderr
    assert took < 3, took  # no BPF loading first
    assert "ready" not in r.stderr


@pytest.mark.parametrize("headers,message", [
    (f"authorization:Bearer {SECRET}", "has no '='"),  # ':' typed for '='
    (f"authorization:Bearer abc={SECRET}", "is not an HTTP token"),
    (f"authorization=Bearer%Z{SECRET}", "invalid percent-encoding"),
    (f"authorization=Bearer {SECRET}%00tail", "%00 is not allowed"),  # was cut silently at %00
    (f"authorization=Bearer {SECRET}%0d%0aX-Injected:%201", "has a control character"),
    (f"ok=1,{SECRET}", "member 2"),
    (f"=Bearer {SECRET}", "member 1 has an empty key"),  # found by fuzz_otlp_config
    (f"authorization:Bearer {SECRET}=x%01y", "is not an HTTP token"),  # ditto: the name was shown
])
def test_otlp_header_values_never_echoed(headers, message):
    for r, _ in (weft("attach", "-p", str(os.getpid()), "-o", "otlp", "--otlp-headers", headers),
                 weft("attach", "-p", str(os.getpid()), "-o", "otlp",
                      env={"OTEL_EXPORTER_OTLP_HEADERS": headers})):
        assert r.returncode == 2, r.stderr
        assert message in r.stderr, r.stderr
        assert SECRET not in r.stderr + r.stdout, r.stderr


def test_good_options_still_accepted():
    """The checks refuse only what is wrong: valid values reach the agent (which
    then stops at the missing process, before loading anything)."""
    r, _ = weft("attach", "-p", "999999999", "-d", "0.5", "-o", "json,otlp", "--cgroup", cgroup2_root(),
                "--otlp-endpoint", "http://[::1]:4318/prefix", "--otlp-headers", "api-key=a%3Db%2Cc,x=y z")
    assert r.returncode == 1, r.stderr
    assert "process 999999999 does not exist" in r.stderr, r.stderr
    assert "exporting to http://[::1]:4318/prefix/v1/traces" in r.stderr, r.stderr
