#!/usr/bin/env python3
"""System check: an Open Inference Protocol client written from the published documents, not from supsup's code.

REST requests are built byte by byte with http.client as Triton's stock HTTP client (`tritonclient.http`) sends
them: the KServe / OIP REST specification (inference_rest.md, open_inference_rest.yaml) and Triton's binary tensor
data extension (extension_binary_data.md): a JSON header of `Inference-Header-Content-Length` bytes, then each
input's little-endian bytes (`parameters.binary_data_size`), no Content-Type; `binary_data_output` / per-output
`binary_data`; answers read back the same way; Triton's model configuration, statistics and model repository extensions
(extension_model_configuration.md, extension_statistics.md, extension_model_repository.md). gRPC uses stubs generated from proto/inference.proto (Debian's
python3-grpcio). `tritonclient` itself cannot be installed here (no PyPI), hence this client.

Prints one JSON line per check, {"check": name, "ok": bool, "detail": text}; exits 1 when any failed.

    oip_check.py --grpc 127.0.0.1:50051 --http http://127.0.0.1:8080 --stubs DIR
"""
from __future__ import annotations

import argparse
import http.client
import json
import random
import struct
import sys
import urllib.parse
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "clients/python"))

import grpc  # noqa: E402

import supsup_client  # noqa: E402  (stub generation only)
from grpc_check import check, results  # noqa: E402  (the same JSON-line reporting)

OUTPUTS = ["probabilities", "label", "task", "task_confidence", "task_unknown"]


class Rest:
    """HTTP/1.1 by hand: each request's bytes are exactly what the documents describe."""

    def __init__(self, base: str):
        u = urllib.parse.urlsplit(base)
        self.host, self.port = u.hostname, u.port

    def call(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            res = conn.getresponse()
            return res.status, {k.lower(): v for k, v in res.getheaders()}, res.read()
        finally:
            conn.close()

    def json(self, method: str, path: str, obj: dict | None = None):
        body = json.dumps(obj).encode() if obj is not None else None
        status, headers, data = self.call(method, path, body, {"Content-Type": "application/json"} if body else {})
        return status, json.loads(data) if data else None

    def binary_infer(self, path: str, header: dict, tensors: list[bytes]):
        """POST JSON header + raw tensors with Inference-Header-Content-Length and no Content-Type (tritonclient's way)."""
        head = json.dumps(header).encode()
        status, headers, data = self.call("POST", path, head + b"".join(tensors), {"Inference-Header-Content-Length": str(len(head))})
        return status, headers, data


def read_answer(headers: dict, data: bytes) -> tuple[dict, dict]:
    """An infer answer: the JSON header and, for each binary output, its bytes (in the header's order)."""
    length = headers.get("inference-header-content-length")
    if length is None:
        return json.loads(data), {}
    length = int(length)
    header = json.loads(data[:length])
    raw, at = {}, length
    for o in header["outputs"]:
        size = (o.get("parameters") or {}).get("binary_data_size")
        if size is not None:
            raw[o["name"]] = data[at : at + size]
            at += size
    assert at == len(data), f"binary outputs take {at - length} bytes, the body has {len(data) - length}"
    return header, raw


def decode(datatype: str, b: bytes) -> list:
    """Binary tensor elements per the extension: little-endian; BOOL one byte; BYTES 4-byte length + bytes."""
    if datatype == "FP32":
        return list(struct.unpack(f"<{len(b) // 4}f", b))
    if datatype == "INT64":
        return list(struct.unpack(f"<{len(b) // 8}q", b))
    if datatype == "BOOL":
        return [x == 1 for x in b]
    if datatype == "BYTES":
        out, at = [], 0
        while at < len(b):
            (n,) = struct.unpack_from("<I", b, at)
            out.append(b[at + 4 : at + 4 + n].decode())
            at += 4 + n
        return out
    raise ValueError(datatype)


def outputs_of(header: dict, raw: dict) -> dict:
    """name -> flat elements, from JSON data or binary bytes alike."""
    return {o["name"]: decode(o["datatype"], raw[o["name"]]) if o["name"] in raw else o["data"] for o in header["outputs"]}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grpc", required=True)
    parser.add_argument("--http", required=True)
    parser.add_argument("--stubs", required=True)
    parser.add_argument("--model", default="supsup")
    args = parser.parse_args()
    rest = Rest(args.http)
    model = args.model
    rng = random.Random(11)
    n = 4
    pixels = bytes(rng.randrange(256) for _ in range(n * 784))
    fp32 = struct.pack(f"<{n * 784}f", *(p / 255 for p in pixels))
    fp64 = struct.pack(f"<{n * 784}d", *(p / 255 for p in pixels))
    state: dict = {}

    @check("REST server metadata lists binary_tensor_data; health and model ready answer 200")
    def _server():
        status, meta = rest.json("GET", "/v2")
        assert status == 200 and "binary_tensor_data" in meta["extensions"], f"{status} {meta}"
        for path in ("/v2/health/live", "/v2/health/ready", f"/v2/models/{model}/ready", f"/v2/models/{model}/versions/1/ready"):
            assert rest.call("GET", path)[0] == 200, path
        return f"extensions {meta['extensions']}"

    _server()

    @check("REST model metadata: input x, version 1, accepted datatypes and UINT8 scaling in properties")
    def _metadata():
        status, meta = rest.json("GET", f"/v2/models/{model}")
        assert status == 200, status
        assert meta["versions"] == ["1"] and meta["inputs"][0]["name"] == "x", meta
        assert set(meta["properties"]["input_datatypes"].split(",")) >= {"FP32", "FP64", "UINT8"}, meta["properties"]
        assert "255" in meta["properties"]["input_scaling"], meta["properties"]
        assert [o["name"] for o in meta["outputs"]] == OUTPUTS, meta["outputs"]
        status, tasks = rest.json("GET", "/tasks")
        state["task"] = tasks["tasks"][-1]["id"]
        return f"{meta['properties']['input_datatypes']}; task model to try: {state['task']}"

    _metadata()

    @check("REST binary extension both ways: FP32 inputs in binary, binary_data_output, no Content-Type; equal to JSON")
    def _binary():
        header = {"id": "py-bin", "parameters": {"binary_data_output": True},
                  "inputs": [{"name": "x", "shape": [n, 784], "datatype": "FP32", "parameters": {"binary_data_size": len(fp32)}}]}
        status, headers, data = rest.binary_infer(f"/v2/models/{model}/infer", header, [fp32])
        assert status == 200, f"{status} {data[:200]!r}"
        assert headers["content-type"].startswith("application/octet-stream"), headers["content-type"]
        answer, raw = read_answer(headers, data)
        assert answer["id"] == "py-bin" and sorted(raw) == sorted(OUTPUTS), f"{answer} {sorted(raw)}"
        got = outputs_of(answer, raw)
        probs = got["probabilities"]
        assert len(probs) == n * 10 and all(abs(sum(probs[i * 10 : i * 10 + 10]) - 1) < 1e-4 for i in range(n)), "probabilities"
        status, js = rest.json("POST", f"/v2/models/{model}/infer", {"inputs": [{"name": "x", "shape": [n, 784], "datatype": "FP32", "data": list(struct.unpack(f"<{n * 784}f", fp32))}]})
        assert status == 200, js
        want = outputs_of(js, {})
        assert got["label"] == want["label"] and got["task"] == want["task"], f"{got['label']} {want['label']}"
        state["labels"], state["tasks"] = got["label"], got["task"]
        return f"labels {got['label']}, tasks {got['task']}"

    _binary()

    @check("REST requested outputs: only those come back, label in binary and task in JSON; unknown output 400 {error}")
    def _outputs():
        header = {"inputs": [{"name": "x", "shape": [n, 784], "datatype": "UINT8", "parameters": {"binary_data_size": len(pixels)}}],
                  "outputs": [{"name": "label", "parameters": {"binary_data": True}}, {"name": "task"}]}
        status, headers, data = rest.binary_infer(f"/v2/models/{model}/infer", header, [pixels])
        answer, raw = read_answer(headers, data)
        assert status == 200 and [o["name"] for o in answer["outputs"]] == ["label", "task"], answer
        assert list(raw) == ["label"] and "data" in answer["outputs"][1], answer
        assert decode("INT64", raw["label"]) == state["labels"], "UINT8 (/255) and FP32 answers differ"
        header["outputs"] = [{"name": "logits"}]
        status, headers, data = rest.binary_infer(f"/v2/models/{model}/infer", header, [pixels])
        error = json.loads(data)
        assert status == 400 and isinstance(error["error"], str) and "logits" in error["error"], f"{status} {error}"
        return error["error"]

    _outputs()

    @check("REST parameters: unknown ignored, priority and timeout (µs) accepted; a bad timeout 400")
    def _parameters():
        body = {"parameters": {"priority": 1, "timeout": 10_000_000, "sequence_id": 0, "my_flag": "x"},
                "inputs": [{"name": "x", "shape": [n, 784], "datatype": "FP32", "data": list(struct.unpack(f"<{n * 784}f", fp32))}]}
        status, answer = rest.json("POST", f"/v2/models/{model}/infer", body)
        assert status == 200, answer
        body["parameters"]["timeout"] = -1
        status, error = rest.json("POST", f"/v2/models/{model}/infer", body)
        assert status == 400 and "timeout" in error["error"], error
        return "200; timeout -1: 400"

    _parameters()

    @check("REST versions: /versions/1/infer, metadata and ready; version 2 is 404 {error}; unknown model 404 {error}")
    def _versions():
        header = {"inputs": [{"name": "x", "shape": [n, 28, 28], "datatype": "FP64", "parameters": {"binary_data_size": len(fp64)}}]}
        status, headers, data = rest.binary_infer(f"/v2/models/{model}/versions/1/infer", header, [fp64])
        answer, raw = read_answer(headers, data)
        assert status == 200 and answer["model_version"] == "1", answer
        assert outputs_of(answer, raw)["label"] == state["labels"], "FP64 [N, 28, 28] differs from FP32 [N, 784]"
        for method, path in (("GET", f"/v2/models/{model}/versions/2/ready"), ("GET", f"/v2/models/{model}/versions/2"), ("GET", "/v2/models/no-such-model")):
            status, error = rest.json(method, path)
            assert status == 404 and isinstance(error["error"], str), f"{path}: {status} {error}"
        status, headers, data = rest.binary_infer(f"/v2/models/{model}/versions/2/infer", header, [fp64])
        assert status == 404 and isinstance(json.loads(data)["error"], str), status
        return "version 1 served; 2 refused"

    _versions()

    @check("REST per-task model: /v2/models/{task}/infer answers that task, UINT8 [N, 1, 28, 28]")
    def _task_model():
        task = state["task"]
        status, meta = rest.json("GET", f"/v2/models/{task}")
        assert status == 200 and meta["name"] == task, meta
        header = {"parameters": {"binary_data_output": True},
                  "inputs": [{"name": "x", "shape": [n, 1, 28, 28], "datatype": "UINT8", "parameters": {"binary_data_size": len(pixels)}}]}
        status, headers, data = rest.binary_infer(f"/v2/models/{task}/infer", header, [pixels])
        answer, raw = read_answer(headers, data)
        assert status == 200 and answer["model_name"] == task and answer["parameters"]["task_inferred"] is False, answer
        got = outputs_of(answer, raw)
        assert got["task"] == [task] * n, got["task"]
        status, js = rest.json("POST", f"/v2/models/{model}/infer", {"parameters": {"task": task}, "inputs": [{"name": "x", "shape": [n, 784], "datatype": "UINT8", "data": list(pixels)}]})
        assert outputs_of(js, {})["label"] == got["label"], "task model and parameters.task differ"
        return f"{task}: labels {got['label']}"

    _task_model()

    @check("REST input checks: UINT8 over 255 and a wrong input name are 400 {error}")
    def _input_checks():
        for tensor, word in (({"name": "x", "shape": [1, 784], "datatype": "UINT8", "data": [256] + [0] * 783}, "255"),
                             ({"name": "INPUT__0", "shape": [1, 784], "datatype": "FP32", "data": [0.0] * 784}, "name")):
            status, error = rest.json("POST", f"/v2/models/{model}/infer", {"inputs": [tensor]})
            assert status == 400 and word in error["error"], f"{status} {error}"
        return "both 400"

    _input_checks()

    @check("REST Triton extensions: /config (ModelConfig JSON), /stats counts one more infer, repository index READY")
    def _extensions():
        status, meta = rest.json("GET", "/v2")
        assert {"model_configuration", "statistics", "model_repository"} <= set(meta["extensions"]), meta["extensions"]
        task = state["task"]
        status, config = rest.json("GET", f"/v2/models/{task}/versions/1/config")
        assert status == 200 and config["name"] == task and config["max_batch_size"] > 0, f"{status} {config}"
        assert config["input"][0]["name"] == "x" and config["input"][0]["data_type"] == "TYPE_FP32" and config["input"][0]["dims"] == [784], config["input"]
        assert [o["name"] for o in config["output"]] == OUTPUTS, config["output"]
        stats = lambda: rest.json("GET", f"/v2/models/{task}/stats")[1]["model_stats"][0]  # noqa: E731
        before = stats()
        status, _ = rest.json("POST", f"/v2/models/{task}/infer", {"inputs": [{"name": "x", "shape": [n, 784], "datatype": "UINT8", "data": list(pixels)}]})
        assert status == 200, status
        after = stats()
        assert after["name"] == task and after["version"] == "1", after
        assert after["inference_count"] - before["inference_count"] == n, (before["inference_count"], after["inference_count"])
        assert after["execution_count"] - before["execution_count"] == 1, after["execution_count"]
        ok, ok0 = after["inference_stats"]["success"], before["inference_stats"]["success"]
        assert ok["count"] - ok0["count"] == 1 and ok["ns"] > ok0["ns"], (ok0, ok)
        assert after["inference_stats"]["compute_infer"]["ns"] > before["inference_stats"]["compute_infer"]["ns"], after["inference_stats"]
        assert after["last_inference"] > 0, after
        status, every = rest.json("GET", "/v2/models/stats")
        assert status == 200 and {model, task} <= {m["name"] for m in every["model_stats"]}, status
        status, index = rest.json("POST", "/v2/repository/index", {"ready": True})
        assert status == 200 and {"name": task, "version": "1", "state": "READY", "reason": ""} in index, index[:3]
        assert index[0]["name"] == model, index[0]
        status, error = rest.json("GET", "/v2/models/no-such-model/config")
        assert status == 404 and isinstance(error["error"], str), f"{status} {error}"
        return f"{task}: {after['inference_count']} inferences, {after['execution_count']} executions, success {ok['ns']} ns; {len(index)} models in the index"

    _extensions()

    Path(args.stubs).mkdir(parents=True, exist_ok=True)
    supsup_client.generate_stubs(args.stubs)
    sys.path.insert(0, args.stubs)
    import inference_pb2 as pb  # noqa: E402
    import inference_pb2_grpc as pb_grpc  # noqa: E402

    channel = grpc.insecure_channel(args.grpc, options=[("grpc.max_send_message_length", 16 << 20), ("grpc.max_receive_message_length", 16 << 20)])
    stub = pb_grpc.GRPCInferenceServiceStub(channel)

    @check("gRPC ServerMetadata extensions, ModelMetadata properties and versions; ModelReady version 2 NOT_FOUND")
    def _grpc_metadata():
        server = stub.ServerMetadata(pb.ServerMetadataRequest(), timeout=10)
        assert "binary_tensor_data" in server.extensions, server
        meta = stub.ModelMetadata(pb.ModelMetadataRequest(name=model), timeout=10)
        assert list(meta.versions) == ["1"] and "UINT8" in meta.properties["input_datatypes"], meta
        assert stub.ModelReady(pb.ModelReadyRequest(name=model, version="1"), timeout=10).ready
        try:
            stub.ModelReady(pb.ModelReadyRequest(name=model, version="2"), timeout=10)
            raise AssertionError("version 2 answered")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
        return f"extensions {list(server.extensions)}"

    _grpc_metadata()

    @check("gRPC ModelInfer raw_input_contents FP32 [N, 28, 28] with requested outputs and parameters; equal to REST")
    def _grpc_infer():
        req = pb.ModelInferRequest(model_name=model, model_version="1", id="py-grpc", raw_input_contents=[fp32])
        req.inputs.add(name="x", datatype="FP32", shape=[n, 28, 28])
        req.outputs.add(name="task")
        req.outputs.add(name="label")
        req.parameters["priority"].uint64_param = 2
        req.parameters["timeout"].int64_param = 10_000_000
        req.parameters["my_flag"].string_param = "ignored"
        reply = stub.ModelInfer(req, timeout=30)
        assert [o.name for o in reply.outputs] == ["task", "label"] and len(reply.raw_output_contents) == 2, reply.outputs
        assert reply.id == "py-grpc" and reply.model_version == "1", reply.id
        assert decode("BYTES", reply.raw_output_contents[0]) == state["tasks"], "tasks differ from REST"
        assert decode("INT64", reply.raw_output_contents[1]) == state["labels"], "labels differ from REST"
        return f"labels {decode('INT64', reply.raw_output_contents[1])}"

    _grpc_infer()

    @check("gRPC per-task model: model_name = task, UINT8 raw [N, 1, 28, 28]")
    def _grpc_task():
        task = state["task"]
        req = pb.ModelInferRequest(model_name=task, raw_input_contents=[pixels])
        req.inputs.add(name="x", datatype="UINT8", shape=[n, 1, 28, 28])
        reply = stub.ModelInfer(req, timeout=30)
        names = [o.name for o in reply.outputs]
        assert reply.model_name == task and decode("BYTES", reply.raw_output_contents[names.index("task")]) == [task] * n, reply.model_name
        assert not reply.parameters["task_inferred"].bool_param
        return task

    _grpc_task()

    @check("gRPC refusals: unknown output, uint_contents over 255, wrong-size raw (8 MiB UINT8) are INVALID_ARGUMENT")
    def _grpc_errors():
        bad = []
        r = pb.ModelInferRequest(model_name=model, raw_input_contents=[fp32])
        r.inputs.add(name="x", datatype="FP32", shape=[n, 784])
        r.outputs.add(name="logits")
        bad.append(r)
        r = pb.ModelInferRequest(model_name=model)
        t = r.inputs.add(name="x", datatype="UINT8", shape=[1, 784])
        t.contents.uint_contents.extend([300] + [0] * 783)
        bad.append(r)
        r = pb.ModelInferRequest(model_name=model, raw_input_contents=[bytes(8 * 1024 * 1024 - 4096)])
        r.inputs.add(name="x", datatype="UINT8", shape=[1, 784])
        bad.append(r)
        for r in bad:
            try:
                stub.ModelInfer(r, timeout=30)
                raise AssertionError("accepted")
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.INVALID_ARGUMENT, f"{e.code().name}: {e.details()}"
        return f"{len(bad)} refused"

    _grpc_errors()

    @check("gRPC Triton extensions: ModelConfig, ModelStatistics (equal to REST), RepositoryIndex")
    def _grpc_extensions():
        task = state["task"]
        config = stub.ModelConfig(pb.ModelConfigRequest(name=task, version="1"), timeout=10).config
        assert config.name == task and config.max_batch_size > 0 and list(config.input[0].dims) == [784], config
        assert pb.DataType.Name(config.input[0].data_type) == "TYPE_FP32", config.input[0]
        stats = stub.ModelStatistics(pb.ModelStatisticsRequest(name=task), timeout=10).model_stats[0]
        status, rest_stats = rest.json("GET", f"/v2/models/{task}/stats")
        r = rest_stats["model_stats"][0]
        assert stats.inference_count == r["inference_count"] and stats.inference_stats.success.count == r["inference_stats"]["success"]["count"], (stats, r)
        assert stats.inference_stats.success.ns == r["inference_stats"]["success"]["ns"], "gRPC and REST report different ns"
        index = stub.RepositoryIndex(pb.RepositoryIndexRequest(ready=True), timeout=10).models
        assert any(m.name == task and m.state == "READY" for m in index), index
        try:
            stub.ModelConfig(pb.ModelConfigRequest(name="no-such-model"), timeout=10)
            raise AssertionError("unknown model answered")
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.NOT_FOUND, e
        return f"{task}: {stats.inference_count} inferences; {len(index)} models"

    _grpc_extensions()

    channel.close()
    return 0 if results and all(r["ok"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
