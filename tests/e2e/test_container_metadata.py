"""container.id and the service identity on real processes' spans.

Container runtimes cannot start containers on these machines (docs/DEPLOY.md,
"Tests"), so a real server is put into the cgroup a runtime would have made
for it: the containerd/CRI path on the cgroup v2 hierarchy, the cgroupfs
driver's /kubepods/... path on a cgroup v1 hierarchy, docker's and podman's.
What weft reads is the same /proc/PID/cgroup a containerised process has."""
import os
import re
import secrets
import signal
import subprocess
import time
import uuid

import pytest

from conftest import PY, cgroup2_root, curl, free_port, stop_process, wait_port

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def make_cgroup(root, rel):
    """Creates root/weft-test-N/rel (every level); returns (top, leaf)."""
    top = os.path.join(root, f"weft-test-{os.getpid()}-{time.monotonic_ns()}")
    leaf = os.path.join(top, rel)
    os.makedirs(leaf)
    return top, leaf


def remove_cgroup(top):
    """Kills what is left in the tree and removes it, deepest first."""
    for d, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        try:
            with open(os.path.join(d, "cgroup.procs")) as f:
                for p in f.read().split():
                    try:
                        os.kill(int(p), signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        except OSError:
            pass
    deadline = time.time() + 10
    for d, _, _ in sorted(os.walk(top), key=lambda t: -t[0].count("/")):
        while True:
            try:
                os.rmdir(d)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)


@pytest.fixture
def cgroups():
    made = []

    def make(root, rel):
        top, leaf = make_cgroup(root, rel)
        made.append(top)
        return leaf

    yield make
    for top in made:
        remove_cgroup(top)


def v1_root():
    """A cgroup v1 hierarchy (pids), or None."""
    with open("/proc/mounts") as f:
        for line in f:
            dev, mnt, fstype, opts = line.split()[:4]
            if fstype == "cgroup" and "pids" in opts.split(","):
                return mnt
    return None


def server_in(cgroup, env_extra=None):
    """python3 -m http.server started inside cgroup (joined before exec)."""
    port = free_port()
    env = dict(os.environ)
    env.pop("OTEL_SERVICE_NAME", None)
    env.pop("OTEL_RESOURCE_ATTRIBUTES", None)
    env.update(env_extra or {})
    script = f'echo $$ > {cgroup}/cgroup.procs || exit 99; exec "$@"'
    p = subprocess.Popen(["bash", "-c", script, "weft-test", PY, "-m", "http.server", "--bind", "127.0.0.1",
                          str(port)], cwd="/tmp", env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_port(port, proc=p)
    return p, port


def one_server_span(w, pid):
    got = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] == pid)
    assert got, w.stderr
    return got[0]


def test_containerd_cri_path_on_cgroup_v2(weft_factory, cgroups):
    cid = secrets.token_hex(32)
    pod_uid = str(uuid.uuid4())
    leaf = cgroups(cgroup2_root(), "kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
                   f"{pod_uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope")
    p, port = server_in(leaf)
    try:
        with open(f"/proc/{p.pid}/cgroup") as f:
            assert f"cri-containerd-{cid}.scope" in f.read()
        w = weft_factory(["attach", "-p", str(p.pid)])
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        r = one_server_span(w, p.pid)["resource"]
        assert r["container.id"] == cid
        assert r["container.runtime"] == "containerd"
        assert r["k8s.pod.uid"] == pod_uid
        # No Kubernetes API here: the executable names the service.
        assert r["service.name"] == r["process.executable.name"]
        assert "k8s.pod.name" not in r
    finally:
        stop_process(p)


@pytest.mark.skipif(v1_root() is None, reason="no cgroup v1 pids hierarchy")
def test_cgroupfs_driver_path_on_cgroup_v1(weft_factory, cgroups):
    cid = secrets.token_hex(32)
    pod_uid = str(uuid.uuid4())
    leaf = cgroups(v1_root(), f"kubepods/burstable/pod{pod_uid}/{cid}")
    p, port = server_in(leaf)
    try:
        w = weft_factory(["attach", "-p", str(p.pid)])
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        r = one_server_span(w, p.pid)["resource"]
        assert r["container.id"] == cid
        assert "container.runtime" not in r  # the cgroupfs path does not say which runtime
        assert r["k8s.pod.uid"] == pod_uid
    finally:
        stop_process(p)


@pytest.mark.parametrize("rel,runtime", [
    ("system.slice/docker-{id}.scope", "docker"),
    ("machine.slice/libpod-{id}.scope", "podman"),
    ("kubepods.slice/crio-{id}.scope", "cri-o"),
])
def test_runtime_layouts_v2(weft_factory, cgroups, rel, runtime):
    cid = secrets.token_hex(32)
    leaf = cgroups(cgroup2_root(), rel.format(id=cid))
    p, port = server_in(leaf)
    try:
        w = weft_factory(["attach", "-p", str(p.pid)])
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        r = one_server_span(w, p.pid)["resource"]
        assert r["container.id"] == cid
        assert r["container.runtime"] == runtime
        assert "k8s.pod.uid" not in r
    finally:
        stop_process(p)


def test_service_identity_precedence(weft_factory, services):
    """OTEL_SERVICE_NAME, then the process's OTEL_RESOURCE_ATTRIBUTES, then the
    executable; service.instance.id stable per process, distinct between them."""
    def start(env_extra):
        port = free_port()
        env = dict(os.environ)
        env.pop("OTEL_SERVICE_NAME", None)
        env.pop("OTEL_RESOURCE_ATTRIBUTES", None)
        env.update(env_extra)
        p = subprocess.Popen([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd="/tmp", env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(port, proc=p)
        return p, port

    attrs = "service.name=from-attrs,service.namespace=shop,deployment.environment.name=prod%2Ceu"
    a, a_port = start({"OTEL_RESOURCE_ATTRIBUTES": attrs})
    b, b_port = start({"OTEL_RESOURCE_ATTRIBUTES": attrs, "OTEL_SERVICE_NAME": "from-name"})
    c, c_port = start({})
    try:
        w = weft_factory(["attach", "-p", f"{a.pid},{b.pid},{c.pid}"])
        for port in (a_port, a_port, b_port, c_port):
            assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        got = w.wait_spans(lambda s: s["kind"] == "SERVER", count=4)
        by_pid = {}
        for s in got:
            by_pid.setdefault(s["resource"]["process.pid"], []).append(s["resource"])
        ra, rb, rc = by_pid[a.pid][0], by_pid[b.pid][0], by_pid[c.pid][0]
        assert ra["service.name"] == "from-attrs"
        assert ra["service.namespace"] == "shop"
        assert ra["deployment.environment.name"] == "prod,eu"  # percent-decoded
        assert rb["service.name"] == "from-name"
        assert rb["service.namespace"] == "shop"
        assert rc["service.name"] == rc["process.executable.name"]
        assert "service.namespace" not in rc
        ids = [r["service.instance.id"] for r in (ra, rb, rc)]
        assert all(UUID_RE.match(i) for i in ids), ids
        assert len(set(ids)) == 3
        assert by_pid[a.pid][1]["service.instance.id"] == ra["service.instance.id"]
        # Stable: another weft computes the same id for the same process.
        w.stop()
        w2 = weft_factory(["attach", "-p", str(c.pid)])
        assert curl(f"http://127.0.0.1:{c_port}/")[0] == 200
        assert one_server_span(w2, c.pid)["resource"]["service.instance.id"] == rc["service.instance.id"]
    finally:
        for p in (a, b, c):
            stop_process(p)


def test_select_by_container_id_in_run(weft_factory, cgroups, tmp_path):
    """weft run --config with a container_id selector traces the process in
    that container's cgroup, started after weft, and no other."""
    cid = secrets.token_hex(32)
    leaf = cgroups(cgroup2_root(), f"system.slice/docker-{cid}.scope")
    cfg = tmp_path / "weft.yaml"
    cfg.write_text(f"discovery:\n  instrument:\n    - container_id: {cid[:12]}\n")
    w = weft_factory(["run", "--config", str(cfg)])
    p, port = server_in(leaf)
    q, q_port = server_in(os.path.dirname(os.path.dirname(leaf)))  # the test's top cgroup: no container
    try:
        for port_ in (port, q_port):
            assert curl(f"http://127.0.0.1:{port_}/")[0] == 200
        r = one_server_span(w, p.pid)["resource"]
        assert r["container.id"] == cid
        w.wait_spans(lambda s: False, timeout=0.5)
        assert not [s for s in w.spans() if s["resource"]["process.pid"] == q.pid]
    finally:
        stop_process(p)
        stop_process(q)


def test_runtime_api_names_containers_and_selects(weft_factory, cgroups, tmp_path):
    """container.name and image from a Docker-compatible API on a unix socket
    (tests/e2e/runtime_api_peer.py, a protocol peer), the kubelet's pod
    labels where no Kubernetes API is configured, selection by container name."""
    from runtime_api_peer import RuntimeApiPeer
    peer = RuntimeApiPeer(str(tmp_path / "docker.sock"))
    web, api_c, other = (secrets.token_hex(32) for _ in range(3))
    peer.add(web, "shop-web-1", "registry.local/shop/web:2.0")
    peer.add(api_c, "k8s_api_orders-5f7c9-abcde_shop_1234_0", "orders:7", labels={
        "io.kubernetes.pod.name": "orders-5f7c9-abcde", "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.pod.uid": "1234", "io.kubernetes.container.name": "api"})
    peer.add(other, "batch-1", "busybox")
    procs = []
    try:
        for cid in (web, api_c, other):
            procs.append(server_in(cgroups(cgroup2_root(), f"system.slice/docker-{cid}.scope")))
        env = dict(os.environ, WEFT_CONTAINER_RUNTIME_SOCKET=peer.path,
                   WEFT_DISCOVERY_CONTAINER_NAME="shop-web-.*|k8s_api_.*", WEFT_KUBERNETES_ENABLE="false")
        w = weft_factory(["run"], env=env)
        assert "ready: tracing 2 running processes selected" in w.stderr, w.stderr
        for _, port in procs:
            assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        r1 = one_server_span(w, procs[0][0].pid)["resource"]
        assert r1["container.name"] == "shop-web-1"
        assert r1["container.image.name"] == "registry.local/shop/web" and r1["container.image.tag"] == "2.0"
        assert r1["service.name"] == "shop-web-1"
        r2 = one_server_span(w, procs[1][0].pid)["resource"]
        assert r2["k8s.pod.name"] == "orders-5f7c9-abcde" and r2["k8s.namespace.name"] == "shop"
        assert r2["k8s.container.name"] == "api" and r2["service.name"] == "api"
        assert r2["service.namespace"] == "shop"
        assert not [s for s in w.spans() if s["resource"]["process.pid"] == procs[2][0].pid]
        assert f"/containers/{web}/json" in peer.requests
    finally:
        for p, _ in procs:
            stop_process(p)
        peer.close()


def test_cri_runtime_names_containers(weft_factory, cgroups, tmp_path):
    """container.name, the image and the kubelet's pod labels from a CRI
    runtime's ContainerStatus (tests/e2e/cri_api_peer.py, a gRPC protocol
    peer with the cri-api's message shapes), asked off the span path: the
    first spans may lack them, the later ones carry them. A container the
    runtime does not know is asked once; a runtime's failures are counted
    and logged once."""
    from cri_api_peer import CriApiPeer
    peer = CriApiPeer(str(tmp_path / "containerd.sock"))
    web, gone, broken1, broken2 = (secrets.token_hex(32) for _ in range(4))
    pod_uid = str(uuid.uuid4())
    peer.add(web, "web", "registry.local/shop/web:2.1", pod_uid=pod_uid, labels={
        "io.kubernetes.pod.name": "web-6d8f7-x9k2p", "io.kubernetes.pod.namespace": "shop",
        "io.kubernetes.pod.uid": pod_uid, "io.kubernetes.container.name": "web"})
    peer.failing |= {broken1, broken2}
    procs = []
    try:
        for cid in (web, gone, broken1, broken2):
            procs.append(server_in(cgroups(cgroup2_root(), "kubepods.slice/kubepods-besteffort.slice/"
                                           f"kubepods-besteffort-pod{pod_uid.replace('-', '_')}.slice/"
                                           f"cri-containerd-{cid}.scope")))
        env = dict(os.environ, WEFT_CONTAINER_RUNTIME_CRI_SOCKET=peer.path, WEFT_KUBERNETES_ENABLE="false",
                   WEFT_DISCOVERY_OPEN_PORTS=",".join(str(port) for _, port in procs))
        env.pop("WEFT_CONTAINER_RUNTIME_SOCKET", None)
        w = weft_factory(["run"], env=env)
        assert f"names and images from the CRI runtime on {peer.path}" in w.stderr, w.stderr
        deadline = time.time() + 10
        named = []
        while not named and time.time() < deadline:
            for _, port in procs:
                assert curl(f"http://127.0.0.1:{port}/")[0] == 200
            named = w.wait_spans(lambda s: s["resource"]["process.pid"] == procs[0][0].pid
                                 and "container.name" in s["resource"], timeout=0.3)
        assert named, w.stderr
        r = named[0]["resource"]
        assert r["container.id"] == web and r["container.runtime"] == "containerd"
        assert r["container.name"] == "web"
        assert r["container.image.name"] == "registry.local/shop/web" and r["container.image.tag"] == "2.1"
        assert r["k8s.pod.name"] == "web-6d8f7-x9k2p" and r["k8s.namespace.name"] == "shop"
        assert r["k8s.pod.uid"] == pod_uid and r["k8s.container.name"] == "web"
        assert r["service.name"] == "web" and r["service.namespace"] == "shop"
        asked = [cid for cid, _ in peer.requests]
        for p, _ in procs[1:]:  # unknown or failing: spans without the runtime's names
            got = w.wait_spans(lambda s, pid=p.pid: s["resource"]["process.pid"] == pid)
            assert got and "container.name" not in got[-1]["resource"], w.stderr
        for cid in (web, gone, broken1, broken2):
            assert asked.count(cid) == 1, (cid, asked)  # answers cached, a missing container's too
        assert all(not verbose for _, verbose in peer.requests)
        w.stop()
        assert w.stderr.count("CRI ContainerStatus on") == 1, w.stderr
        assert "gRPC status 13: runtime broke" in w.stderr
        assert re.search(r"CRI ContainerStatus calls: 1 found, \d+ not found, 2 failed", w.stderr), w.stderr
    finally:
        for p, _ in procs:
            stop_process(p)
        peer.close()


def test_cri_socket_found_through_a_read_only_mount(weft_factory, cgroups, tmp_path):
    """The DaemonSet mounts the runtimes' socket directories read-only at
    their own paths (docs/DEPLOY.md, "Runtime sockets"): weft finds the CRI
    socket at its default path through such a mount and gets its answers. A
    read-only mount refuses writing a file but neither access(W_OK), weft's
    probe, nor connect() on a socket; this keeps it so. weft runs in a
    private mount namespace: a tmpfs on /run (the host's /run is neither
    seen nor changed), the peer's directory bound read-only on
    /run/containerd."""
    from cri_api_peer import CriApiPeer
    host_dir = tmp_path / "containerd"
    host_dir.mkdir()
    peer = CriApiPeer(str(host_dir / "containerd.sock"))
    cid = secrets.token_hex(32)
    peer.add(cid, "web", "registry.local/shop/web:2.1")
    proc = None
    try:
        proc, port = server_in(cgroups(cgroup2_root(), f"kubepods.slice/cri-containerd-{cid}.scope"))
        setup = (f"mount -t tmpfs weft-test /run && mkdir /run/containerd && "
                 f"mount --bind -o ro {host_dir} /run/containerd && exec \"$@\"")
        env = dict(os.environ, WEFT_KUBERNETES_ENABLE="false", WEFT_DISCOVERY_OPEN_PORTS=str(port))
        env.pop("WEFT_CONTAINER_RUNTIME_SOCKET", None)
        env.pop("WEFT_CONTAINER_RUNTIME_CRI_SOCKET", None)
        w = weft_factory(["run"], env=env,
                         prefix=["unshare", "-m", "--propagation", "private", "sh", "-c", setup, "sh"])
        assert "names and images from the CRI runtime on /run/containerd/containerd.sock" in w.stderr, w.stderr
        with open(f"/proc/{w.proc.pid}/mountinfo") as f:
            mnt = [l.split() for l in f if l.split()[4] == "/run/containerd"]
        assert mnt and "ro" in mnt[-1][5].split(","), mnt  # weft's own view: read-only
        deadline = time.time() + 10
        named = []
        while not named and time.time() < deadline:
            assert curl(f"http://127.0.0.1:{port}/")[0] == 200
            named = w.wait_spans(lambda s: s["resource"]["process.pid"] == proc.pid
                                 and "container.name" in s["resource"], timeout=0.3)
        assert named, w.stderr
        assert named[0]["resource"]["container.name"] == "web"
        assert [c for c, _ in peer.requests] == [cid]
    finally:
        if proc:
            stop_process(proc)
        peer.close()
