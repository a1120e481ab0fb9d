"""A CRI runtime's gRPC service on a unix socket, answering
runtime.v1.RuntimeService/ContainerStatus (python3-grpcio).

A test peer for a protocol: Debian's containerd (1.6.20) does serve the CRI
here (runtime.v1 and v1alpha2: Version answers, ContainerStatus says
NOT_FOUND), but it can hold no container: creating one needs a running pod
sandbox, and containers cannot start on these machines (docs/DEPLOY.md,
"Tests"). The messages are built from the cri-api runtime/v1 api.proto's
definitions (field numbers and types of ContainerStatusResponse,
ContainerStatus with all its scalar, map and nested fields, ContainerMetadata,
ImageSpec, Mount), so weft reads the real wire shape with every field a
runtime fills, not only the ones it wants."""
import os
import threading
import time
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, message_factory

F = descriptor_pb2.FieldDescriptorProto
STRING, BOOL, INT64, INT32, UINT32, ENUM, MSG = (F.TYPE_STRING, F.TYPE_BOOL, F.TYPE_INT64, F.TYPE_INT32,
                                                 F.TYPE_UINT32, F.TYPE_ENUM, F.TYPE_MESSAGE)
OPT, REP = F.LABEL_OPTIONAL, F.LABEL_REPEATED


def _message(fp, name, fields, maps=()):
    m = fp.message_type.add(name=name)
    for fname, num, ftype, label, tname in fields:
        f = m.field.add(name=fname, number=num, type=ftype, label=label)
        if tname:
            f.type_name = tname
    for fname, num in maps:  # map<string, string>: a repeated nested entry message
        entry = fname.title().replace("_", "") + "Entry"
        e = m.nested_type.add(name=entry)
        e.options.map_entry = True
        e.field.add(name="key", number=1, type=STRING, label=OPT)
        e.field.add(name="value", number=2, type=STRING, label=OPT)
        m.field.add(name=fname, number=num, type=MSG, label=REP, type_name=f".runtime.v1.{name}.{entry}")
    return m


def _classes():
    fp = descriptor_pb2.FileDescriptorProto(name="weft_test_cri_api.proto", package="runtime.v1", syntax="proto3")
    st = fp.enum_type.add(name="ContainerState")
    for i, n in enumerate(("CONTAINER_CREATED", "CONTAINER_RUNNING", "CONTAINER_EXITED", "CONTAINER_UNKNOWN")):
        st.value.add(name=n, number=i)
    _message(fp, "ContainerMetadata", [("name", 1, STRING, OPT, None), ("attempt", 2, UINT32, OPT, None)])
    _message(fp, "ImageSpec", [("image", 1, STRING, OPT, None), ("user_specified_image", 18, STRING, OPT, None),
                               ("runtime_handler", 19, STRING, OPT, None)], maps=[("annotations", 2)])
    _message(fp, "Mount", [("container_path", 1, STRING, OPT, None), ("host_path", 2, STRING, OPT, None),
                           ("readonly", 3, BOOL, OPT, None), ("selinux_relabel", 4, BOOL, OPT, None)])
    _message(fp, "ContainerStatus", [
        ("id", 1, STRING, OPT, None), ("metadata", 2, MSG, OPT, ".runtime.v1.ContainerMetadata"),
        ("state", 3, ENUM, OPT, ".runtime.v1.ContainerState"), ("created_at", 4, INT64, OPT, None),
        ("started_at", 5, INT64, OPT, None), ("finished_at", 6, INT64, OPT, None),
        ("exit_code", 7, INT32, OPT, None), ("image", 8, MSG, OPT, ".runtime.v1.ImageSpec"),
        ("image_ref", 9, STRING, OPT, None), ("reason", 10, STRING, OPT, None), ("message", 11, STRING, OPT, None),
        ("mounts", 14, MSG, REP, ".runtime.v1.Mount"), ("log_path", 15, STRING, OPT, None),
        ("image_id", 17, STRING, OPT, None)], maps=[("labels", 12), ("annotations", 13)])
    _message(fp, "ContainerStatusRequest", [("container_id", 1, STRING, OPT, None), ("verbose", 2, BOOL, OPT, None)])
    _message(fp, "ContainerStatusResponse", [("status", 1, MSG, OPT, ".runtime.v1.ContainerStatus")],
             maps=[("info", 2)])
    msgs = message_factory.GetMessages([fp])
    return msgs["runtime.v1.ContainerStatusRequest"], msgs["runtime.v1.ContainerStatusResponse"]


Request, Response = _classes()
PATH = "/runtime.v1.RuntimeService/ContainerStatus"


class CriApiPeer:
    def __init__(self, path):
        self.path = path
        self.containers = {}   # id -> ContainerStatusResponse
        self.failing = set()   # ids answered with INTERNAL
        self.requests = []     # (container_id, verbose)
        self.lock = threading.Lock()
        peer = self

        def container_status(raw, context):
            req = Request.FromString(raw)
            with peer.lock:
                peer.requests.append((req.container_id, req.verbose))
            if req.container_id in peer.failing:
                context.abort(grpc.StatusCode.INTERNAL, "runtime broke")
            resp = peer.containers.get(req.container_id)
            if resp is None:  # containerd's words
                context.abort(grpc.StatusCode.NOT_FOUND,
                              f'an error occurred when try to find container "{req.container_id}": not found')
            return resp.SerializeToString()

        handler = grpc.method_handlers_generic_handler("runtime.v1.RuntimeService", {
            "ContainerStatus": grpc.unary_unary_rpc_method_handler(container_status),
        })
        if os.path.exists(path):
            os.unlink(path)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        self.server.add_generic_rpc_handlers((handler,))
        self.server.add_insecure_port(f"unix://{path}")
        self.server.start()

    def add(self, cid, name, image, labels=None, pod_uid="", log_dir="/var/log/pods"):
        """A running container as containerd reports it (kubelet labels
        and annotations, the image by name and by digest, mounts, times)."""
        now = time.time_ns()
        digest = "sha256:" + "ab" * 32
        resp = Response(status=dict(
            id=cid, metadata=dict(name=name, attempt=0), state=1, created_at=now - 10**9, started_at=now,
            image=dict(image=image, user_specified_image=image, annotations={"org.opencontainers.image.ref": image}),
            image_ref=f"{image.split(':')[0]}@{digest}", image_id=digest, reason="", message="",
            labels=labels or {}, annotations={"io.kubernetes.container.hash": "3f2a7c1e",
                                              "io.kubernetes.container.restartCount": "0"},
            mounts=[dict(container_path="/etc/hosts", host_path=f"/var/lib/kubelet/pods/{pod_uid}/etc-hosts")],
            log_path=f"{log_dir}/{name}/0.log"))
        self.containers[cid] = resp

    def close(self):
        self.server.stop(None)
        if os.path.exists(self.path):
            os.unlink(self.path)
