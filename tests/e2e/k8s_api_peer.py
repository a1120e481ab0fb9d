"""A small HTTP server speaking the subset of the Kubernetes API that weft
uses: GET /api/v1/pods?fieldSelector=spec.nodeName=NODE (a PodList), the
same with watch=1 (a stream of JSON watch events, one per line, including
BOOKMARK and an ERROR Status with code 410), GET
/apis/apps/v1/namespaces/NS/replicasets/NAME and GET
/apis/batch/v1/namespaces/NS/jobs/NAME.

This is a test peer for a protocol, the one stand-in of the suite: no
Kubernetes API server can run on these machines (docs/DEPLOY.md, "Tests").
It serves the real API's JSON shapes (metadata, ownerReferences,
status.containerStatuses[].containerID) and checks what weft sends (the
bearer token, the field selector, the resourceVersion it resumes from)."""
import json
import queue
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def pod(ns, name, uid, node, containers, owner=None, labels=None):
    """A Pod as the API returns it; containers: [(name, containerd id, image)]."""
    md = {"name": name, "namespace": ns, "uid": uid, "resourceVersion": "1", "labels": labels or {}}
    if owner:
        api = "batch/v1" if owner[0] == "Job" else "apps/v1"
        md["ownerReferences"] = [{"apiVersion": api, "kind": owner[0], "name": owner[1], "uid": "o-" + uid,
                                  "controller": True, "blockOwnerDeletion": True}]
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": md,
        "spec": {"nodeName": node, "containers": [{"name": c[0], "image": c[2]} for c in containers]},
        "status": {"phase": "Running", "containerStatuses": [
            {"name": c[0], "image": c[2], "containerID": f"containerd://{c[1]}", "ready": True} for c in containers]},
    }


class K8sApiPeer:
    def __init__(self, node, token):
        self.node, self.token = node, token
        self.pods = {}          # uid -> pod
        self.replicasets = {}   # (ns, name) -> ReplicaSet
        self.jobs = {}          # (ns, name) -> Job
        self.rv = 100
        self.requests = []      # (path, query dict)
        self.watch_events = queue.Queue()
        self.watch_rvs = []     # resourceVersion of each watch request
        self.lists = 0
        self.lock = threading.Lock()
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def send_json(self, code, obj):
                body = json.dumps(obj).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
                peer.requests.append((u.path, q))
                if self.headers.get("Authorization") != f"Bearer {peer.token}":
                    return self.send_json(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
                parts = u.path.strip("/").split("/")
                if u.path == "/api/v1/pods":
                    if q.get("fieldSelector") != f"spec.nodeName={peer.node}":
                        return self.send_json(400, {"kind": "Status", "code": 400, "message": "want this node only"})
                    if q.get("watch") in ("1", "true"):
                        return self.watch(q)
                    with peer.lock:
                        peer.lists += 1
                        items = list(peer.pods.values())
                        rv = str(peer.rv)
                    return self.send_json(200, {"kind": "PodList", "apiVersion": "v1",
                                                "metadata": {"resourceVersion": rv}, "items": items})
                if len(parts) == 7 and parts[:4] == ["apis", "apps", "v1", "namespaces"] and parts[5] == "replicasets":
                    rs = peer.replicasets.get((parts[4], parts[6]))
                    if rs:
                        return self.send_json(200, rs)
                if len(parts) == 7 and parts[:4] == ["apis", "batch", "v1", "namespaces"] and parts[5] == "jobs":
                    job = peer.jobs.get((parts[4], parts[6]))
                    if job:
                        return self.send_json(200, job)
                return self.send_json(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

            def watch(self, q):
                peer.watch_rvs.append(q.get("resourceVersion"))
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    ev = peer.watch_events.get()
                    if ev is None:  # end this watch (as timeoutSeconds does)
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        return
                    line = (json.dumps(ev) + "\n").encode()
                    try:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                        self.wfile.flush()
                    except OSError:
                        return
                    if ev.get("type") == "ERROR":
                        self.wfile.write(b"0\r\n\r\n")
                        self.wfile.flush()
                        return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add_pod(self, p):
        with self.lock:
            self.rv += 1
            p["metadata"]["resourceVersion"] = str(self.rv)
            self.pods[p["metadata"]["uid"]] = p

    def add_replicaset(self, ns, name, deployment):
        self.replicasets[(ns, name)] = {
            "apiVersion": "apps/v1", "kind": "ReplicaSet",
            "metadata": {"name": name, "namespace": ns, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "Deployment", "name": deployment, "controller": True}]},
        }

    def add_job(self, ns, name, cronjob=None):
        """A Job as the API returns it: a CronJob's carries its controller
        reference (and the labels the CronJob controller sets)."""
        md = {"name": name, "namespace": ns, "uid": f"job-{ns}-{name}", "labels": {"job-name": name}}
        if cronjob:
            md["ownerReferences"] = [{"apiVersion": "batch/v1", "kind": "CronJob", "name": cronjob,
                                      "uid": f"cj-{ns}-{cronjob}", "controller": True, "blockOwnerDeletion": True}]
        self.jobs[(ns, name)] = {
            "apiVersion": "batch/v1", "kind": "Job", "metadata": md,
            "spec": {"completions": 1, "parallelism": 1, "backoffLimit": 6},
            "status": {"active": 1, "startTime": "2026-12-05T02:00:00Z"},
        }

    def send(self, event_type, obj):
        self.watch_events.put({"type": event_type, "object": obj})

    def bookmark(self, rv):
        self.watch_events.put({"type": "BOOKMARK", "object": {"kind": "Pod", "apiVersion": "v1",
                                                                "metadata": {"resourceVersion": str(rv)}}})

    def gone(self):
        self.watch_events.put({"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                                             "message": "too old resource version", "reason": "Expired",
                                                             "code": 410}})

    def end_watch(self):
        self.watch_events.put(None)

    def kubeconfig(self, path):
        with open(path, "w") as f:
            f.write(f"""apiVersion: v1
kind: Config
current-context: test
clusters:
- name: test-cluster
  cluster:
    server: http://127.0.0.1:{self.port}
contexts:
- name: test
  context:
    cluster: test-cluster
    user: test-user
users:
- name: test-user
  user:
    token: {self.token}
""")
        return path

    def close(self):
        for _ in range(8):
            self.watch_events.put(None)
        self.server.shutdown()
        self.server.server_close()
