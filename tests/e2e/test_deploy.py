"""deploy/: the manifests parse, the Helm chart renders the same objects,
the capabilities agree everywhere (docs, manifests, chart, systemd unit),
the runtimes' socket directories are mounted alike everywhere, and weft
runs and traces with exactly those capabilities (setpriv drops the rest)
and names the one that is missing."""
import json
import os
import re
import subprocess
import tempfile
import threading
import time

import pytest
import yaml

from conftest import PY, ROOT, WEFT, OUR_WEFTS, curl, free_port, stop_process, wait_port

DEPLOY = os.path.join(ROOT, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
CHART = os.path.join(DEPLOY, "helm", "weft")
CAP_BITS = {"CAP_DAC_READ_SEARCH": 2, "CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19, "CAP_SYS_ADMIN": 21,
            "CAP_PERFMON": 38, "CAP_BPF": 39}


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def manifests():
    docs = {}
    for name in sorted(os.listdir(K8S)):
        for d in load_all(os.path.join(K8S, name)):
            docs[(name, d["kind"], d["metadata"]["name"])] = d
    return docs


def documented_caps():
    with open(os.path.join(ROOT, "docs", "DEPLOY.md")) as f:
        return re.findall(r"^\| `(CAP_[A-Z_]+)` \|", f.read(), re.M)


def render_chart(**overrides):
    with open(os.path.join(CHART, "values.yaml")) as f:
        values = yaml.safe_load(f)
    values.update(overrides)
    env = dict(os.environ, GOFLAGS="-mod=mod", GO111MODULE="off",
               GOCACHE=os.path.join(ROOT, "build", "go-cache"))
    r = subprocess.run(["go", "run", os.path.join(ROOT, "tests", "apps", "helmrender", "main.go"), CHART, "weft",
                        "weft"], input=json.dumps(values), capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return {(d["kind"], d["metadata"]["name"]): d for d in yaml.safe_load_all(r.stdout) if d}


def container(ds):
    return ds["spec"]["template"]["spec"]["containers"][0]


def test_manifests_parse_and_are_complete():
    docs = manifests()
    kinds = {(k, n) for _, k, n in docs}
    assert kinds >= {("Namespace", "weft"), ("ServiceAccount", "weft"), ("ClusterRole", "weft"),
                     ("ClusterRoleBinding", "weft"), ("ConfigMap", "weft"), ("DaemonSet", "weft")}
    ds = docs[("daemonset.yaml", "DaemonSet", "weft")]
    pod = ds["spec"]["template"]["spec"]
    assert pod["hostPID"] is True and pod["serviceAccountName"] == "weft"
    c = container(ds)
    sc = c["securityContext"]
    assert sc["privileged"] is False and sc["capabilities"]["drop"] == ["ALL"]
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/sys/fs/bpf", "/sys/kernel/tracing", "/host/sys/fs/cgroup", "/etc/weft"} <= mounts
    env = {e["name"]: e for e in c["env"]}
    assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in env
    role = docs[("rbac.yaml", "ClusterRole", "weft")]
    rules = {(g, r): rule["verbs"] for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert rules == {("", "pods"): ["get", "list", "watch"], ("", "nodes"): ["get", "list", "watch"],
                     ("apps", "replicasets"): ["get", "list", "watch"], ("batch", "jobs"): ["get"]}
    priv = docs[("daemonset-privileged.yaml", "DaemonSet", "weft")]
    assert container(priv)["securityContext"]["privileged"] is True
    # The two variants differ only in their security context.
    a, b = json.loads(json.dumps(ds)), json.loads(json.dumps(priv))
    del container(a)["securityContext"], container(b)["securityContext"]
    assert a == b


def test_capabilities_agree_everywhere():
    caps = documented_caps()
    assert caps == ["CAP_BPF", "CAP_PERFMON", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
    short = [c[len("CAP_"):] for c in caps]
    ds = manifests()[("daemonset.yaml", "DaemonSet", "weft")]
    assert container(ds)["securityContext"]["capabilities"]["add"] == short
    with open(os.path.join(CHART, "values.yaml")) as f:
        assert yaml.safe_load(f)["capabilities"] == short
    with open(os.path.join(DEPLOY, "systemd", "weft.service")) as f:
        unit = f.read()
    for key in ("CapabilityBoundingSet", "AmbientCapabilities"):
        assert re.search(rf"^{key}=(.*)$", unit, re.M).group(1).split() == caps
    assert re.search(r"^NoNewPrivileges=yes$", unit, re.M) and re.search(r"^ProtectSystem=strict$", unit, re.M)
    assert "ExecStart=/usr/local/bin/weft run --config /etc/weft/weft.yaml" in unit


def test_helm_chart_renders_the_same_objects():
    docs = manifests()
    rendered = render_chart()
    plain = {(k, n): d for (_, k, n), d in docs.items() if k != "Namespace" and _ != "daemonset-privileged.yaml"}
    assert set(rendered) == set(plain)
    for key, want in plain.items():
        got = rendered[key]
        if key[0] == "ConfigMap":
            assert yaml.safe_load(got["data"]["weft.yaml"]) == yaml.safe_load(want["data"]["weft.yaml"])
            continue
        if key[0] == "DaemonSet":
            assert container(got).pop("imagePullPolicy") == "IfNotPresent"
        assert got == want, key
    priv = render_chart(privileged=True)[("DaemonSet", "weft")]
    want = docs[("daemonset-privileged.yaml", "DaemonSet", "weft")]
    container(priv).pop("imagePullPolicy")
    assert priv == want


def runtime_socket_mounts(ds):
    """{mountPath: (hostPath path, type, readOnly)} of the DaemonSet's mounts under /run."""
    pod = ds["spec"]["template"]["spec"]
    host = {v["name"]: v["hostPath"] for v in pod["volumes"] if "hostPath" in v}
    return {m["mountPath"]: (host[m["name"]]["path"], host[m["name"]]["type"], m.get("readOnly", False))
            for m in container(ds)["volumeMounts"] if m["mountPath"].startswith("/run/")}


def test_runtime_socket_directories_are_mounted():
    """The runtimes' socket directories are mounted read-only at their own
    paths (the defaults weft looks at), created where a node lacks them, the
    same in both manifests and the chart; the chart's value removes them."""
    want = {d: (d, "DirectoryOrCreate", True) for d in ("/run/containerd", "/run/crio")}
    docs = manifests()
    for name in ("daemonset.yaml", "daemonset-privileged.yaml"):
        assert runtime_socket_mounts(docs[(name, "DaemonSet", "weft")]) == want, name
    for privileged in (False, True):
        assert runtime_socket_mounts(render_chart(privileged=privileged)[("DaemonSet", "weft")]) == want
    # Every default CRI socket of user/metadata/cri_api.c is under one of them
    # (/var/run is /run on the nodes, and /run/crio/crio.sock is tried too).
    with open(os.path.join(ROOT, "user", "metadata", "cri_api.c")) as f:
        src = f.read()
    defaults = re.findall(r'"(/[^"]+\.sock)"', re.search(r"cri_api_start\(.*?defaults\[\] = \{(.*?)\};", src,
                                                           re.S).group(1))
    assert len(defaults) == 3, defaults
    for sock in defaults:
        assert os.path.dirname(re.sub(r"^/var/run/", "/run/", sock)) in want, sock
    with open(os.path.join(CHART, "values.yaml")) as f:
        sockets = yaml.safe_load(f)["runtimeSockets"]
    off = render_chart(runtimeSockets=dict(sockets, enabled=False))[("DaemonSet", "weft")]
    assert runtime_socket_mounts(off) == {}
    plain = json.loads(json.dumps(docs[("daemonset.yaml", "DaemonSet", "weft")]))
    pod = plain["spec"]["template"]["spec"]
    pod["volumes"] = [v for v in pod["volumes"] if v["name"] not in ("containerd", "crio")]
    container(plain)["volumeMounts"] = [m for m in container(plain)["volumeMounts"]
                                        if m["name"] not in ("containerd", "crio")]
    container(off).pop("imagePullPolicy")
    assert off == plain  # nothing else changes


@pytest.mark.parametrize("source", ["configmap", "chart"])
def test_shipped_config_is_accepted_by_weft(source, tmp_path):
    if source == "configmap":
        text = manifests()[("configmap.yaml", "ConfigMap", "weft")]["data"]["weft.yaml"]
    else:
        text = render_chart()[("ConfigMap", "weft")]["data"]["weft.yaml"]
    cfg = tmp_path / "weft.yaml"
    cfg.write_text(text)
    # No cluster here: the variable turns Kubernetes off (and weft says the
    # namespace selector then matches nothing).
    env = dict(os.environ, WEFT_KUBERNETES_ENABLE="false")
    r = subprocess.run([WEFT, "run", "--config", str(cfg), "-d", "1", "--propagation", "off", "-o", "json"],
                       capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "ready: tracing" in r.stderr and "selected by the configuration" in r.stderr


class CappedWeft:
    """weft run under setpriv with only the given capabilities in its bounding set."""

    def __init__(self, caps, args):
        self.out = tempfile.NamedTemporaryFile(prefix="weft-caps-", suffix=".jsonl", delete=False)
        bounding = "-all," + ",".join("+" + c[len("CAP_"):].lower() for c in caps)
        self.proc = subprocess.Popen(["setpriv", f"--bounding-set={bounding}", "--inh-caps=-all", WEFT, "run",
                                      "-o", "json"] + args, stdout=self.out, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stderr:
            self.lines.append(line)
            if "ready:" in line:
                OUR_WEFTS.add(self.proc.pid)
                self.ready.set()
        self.ready.set()

    @property
    def stderr(self):
        return "".join(self.lines)

    def spans(self):
        with open(self.out.name) as f:
            return [json.loads(l) for l in f if l.endswith("\n")]

    def close(self):
        stop_process(self.proc, timeout=30)
        os.unlink(self.out.name)


def cap_eff(pid):
    with open(f"/proc/{pid}/status") as f:
        return int(re.search(r"^CapEff:\s*([0-9a-f]+)", f.read(), re.M).group(1), 16)


def test_runs_with_exactly_the_documented_capabilities(test_cgroup):
    caps = documented_caps()
    port = free_port()
    srv = subprocess.Popen([PY, "-m", "http.server", "--bind", "127.0.0.1", str(port)], cwd="/tmp",
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    w = CappedWeft(caps, ["--cgroup", test_cgroup])
    try:
        wait_port(port, proc=srv)
        assert w.ready.wait(60) and "ready:" in w.stderr, w.stderr
        assert cap_eff(w.proc.pid) == sum(1 << CAP_BITS[c] for c in caps)
        assert "missing capability" not in w.stderr
        assert curl(f"http://127.0.0.1:{port}/")[0] == 200
        deadline = time.time() + 10
        got = []
        while not got and time.time() < deadline:
            got = [s for s in w.spans() if s["kind"] == "SERVER" and s["resource"]["process.pid"] == srv.pid]
            time.sleep(0.05)
        assert got, w.stderr
        assert got[0]["attributes"]["server.port"] == port
    finally:
        w.close()
        stop_process(srv)


@pytest.mark.parametrize("missing,fatal", [("CAP_BPF", True), ("CAP_PERFMON", True),
                                           ("CAP_NET_ADMIN", False), ("CAP_SYS_PTRACE", False)])
def test_a_missing_capability_is_named(test_cgroup, missing, fatal):
    caps = [c for c in documented_caps() if c != missing]
    w = CappedWeft(caps, ["--cgroup", test_cgroup, "-d", "1"])
    try:
        w.proc.wait(60)
        w.ready.wait(5)
        assert f"missing capability {missing}" in w.stderr, w.stderr
        if fatal:
            assert w.proc.returncode == 1 and "ready:" not in w.stderr
        else:
            assert w.proc.returncode == 0 and "ready:" in w.stderr
    finally:
        w.close()
