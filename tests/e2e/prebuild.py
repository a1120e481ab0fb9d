"""Builds the Go programs the end-to-end tests run, ahead of the tests (make
test-apps; `make test` does it while the container image is built): each
builder keeps an up-to-date build, so the tests then find them ready."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from db_servers import build_dbgo  # noqa: E402
from test_go import go_versions  # noqa: E402
from test_tls_go import build_grpcapp  # noqa: E402


def main():
    vs = go_versions()
    build_dbgo()
    for v in sorted({vs[0], vs[-1]}) if vs else []:
        build_dbgo(v)
    build_grpcapp()
    print("prebuild: dbgo (default Go%s), grpcapp" % ("".join(f", {v}" for v in sorted({vs[0], vs[-1]})) if vs else ""))


if __name__ == "__main__":
    main()
