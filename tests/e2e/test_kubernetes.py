"""Kubernetes metadata and selection on real processes' spans.

The pods come from tests/e2e/k8s_api_peer.py, a small server speaking the
Kubernetes API's list/watch subset (no API server can run here: it is the
suite's one stand-in for a peer), reached through a kubeconfig. The
processes are real servers put into the cgroups containerd makes for a
pod's containers, so weft matches them to pods by container id exactly as
on a node."""
import os
import secrets
import subprocess
import time
import uuid

import pytest

from conftest import cgroup2_root, curl, stop_process
from k8s_api_peer import K8sApiPeer, pod
from test_container_metadata import cgroups, server_in  # noqa: F401 (fixture)

NODE = "node-a"


def cri_path(pod_uid, cid):
    return ("kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod"
            f"{pod_uid.replace('-', '_')}.slice/cri-containerd-{cid}.scope")


@pytest.fixture
def api():
    peer = K8sApiPeer(NODE, secrets.token_hex(16))
    yield peer
    peer.close()


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_pods_name_services_and_select(weft_factory, cgroups, api, tmp_path):  # noqa: F811
    cid1, cid0, cid2, cid3, cid4, cid5 = (secrets.token_hex(32) for _ in range(6))
    uid1, uid0, uid2, uid3, uid4, uid5 = (str(uuid.uuid4()) for _ in range(6))
    api.add_replicaset("shop", "checkout-7d9f8", "checkout")
    api.add_pod(pod("shop", "checkout-7d9f8-x2k4p", uid1, NODE, [("web", cid1, "registry.local/shop/checkout:1.4.2")],
                    owner=("ReplicaSet", "checkout-7d9f8"), labels={"app": "checkout"}))
    api.add_pod(pod("other", "batch-0", uid0, NODE, [("main", cid0, "busybox:1.36")], owner=("StatefulSet", "batch")))
    # A CronJob's pod (through its Job), a bare Job's, and one of a CronJob
    # that an exclusion names: its pod's owner is a Job, the CronJob is
    # known only from the Job's controller reference.
    api.add_job("shop", "report-29410560", cronjob="report")
    api.add_job("shop", "migrate", cronjob=None)
    api.add_job("shop", "nightly-29410561", cronjob="nightly")
    api.add_pod(pod("shop", "report-29410560-7xq2m", uid3, NODE, [("report", cid3, "registry.local/shop/report:2.0")],
                    owner=("Job", "report-29410560"), labels={"job-name": "report-29410560"}))
    api.add_pod(pod("shop", "migrate-v5s8d", uid4, NODE, [("migrate", cid4, "registry.local/shop/migrate:3")],
                    owner=("Job", "migrate")))
    api.add_pod(pod("shop", "nightly-29410561-k2l9w", uid5, NODE, [("nightly", cid5, "busybox:1.36")],
                    owner=("Job", "nightly-29410561")))
    p1, port1 = server_in(cgroups(cgroup2_root(), cri_path(uid1, cid1)))
    p0, port0 = server_in(cgroups(cgroup2_root(), cri_path(uid0, cid0)))
    p3, port3 = server_in(cgroups(cgroup2_root(), cri_path(uid3, cid3)))
    p4, port4 = server_in(cgroups(cgroup2_root(), cri_path(uid4, cid4)))
    p5, port5 = server_in(cgroups(cgroup2_root(), cri_path(uid5, cid5)))
    cfg = tmp_path / "weft.yaml"
    cfg.write_text(f"discovery:\n  instrument:\n    - k8s_namespace: shop\n"
                   f"  exclude_instrument:\n    - k8s_cronjob_name: night.*\n"
                   f"kubernetes:\n  enable: true\n  node_name: {NODE}\n")
    kc = api.kubeconfig(str(tmp_path / "kubeconfig"))
    w = weft_factory(["run", "--config", str(cfg), "--kubeconfig", kc])
    procs = [p1, p0, p3, p4, p5]
    try:
        assert "ready: tracing 3 running processes selected" in w.stderr, w.stderr
        assert "kubernetes: 5 pods on node node-a" in w.stderr
        for port in (port1, port0, port3, port4, port5):
            assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        got = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] == p1.pid)
        assert got, w.stderr
        r = got[0]["resource"]
        assert r["service.name"] == "checkout"          # the Deployment, through its ReplicaSet
        assert r["service.namespace"] == "shop"
        assert r["k8s.namespace.name"] == "shop"
        assert r["k8s.pod.name"] == "checkout-7d9f8-x2k4p"
        assert r["k8s.pod.uid"] == uid1
        assert r["k8s.container.name"] == "web"
        assert r["k8s.replicaset.name"] == "checkout-7d9f8"
        assert r["k8s.deployment.name"] == "checkout"
        assert r["k8s.node.name"] == NODE
        assert r["container.id"] == cid1
        assert r["container.image.name"] == "registry.local/shop/checkout"
        assert r["container.image.tag"] == "1.4.2"

        got3 = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] == p3.pid)
        assert got3, w.stderr
        r3 = got3[0]["resource"]
        assert r3["service.name"] == "report"           # the CronJob, through its Job
        assert r3["service.namespace"] == "shop"
        assert r3["k8s.cronjob.name"] == "report"
        assert r3["k8s.job.name"] == "report-29410560"
        assert r3["k8s.pod.name"] == "report-29410560-7xq2m"
        assert r3["k8s.pod.uid"] == uid3
        assert r3["k8s.container.name"] == "report"
        assert r3["container.id"] == cid3
        assert r3["container.image.name"] == "registry.local/shop/report"
        assert r3["container.image.tag"] == "2.0"
        assert "k8s.deployment.name" not in r3 and "k8s.replicaset.name" not in r3
        got4 = w.wait_spans(lambda s: s["kind"] == "SERVER" and s["resource"]["process.pid"] == p4.pid)
        assert got4, w.stderr
        r4 = got4[0]["resource"]
        assert r4["service.name"] == "migrate"          # a Job no CronJob owns is the service itself
        assert r4["k8s.job.name"] == "migrate"
        assert r4["k8s.pod.name"] == "migrate-v5s8d"
        assert "k8s.cronjob.name" not in r4
        assert not [s for s in w.spans() if s["resource"]["process.pid"] in (p0.pid, p5.pid)]
        # Each Job was asked for once (the answers are cached, a bare Job's too).
        job_gets = [p for p, q in api.requests if p.startswith("/apis/batch/v1/")]
        assert sorted(job_gets) == ["/apis/batch/v1/namespaces/shop/jobs/migrate",
                                    "/apis/batch/v1/namespaces/shop/jobs/nightly-29410561",
                                    "/apis/batch/v1/namespaces/shop/jobs/report-29410560"]

        # A pod that the watch announces after its process started: the
        # process waits for it, then is selected and named.
        p2, port2 = server_in(cgroups(cgroup2_root(), cri_path(uid2, cid2)))
        procs.append(p2)
        assert curl(f"http://127.0.0.1:{port2}/")[0] == 200
        api.send("ADDED", pod("shop", "db-0", uid2, NODE, [("postgres", cid2, "postgres:15")],
                              owner=("StatefulSet", "db")))
        deadline = time.time() + 10
        got2 = []
        while not got2 and time.time() < deadline:
            assert curl(f"http://127.0.0.1:{port2}/")[0] == 200
            got2 = w.wait_spans(lambda s: s["resource"]["process.pid"] == p2.pid, timeout=0.3)
        assert got2, w.stderr
        r2 = got2[0]["resource"]
        assert r2["service.name"] == "db" and r2["k8s.statefulset.name"] == "db" and r2["k8s.pod.name"] == "db-0"

        # Bookmarks move the version a watch resumes from.
        api.bookmark(555)
        api.end_watch()
        wait_for(lambda: api.watch_rvs and api.watch_rvs[-1] == "555", what="a watch resumed from the bookmark")
        assert api.lists == 1
        # 410 Gone: the version expired, weft lists again.
        api.gone()
        wait_for(lambda: api.lists == 2, what="a new list after 410 Gone")
        assert all(q.get("fieldSelector") == f"spec.nodeName={NODE}" for p, q in api.requests if p == "/api/v1/pods")
        w.stop()
        assert "1 bookmarks" in w.stderr and "1 expired resource versions (410)" in w.stderr, w.stderr
    finally:
        for p in procs:
            stop_process(p)


def test_unreachable_or_refused_api_is_reported(weft_factory, tmp_path, api):
    """A wrong token: weft says so and goes on (pods come when it can list)."""
    kc = api.kubeconfig(str(tmp_path / "kubeconfig"))
    api.token = "another"
    env = dict(os.environ, WEFT_KUBERNETES_SYNC_TIMEOUT_MS="1500", NODE_NAME=NODE)
    w = weft_factory(["run", "--kubeconfig", kc, "-d", "3"], env=env)
    assert "HTTP 401" in w.stderr and "no pod list" in w.stderr, w.stderr


def test_required_kubernetes_without_cluster_fails_clearly(tmp_path):
    from conftest import WEFT
    cfg = tmp_path / "weft.yaml"
    cfg.write_text("discovery:\n  instrument:\n    - k8s_namespace: shop\n")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBECONFIG", "KUBERNETES_SERVICE_HOST")}
    r = subprocess.run([WEFT, "run", "--config", str(cfg), "--propagation", "off"], capture_output=True, text=True,
                       env=env, timeout=60)
    assert r.returncode == 1
    assert "not in a cluster" in r.stderr and "kubeconfig" in r.stderr
