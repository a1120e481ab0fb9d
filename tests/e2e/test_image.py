"""The image scripts/build-image makes (Debian bookworm minbase from the
archive + weft, packed as OCI): its weft, run from the unpacked rootfs
(chroot, the host's PID namespace, only the documented capabilities via
setpriv), traces a host process and exports to an OTLP receiver.

`make e2e` (and so `make test`) builds the image first (scripts/build-image:
the Debian part once, from the archive, then seconds); run alone, without
build/image/rootfs, this file is skipped, saying how to build it."""
import json
import os
import re
import subprocess
import sys
import tarfile
import time

import pytest

from conftest import PY, ROOT, curl, free_port, stop_process, wait_port

sys.path.insert(0, os.path.join(ROOT, "tests"))
from otlp_receiver import Receiver, attrs  # noqa: E402

IMAGE = os.path.join(ROOT, "build", "image")
ROOTFS = os.path.join(IMAGE, "rootfs")
pytestmark = pytest.mark.skipif(not os.path.isdir(ROOTFS), reason="no image: run `make image` (or `make test-image`)")


def documented_caps():
    with open(os.path.join(ROOT, "docs", "DEPLOY.md")) as f:
        return re.findall(r"^\| `(CAP_[A-Z_]+)` \|", f.read(), re.M)


def test_oci_archive_is_a_valid_layout():
    with tarfile.open(os.path.join(IMAGE, "weft-oci.tar")) as t:
        names = set(t.getnames())
        index = json.load(t.extractfile("./index.json"))
        m = index["manifests"][0]
        assert m["annotations"]["org.opencontainers.image.ref.name"] == "weft:latest"
        manifest = json.load(t.extractfile("./blobs/sha256/" + m["digest"].split(":")[1]))
        config = json.load(t.extractfile("./blobs/sha256/" + manifest["config"]["digest"].split(":")[1]))
        assert config["config"]["Entrypoint"] == ["/usr/local/bin/weft"]
        for layer in manifest["layers"]:
            assert "./blobs/sha256/" + layer["digest"].split(":")[1] in names
    assert "./oci-layout" in names
    # What the image's weft needs at run time besides its libraries (ldd is
    # checked by scripts/build-image): the CA bundle for https collectors,
    # setpriv (this test runs weft through it) and a shell.
    for f in ("etc/ssl/certs/ca-certificates.crt", "usr/bin/setpriv", "usr/bin/sh", "usr/local/bin/weft"):
        assert os.path.exists(os.path.join(ROOTFS, f)), f
    assert os.path.getsize(os.path.join(ROOTFS, "etc/ssl/certs/ca-certificates.crt")) > 100_000


def test_image_weft_traces_a_host_process_to_otlp(test_cgroup):
    caps = ",".join("+" + c[len("CAP_"):].lower() for c in documented_caps())
    port = free_port()
    srv = subprocess.Popen([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd="/tmp",
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rcv = Receiver("http", 0).start()
    script = (f'set -e; for d in proc sys dev; do mount --rbind /$d {ROOTFS}/$d; done; '
              f'exec chroot {ROOTFS} /usr/bin/setpriv --bounding-set=-all,{caps} --inh-caps=-all '
              f'/usr/local/bin/weft run -d 8 --cgroup {test_cgroup}')
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{rcv.port}",
           "OTEL_BSP_SCHEDULE_DELAY": "100", "WEFT_DISCOVERY_OPEN_PORTS": str(port)}
    w = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        wait_port(port, proc=srv)
        lines = []
        for line in w.stdout:
            lines.append(line)
            if "ready:" in line:
                break
        assert any("ready:" in l for l in lines), "".join(lines)
        assert curl(f"http://127.0.0.1:{port}/image")[0] == 404  # http.server: no such file
        got = rcv.wait_spans(1, pred=lambda s: attrs(s[2].attributes).get("url.path") == "/image")
        assert got, "".join(lines)
        resource = got[0][0]
        assert resource["process.pid"] == srv.pid
        assert attrs(got[0][2].attributes)["http.response.status_code"] == 404
        out, _ = w.communicate(timeout=30)
        assert w.returncode == 0, "".join(lines) + out
        assert "missing capability" not in "".join(lines) + out
    finally:
        stop_process(w)
        stop_process(srv)
        rcv.stop()
