"""memcached's text protocol: client spans from a real memcached 1.6 and a
client on one TCP connection, checked field by field (the protocol added by
the recipe of docs/ARCHITECTURE.md: one line in protocols.def, one kernel
file, one agent folder)."""
import os
import subprocess

import pytest

from conftest import APPS, PY, free_port, stop_process, wait_port


@pytest.fixture
def memcached():
    port = free_port()
    p = subprocess.Popen(["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "root", "-m", "16"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    yield port
    stop_process(p)


def test_memcached_client_spans(weft_factory, memcached):
    client = subprocess.Popen([PY, os.path.join(APPS, "py", "memcached_client.py"), str(memcached)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        w = weft_factory(["attach", "-p", str(client.pid)])
        client.stdin.write("go\n")
        client.stdin.flush()
        replies = [client.stdout.readline().strip() for _ in range(6)]
        assert replies == ["STORED", "VALUE user:42 0 6", "END",
                           "CLIENT_ERROR cannot increment or decrement non-numeric value", "DELETED", "ERROR"]
        spans = w.wait_spans(lambda s: s["attributes"].get("db.system.name") == "memcached", count=6)
    finally:
        client.stdin.close()
        client.wait(10)
    assert [s["name"] for s in spans] == ["set", "get", "get", "incr", "delete", "touch"], spans
    for s in spans:
        a = s["attributes"]
        assert s["kind"] == "CLIENT"
        assert a["server.address"] == "127.0.0.1" and a["server.port"] == memcached
        assert a["db.operation.name"] == s["name"]
        assert s["resource"]["process.pid"] == client.pid
        assert s["start_ns"] <= s["end_ns"]
    set_, hit, miss, incr, delete, touch = spans
    assert set_["attributes"]["db.query.text"] == "set ? ? ? ?"  # keys and sizes redacted
    assert set_["status"] == "UNSET" and hit["status"] == "UNSET" and miss["status"] == "UNSET"
    assert hit["attributes"]["db.query.text"] == "get ?"
    assert incr["status"] == "ERROR"
    assert incr["attributes"]["error.type"] == "CLIENT_ERROR"
    assert incr["attributes"]["db.response.status_code"] == "CLIENT_ERROR"
    assert delete["status"] == "UNSET"
    assert touch["status"] == "ERROR" and touch["attributes"]["error.type"] == "ERROR"
    # One trace each: no parent in a plain client.
    assert all(s["parent_span_id"] == "" for s in spans)
    assert len({s["span_id"] for s in spans}) == 6


def test_memcached_raw_statement(weft_factory, memcached):
    client = subprocess.Popen([PY, os.path.join(APPS, "py", "memcached_client.py"), str(memcached)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        w = weft_factory(["attach", "-p", str(client.pid), "--db-statement", "raw"])
        client.stdin.write("go\n")
        client.stdin.flush()
        for _ in range(6):
            client.stdout.readline()
        spans = w.wait_spans(lambda s: s["attributes"].get("db.system.name") == "memcached", count=6)
    finally:
        client.stdin.close()
        client.wait(10)
    assert spans[0]["attributes"]["db.query.text"] == "set user:42 0 0 6"  # the data block never
    assert spans[1]["attributes"]["db.query.text"] == "get user:42"
