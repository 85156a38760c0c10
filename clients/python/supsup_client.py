#!/usr/bin/env python3
"""A Python client for the supsup gRPC API (supsup.v1.Classifier, grpc.health.v1, server reflection).

Needs only grpcio and protobuf (Debian: python3-grpcio, which pulls in python3-protobuf). The stubs are
generated from the repository's proto files, never committed:

- with `protoc` and `grpc_python_plugin` when both are on PATH (Debian: protobuf-compiler and
  protobuf-compiler-grpc; they match python3-grpcio's versions), or else
- with `python3 -m grpc_tools.protoc` (pip's grpcio-tools). Debian 12's python3-grpc-tools cannot be used:
  it bundles protoc 3.5.1, which rejects proto3 `optional` fields and emits code that protobuf 4 refuses.

Pass `stubs_dir` (or set SUPSUP_STUBS) to reuse stubs generated earlier, e.g. by `generate_stubs`.

Library use:

    client = SupsupClient("127.0.0.1:50051")
    reply = client.infer(rows, task="permuted-3")          # rows: list of lists of floats in [0, 1]
    reply = client.infer(rows)                             # task inferred
    client.health_check()                                  # "SERVING"

Command line:

    python3 clients/python/supsup_client.py --target 127.0.0.1:50051 tasks
    python3 clients/python/supsup_client.py --target 127.0.0.1:50051 health
    python3 clients/python/supsup_client.py --target 127.0.0.1:50051 infer --random 4 [--task ID]
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path
from types import ModuleType
from typing import Iterable, Iterator, Sequence

import grpc

REPO = Path(__file__).resolve().parents[2]
PROTO_DIR = REPO / "proto"
# The standard health and reflection protos ship inside the server's npm dependencies.
HEALTH_PROTO = REPO / "node_modules/grpc-health-check/proto/health/v1/health.proto"
REFLECTION_PROTO = REPO / "node_modules/@grpc/reflection/build/proto/grpc/reflection/v1/reflection.proto"

CLASSIFIER_SERVICE = "supsup.v1.Classifier"


def generate_stubs(out_dir: str | os.PathLike) -> Path:
    """Generates the Python stubs for supsup.proto, inference.proto (Open Inference Protocol), health.proto
    and reflection.proto into out_dir.

    The reflection proto is copied under another path first: generated as grpc/reflection/v1/... its
    modules would sit inside a package named `grpc` and shadow grpcio itself.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    src = out / "_protos"
    (src / "health/v1").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(PROTO_DIR / "supsup.proto", src / "supsup.proto")
    shutil.copyfile(PROTO_DIR / "inference.proto", src / "inference.proto")
    shutil.copyfile(HEALTH_PROTO, src / "health/v1/health.proto")
    shutil.copyfile(REFLECTION_PROTO, src / "supsup_reflection_v1.proto")
    files = ["supsup.proto", "inference.proto", "health/v1/health.proto", "supsup_reflection_v1.proto"]

    protoc, plugin = shutil.which("protoc"), shutil.which("grpc_python_plugin")
    if protoc and plugin:
        cmd = [protoc, f"--plugin=protoc-gen-grpc_python={plugin}", f"-I{src}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    else:
        cmd = [sys.executable, "-m", "grpc_tools.protoc", f"-I{src}", f"--python_out={out}", f"--grpc_python_out={out}", *files]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"stub generation failed ({' '.join(cmd[:2])}): {result.stderr.strip()}")
    return out


class Stubs:
    """The generated modules, imported from a stub directory."""

    def __init__(self, stubs_dir: str | os.PathLike):
        path = str(Path(stubs_dir).resolve())
        if path not in sys.path:
            sys.path.insert(0, path)
        self.pb2: ModuleType = importlib.import_module("supsup_pb2")
        self.pb2_grpc: ModuleType = importlib.import_module("supsup_pb2_grpc")
        self.inference_pb2: ModuleType = importlib.import_module("inference_pb2")
        self.inference_pb2_grpc: ModuleType = importlib.import_module("inference_pb2_grpc")
        self.health_pb2: ModuleType = importlib.import_module("health.v1.health_pb2")
        self.health_pb2_grpc: ModuleType = importlib.import_module("health.v1.health_pb2_grpc")
        self.reflection_pb2: ModuleType = importlib.import_module("supsup_reflection_v1_pb2")
        self.reflection_pb2_grpc: ModuleType = importlib.import_module("supsup_reflection_v1_pb2_grpc")


_stubs: Stubs | None = None


def load_stubs(stubs_dir: str | None = None) -> Stubs:
    global _stubs
    if _stubs is None:
        stubs_dir = stubs_dir or os.environ.get("SUPSUP_STUBS")
        if not stubs_dir:
            stubs_dir = tempfile.mkdtemp(prefix="supsup-stubs-")
            generate_stubs(stubs_dir)
        _stubs = Stubs(stubs_dir)
    return _stubs


def pack_float32(rows: Sequence[Sequence[float]]) -> tuple[bytes, list[int]]:
    """Rows of equal length as little-endian float32 bytes, and their shape."""
    if not rows:
        return b"", [0, 0]
    width = len(rows[0])
    flat: list[float] = []
    for row in rows:
        if len(row) != width:
            raise ValueError("every example must have the same number of values")
        flat.extend(row)
    return struct.pack(f"<{len(flat)}f", *flat), [len(rows), width]


class SupsupClient:
    def __init__(self, target: str, stubs_dir: str | None = None, max_message_bytes: int = 64 * 1024 * 1024):
        self.stubs = load_stubs(stubs_dir)
        options = [("grpc.max_receive_message_length", max_message_bytes), ("grpc.max_send_message_length", max_message_bytes)]
        self.channel = grpc.insecure_channel(target, options=options)
        self.classifier = self.stubs.pb2_grpc.ClassifierStub(self.channel)
        # The Open Inference Protocol service, for code written against Triton / KServe's gRPC API.
        self.oip = self.stubs.inference_pb2_grpc.GRPCInferenceServiceStub(self.channel)
        self.health = self.stubs.health_pb2_grpc.HealthStub(self.channel)
        self.reflection = self.stubs.reflection_pb2_grpc.ServerReflectionStub(self.channel)

    def close(self) -> None:
        self.channel.close()

    def __enter__(self) -> "SupsupClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait_ready(self, timeout: float = 10.0) -> None:
        grpc.channel_ready_future(self.channel).result(timeout=timeout)

    def infer(
        self,
        rows: Sequence[Sequence[float]] | None = None,
        *,
        task: str | None = None,
        packed: bytes | None = None,
        shape: Sequence[int] | None = None,
        dtype: str | None = None,
        method: str | None = None,
        objective: str | None = None,
        decide_from: str | None = None,
        top_k: int | None = None,
        timeout: float = 30.0,
    ):
        """Classifies rows (lists of floats), or packed bytes with a shape; task None means: infer it."""
        pb2 = self.stubs.pb2
        if rows is not None:
            packed, shape = pack_float32(rows)
            dtype = "float32"
        request = pb2.InferRequest(inputs=packed or b"", shape=list(shape or []))
        if dtype is not None:
            request.dtype = dtype
        if task is not None:
            request.task = task
        if top_k is not None:
            request.top_k = top_k
        options = {"method": method, "objective": objective, "decide_from": decide_from}
        if any(v is not None for v in options.values()):
            request.inference.CopyFrom(pb2.InferenceOptions(**{k: v for k, v in options.items() if v is not None}))
        return self.classifier.Infer(request, timeout=timeout)

    def list_tasks(self, timeout: float = 10.0):
        return self.classifier.ListTasks(self.stubs.pb2.ListTasksRequest(), timeout=timeout).tasks

    def health_check(self, service: str = "", timeout: float = 5.0) -> str:
        h = self.stubs.health_pb2
        reply = self.health.Check(h.HealthCheckRequest(service=service), timeout=timeout)
        return h.HealthCheckResponse.ServingStatus.Name(reply.status)

    def health_watch(self, service: str = "", timeout: float | None = None) -> Iterator[str]:
        """Yields the serving status by name each time it changes, starting with the current one."""
        h = self.stubs.health_pb2
        for reply in self.health.Watch(h.HealthCheckRequest(service=service), timeout=timeout):
            yield h.HealthCheckResponse.ServingStatus.Name(reply.status)

    def list_services(self, timeout: float = 5.0) -> list[str]:
        """The services the server offers, asked through server reflection (grpc.reflection.v1)."""
        r = self.stubs.reflection_pb2
        replies = self.reflection.ServerReflectionInfo(iter([r.ServerReflectionRequest(list_services="")]), timeout=timeout)
        for reply in replies:
            return sorted(s.name for s in reply.list_services_response.service)
        return []


def prediction_dict(p) -> dict:
    return {
        "label": p.label,
        "probabilities": [round(x, 6) for x in p.probabilities],
        "task": {"id": p.task.id, "inferred": p.task.inferred, "confidence": p.task.confidence, "unknown": p.task.unknown},
        **({"topK": [{"label": t.label, "probability": t.probability} for t in p.top_k]} if len(p.top_k) else {}),
    }


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="supsup gRPC client")
    parser.add_argument("--target", default=os.environ.get("SUPSUP_GRPC_TARGET", "127.0.0.1:50051"))
    parser.add_argument("--stubs", help="directory of generated stubs (default: generate into a temp dir)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tasks", help="list the tasks")
    sub.add_parser("services", help="list the services (server reflection)")
    health = sub.add_parser("health", help="grpc.health.v1 Check")
    health.add_argument("--service", default="")
    infer = sub.add_parser("infer", help="classify examples")
    infer.add_argument("--task", help="task id (default: infer the task)")
    infer.add_argument("--json", help="file with a JSON array of examples (arrays of numbers); - for stdin")
    infer.add_argument("--random", type=int, help="classify this many random examples instead")
    infer.add_argument("--size", type=int, default=784, help="values per random example")
    infer.add_argument("--top-k", type=int)
    args = parser.parse_args(list(argv) if argv is not None else None)

    with SupsupClient(args.target, stubs_dir=args.stubs) as client:
        if args.command == "tasks":
            for t in client.list_tasks():
                print(json.dumps({"id": t.id, "name": t.name, "density": t.density, "addedAt": t.added_at, "transform": json.loads(t.transform_json or "null")}))
        elif args.command == "services":
            print("\n".join(client.list_services()))
        elif args.command == "health":
            print(client.health_check(args.service))
        elif args.command == "infer":
            if args.random:
                rng = random.Random(1)
                rows = [[rng.random() for _ in range(args.size)] for _ in range(args.random)]
            elif args.json:
                rows = json.load(sys.stdin if args.json == "-" else open(args.json))
            else:
                parser.error("infer needs --json FILE or --random N")
            reply = client.infer(rows, task=args.task, top_k=args.top_k)
            print(json.dumps({"predictions": [prediction_dict(p) for p in reply.predictions]}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except grpc.RpcError as e:
        print(f"supsup_client: {e.code().name}: {e.details()}", file=sys.stderr)
        sys.exit(1)
