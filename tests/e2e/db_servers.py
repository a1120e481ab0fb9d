"""Real database servers from Debian for the database e2e tests, started on
loopback with private data directories and stopped at the end of the
session (also when tests fail).

  PostgreSQL 15  initdb + postgres as the `postgres` user, trust auth
  MariaDB        mariadb-install-db + mariadbd --user=root, user `weft`
  Redis          redis-server without persistence

Each fixture yields a small object with the port and helpers; tests create
their own databases / keys so that they do not depend on each other.
"""
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from conftest import ROOT, free_port, stop_process, wait_port

PG_BIN = "/usr/lib/postgresql/15/bin"
GO_SRC = os.path.join(ROOT, "tests", "apps", "dbgo")


def _stop(proc, sig=signal.SIGTERM):
    stop_process(proc, sig, timeout=20)


def _private_dir(prefix, owner=None):
    """A directory the server user can reach: pytest's tmp dirs live under a
    0700 directory of root, so postgres could not enter them."""
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    if owner:
        pw = pwd.getpwnam(owner)
        os.chown(d, pw.pw_uid, pw.pw_gid)
    return d


class Postgres:
    user = "postgres"

    def __init__(self):
        self.dir = _private_dir("weft-pg-", owner="postgres")
        self.data = os.path.join(self.dir, "data")
        self.port = free_port()
        self.proc = None
        pw = pwd.getpwnam("postgres")
        as_pg = dict(user=pw.pw_uid, group=pw.pw_gid, extra_groups=[])
        subprocess.run(
            [f"{PG_BIN}/initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8",
             "--locale=C", "--no-sync"],
            check=True, capture_output=True, cwd=self.dir, **as_pg,
        )
        self.log = open(os.path.join(self.dir, "postgres.log"), "w")
        os.chown(self.log.name, pw.pw_uid, pw.pw_gid)
        self.proc = subprocess.Popen(
            [f"{PG_BIN}/postgres", "-D", self.data, "-h", "127.0.0.1", "-p", str(self.port),
             "-k", self.dir, "-c", "fsync=off", "-c", "synchronous_commit=off",
             "-c", "full_page_writes=off", "-c", "max_connections=300", "-c", "shared_buffers=64MB"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir, **as_pg,
        )
        wait_port(self.port, timeout=30, proc=self.proc)
        deadline = time.time() + 30
        while subprocess.run(["pg_isready", "-q", "-h", "127.0.0.1", "-p", str(self.port)]).returncode != 0:
            if time.time() > deadline or self.proc.poll() is not None:
                raise RuntimeError("postgres did not become ready: " + open(self.log.name).read())
            time.sleep(0.05)

    def psql_argv(self, db="postgres", *extra):
        return ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-h", "127.0.0.1", "-p", str(self.port),
                "-U", "postgres", "-d", db, *extra]

    def sql(self, sql, db="postgres"):
        """Runs sql untraced (setup); returns psql's stdout."""
        r = subprocess.run(self.psql_argv(db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql),
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql failed: {r.stderr}")
        return r.stdout

    def create_db(self, name):
        self.sql(f"DROP DATABASE IF EXISTS {name}")
        self.sql(f"CREATE DATABASE {name}")
        return name

    def stop(self):
        _stop(self.proc, signal.SIGINT)  # fast shutdown
        if self.proc is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class MariaDB:
    user = "weft"

    def __init__(self):
        self.dir = _private_dir("weft-mariadb-")
        self.data = os.path.join(self.dir, "data")
        self.socket = os.path.join(self.dir, "mysqld.sock")
        self.port = free_port()
        self.proc = None
        subprocess.run(
            ["mariadb-install-db", "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"],
            check=True, capture_output=True, cwd=self.dir,
        )
        self.log = open(os.path.join(self.dir, "mariadbd.log"), "w")
        self.proc = subprocess.Popen(
            ["mariadbd", "--no-defaults", f"--datadir={self.data}", "--user=root",
             "--bind-address=127.0.0.1", f"--port={self.port}", f"--socket={self.socket}",
             f"--pid-file={self.dir}/mariadbd.pid", "--skip-name-resolve", "--skip-log-bin",
             "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
             "--max-connections=300", "--skip-host-cache"],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=self.dir,
        )
        wait_port(self.port, timeout=60, proc=self.proc)
        self.root_sql("CREATE USER IF NOT EXISTS 'weft'@'%'; GRANT ALL ON *.* TO 'weft'@'%'; FLUSH PRIVILEGES;")

    def client_argv(self, db=None, *extra):
        argv = ["mariadb", "--no-defaults", "-h", "127.0.0.1", f"--port={self.port}", "-u", "weft",
                "--protocol=TCP", "--skip-ssl", "--batch"]
        if db:
            argv += ["-D", db]
        return argv + list(extra)

    def root_sql(self, sql):
        r = subprocess.run(["mariadb", "--no-defaults", f"--socket={self.socket}", "-u", "root", "--batch",
                            "-e", sql], capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"mariadb failed: {r.stderr}")
        return r.stdout

    def create_db(self, name):
        self.root_sql(f"DROP DATABASE IF EXISTS {name}; CREATE DATABASE {name};")
        return name

    def stop(self):
        _stop(self.proc)
        if self.proc is not None:
            self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


class Redis:
    def __init__(self):
        self.dir = _private_dir("weft-redis-")
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.dir, "--daemonize", "no", "--loglevel", "warning",
             "--databases", "16"],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=self.dir,
        )
        wait_port(self.port, timeout=20, proc=self.proc)

    def cli_argv(self, *extra):
        return ["redis-cli", "-h", "127.0.0.1", "-p", str(self.port), *extra]

    def stop(self):
        _stop(self.proc)
        shutil.rmtree(self.dir, ignore_errors=True)


def _session_server(cls):
    """One server of class cls for the session; a half-started one (exception
    in __init__) is stopped too."""
    srv = cls.__new__(cls)
    srv.proc = None
    try:
        srv.__init__()
        yield srv
    finally:
        if getattr(srv, "dir", None):
            srv.stop()


@pytest.fixture(scope="session")
def pg_server():
    yield from _session_server(Postgres)


@pytest.fixture(scope="session")
def mariadb_server():
    yield from _session_server(MariaDB)


@pytest.fixture(scope="session")
def redis_server():
    yield from _session_server(Redis)


def build_dbgo(version=None):
    """tests/apps/dbgo built with Debian's Go (or /usr/lib/go-<version>) and
    the Debian packages of lib/pq and go-sql-driver/mysql (GOPATH mode,
    offline), into build/dbgo[/<version>]; an up-to-date build is kept."""
    out = os.path.join(ROOT, "build", "dbgo", *([version] if version else []))
    os.makedirs(out, exist_ok=True)
    binary = os.path.join(out, "dbgo")
    src = os.path.join(GO_SRC, "main.go")
    if os.path.exists(binary) and os.path.getmtime(binary) >= os.path.getmtime(src):
        return binary
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               GOCACHE=os.path.join(out, "cache"), GOTOOLCHAIN="local", GOTELEMETRY="off")
    go = f"/usr/lib/go-{version}/bin/go" if version else "go"
    r = subprocess.run([go, "build", "-o", binary + ".tmp", "."], cwd=GO_SRC, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"go build of {GO_SRC} failed: {r.stderr}")
    os.replace(binary + ".tmp", binary)
    return binary


@pytest.fixture(scope="session")
def dbgo():
    """tests/apps/dbgo built with Debian's default Go."""
    return build_dbgo()
    env = dict(os.environ, GOPATH="/usr/share/gocode", GO111MODULE="off", GOFLAGS="", GOPROXY="off",
               GOCACHE=os.path.join(out, "cache"), GOTOOLCHAIN="local", GOTELEMETRY="off")
    r = subprocess.run(["go", "build", "-o", binary + ".tmp", "."], cwd=GO_SRC, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"go build of {GO_SRC} failed: {r.stderr}")
    os.replace(binary + ".tmp", binary)
    return binary
