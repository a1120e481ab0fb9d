"""Database CLIENT spans (PostgreSQL, MariaDB, Redis) from real clients
talking to real servers started by the tests (tests/e2e/db_servers.py),
checked field by field: name, kind, status, db.* attributes, server and
peer address, timestamps, process; redaction modes; traffic that is not a
database's; parenting under an HTTP server span; the parsers' fuzzers."""
import json
import os
import random
import re
import signal
import subprocess
import textwrap
import threading
import time
import urllib.request

import pytest

from conftest import APPS, PY, free_port, wait_port
from db_servers import dbgo, mariadb_server, pg_server, redis_server  # noqa: F401 (fixtures)

HEX32 = re.compile(r"^[0-9a-f]{32}$")
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ABSENT = object()


# ---------------------------------------------------------------- helpers


class Traced:
    """A client process started paused, traced by its own weft, then run."""

    def __init__(self, proc, weft):
        self.proc, self.weft = proc, weft
        self.out = self.err = ""
        self.t0 = self.t1 = 0

    def run(self, stdin="", timeout=60):
        self.t0 = time.time_ns()
        self.out, self.err = self.proc.communicate("go\n" + stdin, timeout=timeout)
        self.t1 = time.time_ns()
        return self

    def finish(self, count, pred=lambda s: True, timeout=15):
        """Spans matching pred once count of them are there; then weft is
        stopped, so the returned list is final (duplicates would show)."""
        self.weft.wait_spans(pred, count, timeout)
        assert self.weft.stop() == 0, self.weft.stderr
        return [s for s in self.weft.spans() if pred(s)]

    @property
    def pid(self):
        return self.proc.pid


@pytest.fixture
def traced(weft_factory):
    """traced(argv, *weft_args) -> Traced: argv waits for a line on stdin
    before exec'ing, so that weft is attached before it does anything."""
    procs = []

    def start(argv, *weft_args, env=None):
        p = subprocess.Popen(["bash", "-c", 'read _; exec "$@"', "weft-db", *map(str, argv)], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        procs.append(p)
        w = weft_factory(["attach", "-p", str(p.pid), *weft_args])
        return Traced(p, w)

    yield start
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()


def py_script(src, *args):
    return [PY, "-c", textwrap.dedent(src), *map(str, args)]


def not_parsable(weft):
    m = re.search(r"(\d+) not parsable", weft.stderr)
    assert m, weft.stderr
    return int(m.group(1))


def check_span(s, system, port, pid, namespace, t0=None, t1=None):
    """Fields every database span has."""
    assert s["kind"] == "CLIENT"
    assert HEX32.match(s["trace_id"]) and s["trace_id"] != "0" * 32
    assert HEX16.match(s["span_id"]) and s["span_id"] != "0" * 16
    assert s["start_ns"] <= s["end_ns"]
    if t0 is not None:
        assert t0 <= s["start_ns"] and s["end_ns"] <= t1
    a = s["attributes"]
    assert a["db.system.name"] == system
    if namespace is ABSENT:
        assert "db.namespace" not in a
    elif namespace is not None:
        assert a["db.namespace"] == namespace, s
    assert a["server.address"] == "127.0.0.1"
    assert a["server.port"] == port
    assert a["network.peer.address"] == "127.0.0.1"
    assert a["network.peer.port"] == port
    assert s["resource"]["process.pid"] == pid
    assert not any(k.startswith("http.") or k.startswith("url.") for k in a)


def check_op(s, name, op, collection, text):
    """Name, operation, collection (None: absent), query text (None: absent)."""
    a = s["attributes"]
    assert s["name"] == name, s
    assert a["db.operation.name"] == op, s
    if collection is None:
        assert "db.collection.name" not in a, s
    else:
        assert a["db.collection.name"] == collection, s
    if text is None:
        assert "db.query.text" not in a, s
    else:
        assert a["db.query.text"] == text, s


def check_ok(s):
    assert s["status"] == "UNSET", s
    assert "error.type" not in s["attributes"] and "db.response.status_code" not in s["attributes"], s


def check_error(s, code):
    assert s["status"] == "ERROR", s
    assert s["attributes"]["db.response.status_code"] == code, s
    assert s["attributes"]["error.type"] == code, s


def sequential(spans):
    """One connection, one request at a time: spans in order, no overlap."""
    for a, b in zip(spans, spans[1:]):
        assert a["end_ns"] <= b["start_ns"], (a, b)


def by_start(spans):
    return sorted(spans, key=lambda s: s["start_ns"])


def vm_hwm_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


def pg_dsn(pg, db):
    return f"host=127.0.0.1 port={pg.port} user=postgres dbname={db}"


# ------------------------------------------------------------- PostgreSQL


def test_pg_psql_simple_queries(traced, pg_server):
    pg = pg_server
    db = pg.create_db("t_psql")
    pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text, age int);"
           "CREATE TABLE orders (id int, user_id int)", db)
    t = traced(pg.psql_argv(db)).run(
        "INSERT INTO users (id, name, age) VALUES (1, 'alice', 30);\n"
        "SELECT name FROM users WHERE id = 1;\n"
        "UPDATE users SET age = 31 WHERE name = 'alice';\n"
        "SELECT count(*) FROM users u JOIN orders o ON o.user_id = u.id;\n"
        "DELETE FROM users WHERE id = 1;\n"
    )
    assert t.proc.returncode == 0 and "alice" in t.out, t.err
    spans = by_start(t.finish(5))
    assert len(spans) == 5, t.weft.stderr
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
        check_ok(s)
        assert s["parent_span_id"] == "" and s["resource"]["process.executable.name"] == "psql"
    check_op(spans[0], "INSERT users", "INSERT", "users", "INSERT INTO users (id, name, age) VALUES (?, ?, ?);")
    check_op(spans[1], "SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?;")
    check_op(spans[2], "UPDATE users", "UPDATE", "users", "UPDATE users SET age = ? WHERE name = ?;")
    check_op(spans[3], "SELECT", "SELECT", None, "SELECT count(*) FROM users u JOIN orders o ON o.user_id = u.id;")
    check_op(spans[4], "DELETE users", "DELETE", "users", "DELETE FROM users WHERE id = ?;")
    sequential(spans)
    assert len({s["trace_id"] for s in spans}) == 5  # no parent: each its own trace
    assert not_parsable(t.weft) == 0


PG_TXN = """
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
cur = conn.cursor()
cur.execute("INSERT INTO accounts (id, balance) VALUES (%s, %s)", (1, 100))
cur.execute("UPDATE accounts SET balance = balance - %s WHERE id = %s", (10, 1))
conn.commit()
cur.execute("INSERT INTO accounts (id, balance) VALUES (%s, %s)", (2, 5))
conn.rollback()
conn.close()
"""


def test_pg_psycopg2_transaction(traced, pg_server):
    pg = pg_server
    db = pg.create_db("t_txn")
    pg.sql("CREATE TABLE accounts (id int PRIMARY KEY, balance int)", db)
    t = traced(py_script(PG_TXN, pg_dsn(pg, db))).run()
    assert t.proc.returncode == 0, t.err
    assert pg.sql("SELECT id, balance FROM accounts ORDER BY id", db) == "1|90\n"
    spans = by_start(t.finish(7))
    assert len(spans) == 7, t.weft.stderr
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
        check_ok(s)
    expected = [
        ("BEGIN", "BEGIN", None, "BEGIN"),
        ("INSERT accounts", "INSERT", "accounts", "INSERT INTO accounts (id, balance) VALUES (?, ?)"),
        ("UPDATE accounts", "UPDATE", "accounts", "UPDATE accounts SET balance = balance - ? WHERE id = ?"),
        ("COMMIT", "COMMIT", None, "COMMIT"),
        ("BEGIN", "BEGIN", None, "BEGIN"),
        ("INSERT accounts", "INSERT", "accounts", "INSERT INTO accounts (id, balance) VALUES (?, ?)"),
        ("ROLLBACK", "ROLLBACK", None, "ROLLBACK"),
    ]
    for s, e in zip(spans, expected):
        check_op(s, *e)
    sequential(spans)
    assert not_parsable(t.weft) == 0


PG_ERRORS = """
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
codes = []
for q in ("SELEC name FROM users",
          "INSERT INTO users (id, name) VALUES (1, 'dup')",
          "SELECT name FROM no_such_table WHERE id = 3"):
    try:
        cur.execute(q)
    except psycopg2.Error as e:
        codes.append(e.pgcode)
cur.execute("SELECT name FROM users WHERE id = 1")
print(",".join(codes), cur.fetchone()[0])
"""


def test_pg_errors(traced, pg_server):
    pg = pg_server
    db = pg.create_db("t_pgerr")
    pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text); INSERT INTO users VALUES (1, 'one')", db)
    t = traced(py_script(PG_ERRORS, pg_dsn(pg, db))).run()
    assert t.out.strip() == "42601,23505,42P01 one", t.err
    spans = by_start(t.finish(4))
    assert len(spans) == 4, t.weft.stderr
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
    syntax, dup, missing, ok = spans
    check_error(syntax, "42601")
    check_op(syntax, "SELEC users", "SELEC", "users", "SELEC name FROM users")  # first word, as written
    check_error(dup, "23505")
    check_op(dup, "INSERT users", "INSERT", "users", "INSERT INTO users (id, name) VALUES (?, ?)")
    check_error(missing, "42P01")
    check_op(missing, "SELECT no_such_table", "SELECT", "no_such_table", "SELECT name FROM no_such_table WHERE id = ?")
    # The connection's state survives errors.
    check_ok(ok)
    check_op(ok, "SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?")
    sequential(spans)


PG_PREPARE_SQL = """
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
cur.execute("PREPARE getname (int) AS SELECT name FROM users WHERE id = $1")
names = []
for i in range(1, int(sys.argv[2]) + 1):
    cur.execute("EXECUTE getname (%s)", (i,))
    names.append(cur.fetchone()[0])
cur.execute("DEALLOCATE getname")
print(" ".join(names))
"""


def test_pg_sql_prepare_execute(traced, pg_server):
    """PREPARE / EXECUTE as SQL (simple query protocol, what psycopg2 does)."""
    pg = pg_server
    db = pg.create_db("t_pgprep")
    pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text);"
           "INSERT INTO users SELECT g, 'u' || g FROM generate_series(1, 40) g", db)
    n = 40
    t = traced(py_script(PG_PREPARE_SQL, pg_dsn(pg, db), n)).run()
    assert t.out.split() == [f"u{i}" for i in range(1, n + 1)], t.err
    spans = by_start(t.finish(n + 2))
    assert len(spans) == n + 2, t.weft.stderr
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
        check_ok(s)
    check_op(spans[0], "PREPARE users", "PREPARE", "users",
             "PREPARE getname (int) AS SELECT name FROM users WHERE id = $1")
    for s in spans[1:-1]:
        check_op(s, "EXECUTE", "EXECUTE", None, "EXECUTE getname (?)")
    check_op(spans[-1], "DEALLOCATE", "DEALLOCATE", None, "DEALLOCATE getname")
    sequential(spans)


def test_pg_extended_protocol_prepared(traced, pg_server, dbgo):
    """lib/pq (Go): a Parse the server rejects is an error span; then
    Parse/Describe once, Bind/Execute many times: every Execute is a span
    with the prepared statement's text; the good Prepare and the Close alone
    are none. Then an unnamed statement with a parameter."""
    pg = pg_server
    db = pg.create_db("t_pgext")
    pg.sql("CREATE TABLE items (id int PRIMARY KEY, name text);"
           "INSERT INTO items SELECT g, 'item' || g FROM generate_series(1, 100) g", db)
    n = 60
    t = traced([dbgo, "pg-bad", f"postgres://postgres@127.0.0.1:{pg.port}/{db}?sslmode=disable", str(n)]).run()
    assert t.proc.returncode == 0, t.err
    assert t.out.splitlines() == ['prepare error: pq: syntax error at or near "SELEC"'] + \
        [f"{i} item{i}" for i in range(1, n + 1)] + [f"count {n}"]
    spans = by_start(t.finish(n + 2))
    assert len(spans) == n + 2, t.weft.stderr
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
        assert s["resource"]["process.executable.name"] == "dbgo"
    bad, spans = spans[0], spans[1:]
    check_error(bad, "42601")
    check_op(bad, "SELEC items", "SELEC", "items", "SELEC id FROM items WHERE id = $1")
    for s in spans:
        check_ok(s)
    for s in spans[:-1]:
        check_op(s, "SELECT items", "SELECT", "items", "SELECT id, name FROM items WHERE id = $1")
    check_op(spans[-1], "SELECT items", "SELECT", "items", "SELECT count(*) FROM items WHERE id <= $1")
    sequential(spans)
    assert not_parsable(t.weft) == 0


PG_BIG = """
import sys, psycopg2
conn = psycopg2.connect(sys.argv[1])
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT id, repeat('x', 1000) AS pad FROM generate_series(1, 10240) AS id")
rows = cur.fetchall()
cur.execute("SELECT 42")
print(len(rows), sum(len(r[1]) for r in rows), cur.fetchone()[0])
"""


def test_pg_10mb_result(traced, pg_server):
    pg = pg_server
    db = pg.create_db("t_pgbig")
    # weft stops once every process it traces has exited: an idle one keeps
    # it running after the client, so that its peak RSS can be read.
    idle = subprocess.Popen(["sleep", "600"])
    try:
        t = traced(py_script(PG_BIG, pg_dsn(pg, db)), "-p", str(idle.pid))
        t.run()
        assert t.out.split() == ["10240", str(10240 * 1000), "42"], t.err
        t.weft.wait_spans(count=2)
        hwm_mb = vm_hwm_kb(t.weft.proc.pid) / 1024
    finally:
        idle.kill()
        idle.wait()
    spans = by_start(t.finish(2))
    assert len(spans) == 2, t.weft.stderr
    big, after = spans
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
        check_ok(s)
    # generate_series is a set-returning function: no collection.
    check_op(big, "SELECT", "SELECT", None,
             "SELECT id, repeat(?, ?) AS pad FROM generate_series(?, ?) AS id")
    check_op(after, "SELECT", "SELECT", None, "SELECT ?")
    assert big["end_ns"] - big["start_ns"] > 0 and big["end_ns"] <= after["start_ns"]
    assert hwm_mb < 100, f"weft peak RSS {hwm_mb:.1f} MB for a 10 MB result"
    assert not_parsable(t.weft) == 0


PG_CONCURRENT = """
import sys, threading, psycopg2
dsn, nthreads, nq = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
barrier = threading.Barrier(nthreads)
errors = []
def worker(t):
    try:
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        cur = conn.cursor()
        barrier.wait()
        for i in range(nq):
            n = t * 1000 + i
            cur.execute(f"SELECT {n} AS n, pg_backend_pid()")
            assert cur.fetchone()[0] == n
        conn.close()
    except Exception as e:
        errors.append(repr(e))
ts = [threading.Thread(target=worker, args=(t,)) for t in range(nthreads)]
for x in ts: x.start()
for x in ts: x.join()
print("errors", errors)
"""


def test_pg_20_concurrent_connections(traced, pg_server):
    pg = pg_server
    db = pg.create_db("t_pgconc")
    nthreads, nq = 20, 15
    t = traced(py_script(PG_CONCURRENT, pg_dsn(pg, db), nthreads, nq), "--db-statement", "raw").run()
    assert t.out.strip() == "errors []", t.err
    spans = t.finish(nthreads * nq)
    texts = sorted(s["attributes"]["db.query.text"] for s in spans)
    assert texts == sorted(f"SELECT {t_ * 1000 + i} AS n, pg_backend_pid()" for t_ in range(nthreads)
                           for i in range(nq)), t.weft.stderr
    for s in spans:
        check_span(s, "postgresql", pg.port, t.pid, db, t.t0, t.t1)
        check_ok(s)
        check_op(s, "SELECT", "SELECT", None, s["attributes"]["db.query.text"])
    # Per connection (thread), its spans are in query order and do not overlap.
    number = lambda s: int(s["attributes"]["db.query.text"].split()[1])
    for th in range(nthreads):
        mine = by_start([s for s in spans if number(s) // 1000 == th])
        assert [number(s) for s in mine] == [th * 1000 + i for i in range(nq)]
        sequential(mine)
    assert len({s["span_id"] for s in spans}) == len(spans)
    assert not_parsable(t.weft) == 0


# ---------------------------------------------------------------- MariaDB


def test_mariadb_client_queries_and_use(traced, mariadb_server):
    my = mariadb_server
    db, other = my.create_db("t_mcli"), my.create_db("t_mcli2")
    my.root_sql(f"CREATE TABLE {db}.users (id int PRIMARY KEY, name varchar(20));"
                f"CREATE TABLE {other}.things (id int)")
    t = traced(my.client_argv(db)).run(
        "INSERT INTO users (id, name) VALUES (1, 'alice');\n"
        "SELECT name FROM users WHERE id = 1;\n"
        f"USE {other};\n"
        "SELECT COUNT(*) FROM things;\n"
    )
    assert t.proc.returncode == 0 and "alice" in t.out, t.err
    # The client's own query: SELECT DATABASE() before USE.
    spans = by_start(t.finish(5))
    assert len(spans) == 5, t.weft.stderr
    for s in spans:
        check_span(s, "mariadb", my.port, t.pid, None, t.t0, t.t1)
        check_ok(s)
        assert s["resource"]["process.executable.name"] == "mariadb"
    insert, select, database, use, things = spans
    check_op(insert, "INSERT users", "INSERT", "users", "INSERT INTO users (id, name) VALUES (?, ?)")
    check_op(select, "SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?")
    check_op(database, "SELECT", "SELECT", None, "SELECT DATABASE()")
    check_op(use, "USE", "USE", None, None)  # COM_INIT_DB carries no statement
    check_op(things, "SELECT things", "SELECT", "things", "SELECT COUNT(*) FROM things")
    for s in (insert, select, database):
        assert s["attributes"]["db.namespace"] == db
    for s in (use, things):
        assert s["attributes"]["db.namespace"] == other
    sequential(spans)
    assert not_parsable(t.weft) == 0


MY_PYMYSQL = """
import sys, pymysql
port, db = int(sys.argv[1]), sys.argv[2]
conn = pymysql.connect(host="127.0.0.1", port=port, user="weft", database=db, autocommit=True)
cur = conn.cursor()
cur.execute("INSERT INTO users (id, name) VALUES (%s, %s)", (1, "alice"))
cur.execute("SELECT name FROM users WHERE id = %s", (1,))
print(cur.fetchone()[0])
codes = []
for q in ("SELEC name FROM users",
          "INSERT INTO users (id, name) VALUES (1, 'dup')",
          "SELECT name FROM no_such_table"):
    try:
        cur.execute(q)
    except pymysql.MySQLError as e:
        codes.append(str(e.args[0]))
print(",".join(codes))
cur.execute("PREPARE s FROM 'SELECT name FROM users WHERE id = ?'")
cur.execute("SET @id = 1")
for _ in range(5):
    cur.execute("EXECUTE s USING @id")
    assert cur.fetchone()[0] == "alice"
cur.execute("DEALLOCATE PREPARE s")
conn.close()
"""


def test_mariadb_pymysql_queries_errors_sql_prepare(traced, mariadb_server):
    """pymysql: COM_QUERY only (it interpolates parameters client-side and
    has no server-side prepared statements; SQL PREPARE/EXECUTE are
    COM_QUERY too: the binary protocol is test_mariadb_binary_prepared)."""
    my = mariadb_server
    db = my.create_db("t_mpy")
    my.root_sql(f"CREATE TABLE {db}.users (id int PRIMARY KEY, name varchar(20))")
    t = traced(py_script(MY_PYMYSQL, my.port, db)).run()
    assert t.out.split() == ["alice", "1064,1062,1146"], t.err
    spans = by_start(t.finish(13))
    assert len(spans) == 13, t.weft.stderr
    for s in spans:
        check_span(s, "mariadb", my.port, t.pid, db, t.t0, t.t1)
    insert, select, syntax, dup, missing, prep, setv = spans[:7]
    executes, dealloc = spans[7:12], spans[12]
    for s in (insert, select, prep, setv, dealloc, *executes):
        check_ok(s)
    check_op(insert, "INSERT users", "INSERT", "users", "INSERT INTO users (id, name) VALUES (?, ?)")
    check_op(select, "SELECT users", "SELECT", "users", "SELECT name FROM users WHERE id = ?")
    check_error(syntax, "1064")
    check_op(syntax, "SELEC users", "SELEC", "users", "SELEC name FROM users")
    check_error(dup, "1062")
    check_op(dup, "INSERT users", "INSERT", "users", "INSERT INTO users (id, name) VALUES (?, ?)")
    check_error(missing, "1146")
    check_op(missing, "SELECT no_such_table", "SELECT", "no_such_table", "SELECT name FROM no_such_table")
    check_op(prep, "PREPARE", "PREPARE", None, "PREPARE s FROM ?")
    check_op(setv, "SET", "SET", None, "SET @id = ?")
    for s in executes:
        check_op(s, "EXECUTE", "EXECUTE", None, "EXECUTE s USING @id")
    check_op(dealloc, "DEALLOCATE", "DEALLOCATE", None, "DEALLOCATE PREPARE s")
    sequential(spans)
    assert not_parsable(t.weft) == 0


def test_mariadb_binary_prepared(traced, mariadb_server, dbgo):
    """go-sql-driver/mysql: a COM_STMT_PREPARE the server rejects is an
    error span; then COM_STMT_PREPARE once (no span: it succeeded),
    COM_STMT_EXECUTE n times, each with the prepared text; COM_STMT_CLOSE."""
    my = mariadb_server
    db = my.create_db("t_mbin")
    my.root_sql(f"USE {db}; CREATE TABLE items (id int PRIMARY KEY, name varchar(20));"
                "INSERT INTO items SELECT seq, CONCAT('item', seq) FROM seq_1_to_100")
    n = 50
    t = traced([dbgo, "mysql-bad", f"weft@tcp(127.0.0.1:{my.port})/{db}", str(n)]).run()
    assert t.proc.returncode == 0, t.err
    lines = t.out.splitlines()
    assert lines[0].startswith("prepare error: Error 1064") and lines[1:] == [f"{i} item{i}" for i in range(1, n + 1)]
    spans = by_start(t.finish(n + 1))
    assert len(spans) == n + 1, t.weft.stderr
    for s in spans:
        check_span(s, "mariadb", my.port, t.pid, db, t.t0, t.t1)
    bad, spans = spans[0], spans[1:]
    check_error(bad, "1064")
    check_op(bad, "SELEC items", "SELEC", "items", "SELEC id FROM items WHERE id = ?")
    for s in spans:
        check_ok(s)
        check_op(s, "SELECT items", "SELECT", "items", "SELECT id, name FROM items WHERE id = ?")
    sequential(spans)
    assert not_parsable(t.weft) == 0


# ------------------------------------------------------------------ Redis


def test_redis_cli_commands_error_select(traced, redis_server):
    rd = redis_server
    k = f"cli{os.getpid()}"
    t = traced(rd.cli_argv()).run(
        f"SET {k}:a hello\nGET {k}:a\nLPUSH {k}:a x\nSELECT 7\nSET {k}:b v\nGET {k}:b\n"
    )
    assert t.proc.returncode == 0 and "WRONGTYPE" in t.out, (t.out, t.err)
    # redis-cli asks COMMAND DOCS first (for its hints).
    spans = by_start(t.finish(7))
    assert len(spans) == 7, t.weft.stderr
    for s in spans:
        check_span(s, "redis", rd.port, t.pid, None, t.t0, t.t1)
        assert s["resource"]["process.executable.name"] == "redis-cli"
    docs, set_a, get_a, lpush, select, set_b, get_b = spans
    check_op(docs, "COMMAND", "COMMAND", None, "COMMAND DOCS")
    check_op(set_a, "SET", "SET", None, f"SET {k}:a ?")
    check_op(get_a, "GET", "GET", None, f"GET {k}:a")
    check_op(lpush, "LPUSH", "LPUSH", None, f"LPUSH {k}:a ?")
    check_error(lpush, "WRONGTYPE")
    check_op(select, "SELECT", "SELECT", None, "SELECT 7")
    check_op(set_b, "SET", "SET", None, f"SET {k}:b ?")
    check_op(get_b, "GET", "GET", None, f"GET {k}:b")
    for s in (docs, set_a, get_a, select, set_b, get_b):
        check_ok(s)
    for s in (docs, set_a, get_a, lpush, select):
        assert s["attributes"]["db.namespace"] == "0"
    for s in (set_b, get_b):
        assert s["attributes"]["db.namespace"] == "7"
    sequential(spans)
    assert not_parsable(t.weft) == 0


REDIS_PY = """
import sys, redis
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]), db=5)
k, n = sys.argv[2], int(sys.argv[3])
for i in range(n):
    r.set(f"{k}:{i}", i)
for i in range(n):
    assert r.get(f"{k}:{i}") == str(i).encode()
p = r.pipeline(transaction=False)
for _ in range(10):
    p.incr(f"{k}:c")
assert p.execute() == list(range(1, 11))
p = r.pipeline(transaction=True)
p.set(f"{k}:t", "v").get(f"{k}:t").hset(f"{k}:h", "f", "x")
assert p.execute() == [True, b"v", 1]
try:
    r.lpush(f"{k}:0", "x")
except redis.ResponseError as e:
    print(str(e).split()[0])
"""


def test_redis_python_loop_pipeline_error(traced, redis_server):
    rd = redis_server
    k, n = f"py{os.getpid()}", 50
    t = traced(py_script(REDIS_PY, rd.port, k, n)).run()
    assert t.out.strip() == "WRONGTYPE", t.err
    # SELECT 5 (on connect), n SET, n GET, 2 pipelines, LPUSH.
    spans = by_start(t.finish(2 * n + 4))
    assert len(spans) == 2 * n + 4, t.weft.stderr
    for s in spans:
        check_span(s, "redis", rd.port, t.pid, None, t.t0, t.t1)
    select, sets, gets = spans[0], spans[1:n + 1], spans[n + 1:2 * n + 1]
    incrs, multi, lpush = spans[2 * n + 1:]
    check_op(select, "SELECT", "SELECT", None, "SELECT 5")
    assert select["attributes"]["db.namespace"] == "0"  # a new connection starts on 0
    for s in spans[1:]:
        assert s["attributes"]["db.namespace"] == "5"
    for i, s in enumerate(sets):
        check_op(s, "SET", "SET", None, f"SET {k}:{i} ?")
        check_ok(s)
    for i, s in enumerate(gets):
        check_op(s, "GET", "GET", None, f"GET {k}:{i}")
        check_ok(s)
    # A pipeline is one span: one write, one read.
    check_op(incrs, "BATCH INCRBY", "BATCH INCRBY", None, "; ".join([f"INCRBY {k}:c ?"] * 10))
    assert incrs["attributes"]["db.operation.batch.size"] == 10
    check_ok(incrs)
    check_op(multi, "BATCH", "BATCH", None, f"MULTI; SET {k}:t ?; GET {k}:t; HSET {k}:h ? ?; EXEC")
    assert multi["attributes"]["db.operation.batch.size"] == 5
    check_ok(multi)
    check_op(lpush, "LPUSH", "LPUSH", None, f"LPUSH {k}:0 ?")
    check_error(lpush, "WRONGTYPE")
    for s in spans:
        if s is not incrs and s is not multi:
            assert "db.operation.batch.size" not in s["attributes"]
    sequential(spans)
    assert not_parsable(t.weft) == 0


def test_redis_long_pipeline_batch_size(traced, redis_server):
    """A pipeline longer than the request capture: one span; the batch size
    must not be the number of commands that happened to fit in the capture
    (the conventions' db.operation.batch.size is the batch's size; when
    weft cannot know it, it should leave it out)."""
    rd = redis_server
    k, n = f"long{os.getpid()}", 300
    t = traced(py_script("""
        import sys, redis
        r = redis.Redis(host="127.0.0.1", port=int(sys.argv[1]))
        p = r.pipeline(transaction=False)
        for i in range(int(sys.argv[3])):
            p.set(f"{sys.argv[2]}:{i}", "v" * 10)
        assert p.execute() == [True] * int(sys.argv[3])
        """, rd.port, k, n)).run()
    assert t.proc.returncode == 0, t.err
    spans = t.finish(1)
    assert len(spans) == 1, t.weft.stderr
    (s,) = spans
    check_span(s, "redis", rd.port, t.pid, "0", t.t0, t.t1)
    check_ok(s)
    assert s["attributes"]["db.query.text"].startswith(f"SET {k}:0 ?; SET {k}:1 ?; ")
    assert s["attributes"].get("db.operation.batch.size") in (None, n), s["attributes"]


def test_connections_opened_before_attach(weft_factory, pg_server, mariadb_server, redis_server):
    """Connections made before weft attached: queries are reported; what
    only the connection's start tells (database name, Redis database index,
    MariaDB vs MySQL greeting) is left out or generic, never guessed."""
    pg, my, rd = pg_server, mariadb_server, redis_server
    db = pg.create_db("t_pre")
    pg.sql("CREATE TABLE items (id int, name text); INSERT INTO items VALUES (3, 'three')", db)
    mdb = my.create_db("t_pre")
    my.root_sql(f"CREATE TABLE {mdb}.items (id int, name varchar(20)); INSERT INTO {mdb}.items VALUES (3, 'three')")
    p = subprocess.Popen(py_script("""
        import sys, psycopg2, pymysql, redis
        pg = psycopg2.connect(sys.argv[1]); pg.autocommit = True
        my = pymysql.connect(host="127.0.0.1", port=int(sys.argv[2]), user="weft", database=sys.argv[3],
                             autocommit=True)
        r = redis.Redis(host="127.0.0.1", port=int(sys.argv[4]), db=2)
        r.ping()
        print("connected", flush=True)
        sys.stdin.readline()
        c = pg.cursor(); c.execute("SELECT name FROM items WHERE id = 3"); a = c.fetchone()[0]
        m = my.cursor(); m.execute("SELECT name FROM items WHERE id = 3"); b = m.fetchone()[0]
        r.set("pre:k", a + b)
        print(r.get("pre:k").decode())
        """, pg_dsn(pg, db), my.port, mdb, rd.port), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline() == "connected\n"
        w = weft_factory(["attach", "-p", str(p.pid)])
        out, _ = p.communicate("go\n", timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert out == "threethree\n"
    w.wait_spans(count=4)
    assert w.stop() == 0
    spans = by_start(w.spans())
    assert len(spans) == 4, w.stderr
    pgs, mys, rds, rdg = spans
    check_span(pgs, "postgresql", pg.port, p.pid, ABSENT)
    check_op(pgs, "SELECT items", "SELECT", "items", "SELECT name FROM items WHERE id = ?")
    check_span(mys, "mysql", my.port, p.pid, ABSENT)  # the MariaDB greeting was not seen
    check_op(mys, "SELECT items", "SELECT", "items", "SELECT name FROM items WHERE id = ?")
    check_span(rds, "redis", rd.port, p.pid, ABSENT)  # SELECT 2 happened before
    check_op(rds, "SET", "SET", None, "SET pre:k ?")
    check_span(rdg, "redis", rd.port, p.pid, ABSENT)
    check_op(rdg, "GET", "GET", None, "GET pre:k")
    for s in spans:
        check_ok(s)
    assert not_parsable(w) == 0


@pytest.mark.parametrize("system", ["postgresql", "mariadb"])
def test_unix_socket_clients(traced, pg_server, mariadb_server, system):
    """psql's and the mariadb client's default: a Unix domain socket."""
    if system == "postgresql":
        argv = ["psql", "-X", "-h", pg_server.dir, "-p", pg_server.port, "-U", "postgres", "-d", "postgres",
                "-c", "SELECT 1"]
        path = os.path.join(pg_server.dir, f".s.PGSQL.{pg_server.port}")
    else:
        argv = ["mariadb", "--no-defaults", f"--socket={mariadb_server.socket}", "-u", "root", "-e", "SELECT 1"]
        path = mariadb_server.socket
    t = traced(argv).run()
    assert t.proc.returncode == 0, t.err
    spans = t.finish(1, timeout=3)
    assert len(spans) == 1, t.weft.stderr
    (s,) = spans
    assert s["kind"] == "CLIENT" and s["attributes"]["db.system.name"] == system
    check_op(s, "SELECT", "SELECT", None, "SELECT ?")
    a = s["attributes"]
    assert a["network.transport"] == "unix"
    assert a["server.address"] == a["network.peer.address"] == path[:63]
    assert "server.port" not in a and "network.peer.port" not in a


# -------------------------------------------------------------- redaction

REDACTION = """
import sys, psycopg2, pymysql, redis
pg = psycopg2.connect(sys.argv[1]); pg.autocommit = True
c = pg.cursor()
c.execute("SELECT id FROM users WHERE name = 'secret-pg-4711' AND age > 99887766")
my = pymysql.connect(host="127.0.0.1", port=int(sys.argv[2]), user="weft", database=sys.argv[3], autocommit=True)
m = my.cursor()
m.execute('SELECT id FROM users WHERE name = "secret-my-4711" OR id IN (31337, 31338)')
r = redis.Redis(host="127.0.0.1", port=int(sys.argv[4]))
r.set("red:key", "secret-redis-4711")
try:
    r.execute_command("AUTH", "secret-password-4711")
except redis.ResponseError:
    pass
"""

SECRETS = ("secret-pg-4711", "99887766", "secret-my-4711", "31337", "31338", "secret-redis-4711",
           "secret-password-4711")


@pytest.mark.parametrize("mode", ["default", "redacted", "raw", "off"])
def test_redaction_modes(traced, pg_server, mariadb_server, redis_server, mode, tmp_path):
    pg, my, rd = pg_server, mariadb_server, redis_server
    db = pg.create_db(f"t_red_{mode}")
    pg.sql("CREATE TABLE users (id int, name text, age int)", db)
    mdb = my.create_db(f"t_red_{mode}")
    my.root_sql(f"CREATE TABLE {mdb}.users (id int, name varchar(20))")
    args = [] if mode == "default" else ["--db-statement", mode]
    # From a file: with -c the secrets would be in process.command_line.
    script = tmp_path / "redaction.py"
    script.write_text(REDACTION)
    t = traced([PY, str(script), pg_dsn(pg, db), my.port, mdb, rd.port], *args).run()
    assert t.proc.returncode == 0, t.err
    spans = t.finish(4)
    assert len(spans) == 4, t.weft.stderr
    by_sys = {}
    for s in spans:
        by_sys.setdefault(s["attributes"]["db.system.name"], []).append(s)
    (p,), (m,) = by_sys["postgresql"], by_sys["mariadb"]
    rset, rauth = by_start(by_sys["redis"])
    texts = {
        "redacted": (
            "SELECT id FROM users WHERE name = ? AND age > ?",
            "SELECT id FROM users WHERE name = ? OR id IN (?)",
            "SET red:key ?",
            "AUTH ?",
        ),
        "raw": (
            "SELECT id FROM users WHERE name = 'secret-pg-4711' AND age > 99887766",
            'SELECT id FROM users WHERE name = "secret-my-4711" OR id IN (31337, 31338)',
            "SET red:key secret-redis-4711",
            "AUTH ?",  # credentials are masked in every mode
        ),
        "off": (None, None, None, None),
    }[mode if mode != "default" else "redacted"]
    check_op(p, "SELECT users", "SELECT", "users", texts[0])
    check_op(m, "SELECT users", "SELECT", "users", texts[1])
    check_op(rset, "SET", "SET", None, texts[2])
    check_op(rauth, "AUTH", "AUTH", None, texts[3])
    check_error(rauth, "ERR")  # no password configured
    everything = json.dumps(spans)
    leaked = [x for x in SECRETS if x in everything]
    if mode == "raw":
        assert leaked == ["secret-pg-4711", "99887766", "secret-my-4711", "31337", "31338", "secret-redis-4711"]
    else:
        assert leaked == []
    assert "secret-password-4711" not in everything


# ---------------------------------------------------------------- detection

GARBAGE = """
import os, random, socket, sys, time
rng = random.Random(int(sys.argv[1]))
ports = [int(p) for p in sys.argv[2:]]
http = (b"GET /index.html HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nUser-Agent: weft-test\\r\\n\\r\\n",
        b"POST /api HTTP/1.1\\r\\nHost: x\\r\\nContent-Length: 5\\r\\n\\r\\nhello")
def exchange(port, payload, greet):
    s = socket.create_connection(("127.0.0.1", port), timeout=2)
    s.settimeout(0.3)
    try:
        if greet:
            try: s.recv(4096)       # MariaDB speaks first
            except OSError: pass
        s.sendall(payload)
        try: s.recv(65536)
        except OSError: pass
        s.sendall(payload)
        try: s.recv(65536)
        except OSError: pass
    except OSError:
        pass
    finally:
        s.close()
n = 0
for port in ports:
    greet = port == ports[1]
    for payload in http:
        exchange(port, payload, greet); n += 1
    for _ in range(12):
        exchange(port, bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 5, 17, 64, 300, 1500]))), greet); n += 1
print(n)
"""


def test_http_and_random_bytes_to_db_ports(traced, pg_server, mariadb_server, redis_server):
    """HTTP requests and random bytes sent to the database ports: weft
    reports no database span, does not crash, and the servers live on."""
    pg, my, rd = pg_server, mariadb_server, redis_server
    t = traced(py_script(GARBAGE, 4711, pg.port, my.port, rd.port)).run(timeout=120)
    assert t.out.strip() == str(3 * 14), t.err
    # weft exits by itself once the traced process has: cleanly, with its counters.
    assert t.weft.stop() == 0, t.weft.stderr
    assert re.search(r"\d+ spans; kernel sent \d+ exchanges", t.weft.stderr), t.weft.stderr
    spans = t.weft.spans()
    assert [s for s in spans if "db.system.name" in s["attributes"]] == []
    # The HTTP requests may be reported as HTTP client spans (without a
    # response); nothing else may appear.
    for s in spans:
        assert s["kind"] == "CLIENT" and s["attributes"].get("http.request.method") in ("GET", "POST"), s
    assert pg.sql("SELECT 1") == "1\n"
    assert "1" in my.root_sql("SELECT 1")


ECHO_CLIENT = """
import random, socket, sys
rng = random.Random(int(sys.argv[1]))
s = socket.create_connection(("127.0.0.1", int(sys.argv[2])))
total = 0
for i in range(200):
    data = bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 3, 8, 40, 200, 2000, 9000])))
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        got += s.recv(65536)
    assert got == data
    total += len(data)
s.close()
print(total)
"""


def test_random_bytes_to_echo_server_no_spans(traced, services):
    port = free_port()
    services([PY, os.path.join(APPS, "py", "echo_service.py"), str(port)], port)
    t = traced(py_script(ECHO_CLIENT, 99, port)).run(timeout=120)
    assert t.proc.returncode == 0 and int(t.out) > 0, t.err
    assert t.weft.stop() == 0, t.weft.stderr
    assert re.search(r"0 spans; kernel sent \d+ exchanges", t.weft.stderr), t.weft.stderr
    assert t.weft.spans() == []


# ------------------------------------------ HTTP service -> PostgreSQL


def test_http_service_db_spans_are_children(weft_factory, services, pg_server):
    """100 concurrent requests to a threaded service that queries
    PostgreSQL on the request's thread (pooled connections shared between
    requests): each database span is the child of its request's server span."""
    pg = pg_server
    db = pg.create_db("t_svc")
    pg.sql("CREATE TABLE users (id int PRIMARY KEY, name text);"
           "INSERT INTO users SELECT g, 'user' || g FROM generate_series(1, 200) g", db)
    port = free_port()
    svc = services([PY, os.path.join(APPS, "py", "db_service.py"), str(port), pg_dsn(pg, db)], port)
    w = weft_factory(["attach", "-p", str(svc.pid), "--db-statement", "raw"])
    n = 100
    ids = random.Random(5).sample(range(1, 201), n - 3) + [404001, 404002, 404003]  # 3 misses
    results, barrier = {}, threading.Barrier(n)

    def get(i):
        barrier.wait()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/user/{i}", timeout=30) as r:
                results[i] = (r.status, r.read().decode().strip())
        except urllib.error.HTTPError as e:
            results[i] = (e.code, "")

    threads = [threading.Thread(target=get, args=(i,)) for i in ids]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    assert {i: r[0] for i, r in results.items()} == {i: 200 if i < 1000 else 404 for i in ids}
    assert all(results[i][1] == f"user{i}" for i in ids if i < 1000)

    servers = w.wait_spans(lambda s: s["kind"] == "SERVER", n, timeout=20)
    dbs = w.wait_spans(lambda s: "db.system.name" in s["attributes"], n, timeout=20)
    assert w.stop() == 0
    spans = w.spans()
    servers = [s for s in spans if s["kind"] == "SERVER"]
    dbs = [s for s in spans if "db.system.name" in s["attributes"]]
    assert len(servers) == n and len(dbs) == n, w.stderr
    assert len(spans) == 2 * n  # nothing else (connection setup makes no span)
    server_by_id = {int(s["attributes"]["url.path"].split("/")[2]): s for s in servers}
    assert sorted(server_by_id) == sorted(ids)
    seen = set()
    for d in dbs:
        text = d["attributes"]["db.query.text"]
        m = re.fullmatch(r"SELECT id, name FROM users WHERE id = (\d+)", text)
        assert m, text
        uid = int(m.group(1))
        assert uid not in seen
        seen.add(uid)
        srv = server_by_id[uid]
        assert d["parent_span_id"] == srv["span_id"], (uid, d, srv)
        assert d["trace_id"] == srv["trace_id"]
        assert srv["start_ns"] <= d["start_ns"] <= d["end_ns"] <= srv["end_ns"]
        check_span(d, "postgresql", pg.port, svc.pid, db)
        check_ok(d)
        check_op(d, "SELECT users", "SELECT", "users", text)
        assert srv["attributes"]["http.response.status_code"] == (200 if uid < 1000 else 404)
    assert seen == set(ids)
    assert len({s["trace_id"] for s in servers}) == n
