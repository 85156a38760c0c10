#!/usr/bin/python3
"""The PyTorch peer of bench/train-step.ts --peer: the same supermask training step, in PyTorch on one thread.

One step = draw a batch of 128 from a permuted MNIST task, forward W ⊙ M(S) through the network, cross-entropy
over all s outputs, backward with the straight-through estimator (∂L/∂S = ∂L/∂W_eff ⊙ W), RMSProp on the scores
(lr 1e-4, alpha 0.99, eps 1e-8), and the mask of the next step. The strongest eager form we know: the task's
permuted, normalised images as one tensor (a batch is one index_select), scores as leaf tensors, the mask as a
custom autograd function that passes the gradient straight through, F.linear, torch.optim.RMSprop with
foreach (one multi-tensor update; the faster of foreach on and off here, checked at setup).

Driven over stdin/stdout by the runner, one JSON object a line:
  {"setup": "lenet-300-100", "outputs": 100, "mask": "gn"|"gg", "density": 0.5, "data": DIR}  ->  {"ready": ...}
  {"run": "lenet-300-100", "steps": N}  ->  {"ms": wall milliseconds of the N steps, "cpuMs": the process's CPU time}
Debian: apt-get install python3-torch libopenblas0-pthread; run with /usr/bin/python3.
"""
import ctypes
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

torch.set_num_threads(1)
torch.manual_seed(1)

HIDDEN = {"lenet-300-100": [300, 100], "fc-1024-1024": [1024, 1024]}


class SignMask(torch.autograd.Function):
    """GN: keep the weights whose score is >= 0; the gradient passes straight through to the scores."""

    @staticmethod
    def forward(ctx, scores):
        return (scores >= 0).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


class TopKMask(torch.autograd.Function):
    """GG (edge-popup's GetSubnet): keep the top `density` of |S| in the layer; straight-through gradient."""

    @staticmethod
    def forward(ctx, scores, density):
        flat = scores.abs().flatten()
        k = max(1, round(density * flat.numel()))
        threshold = torch.kthvalue(flat, flat.numel() - k + 1).values
        return (scores.abs() >= threshold).to(scores.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def read_idx(path):
    raw = open(path, "rb").read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


class Task:
    def __init__(self, arch, outputs, mask, density, data_dir):
        images = read_idx(os.path.join(data_dir, "train-images-idx3-ubyte")).reshape(-1, 784)
        labels = read_idx(os.path.join(data_dir, "train-labels-idx1-ubyte"))
        perm = torch.randperm(784)
        x = torch.from_numpy(images.astype(np.float32) / 255.0)[:, perm]
        self.x = ((x - 0.1307) / 0.3081).contiguous()
        self.y = torch.from_numpy(labels.astype(np.int64))
        self.order = torch.randperm(self.x.shape[0])
        self.cursor = 0
        sizes = [784] + HIDDEN[arch] + [outputs]
        # PyTorch's layout: weight [out, in]. Signed-constant base weights as in the paper; the values do not matter here.
        self.weights = [torch.sign(torch.randn(o, i)) * (2.0 / i) ** 0.5 for i, o in zip(sizes[:-1], sizes[1:])]
        self.scores = [((torch.rand(o, i) * 2 - 1) / i**0.5).requires_grad_() for i, o in zip(sizes[:-1], sizes[1:])]
        self.mask, self.density = mask, density
        self.opt = self.fastest_optimizer()

    def fastest_optimizer(self):
        timings = {}
        for foreach in (False, True):
            self.opt = torch.optim.RMSprop(self.scores, lr=1e-4, alpha=0.99, eps=1e-8, foreach=foreach)
            self.steps(5)
            t0 = time.perf_counter()
            self.steps(20)
            timings[foreach] = time.perf_counter() - t0
        self.foreach = min(timings, key=timings.get)
        return torch.optim.RMSprop(self.scores, lr=1e-4, alpha=0.99, eps=1e-8, foreach=self.foreach)

    def batch(self):
        if self.cursor + 128 > self.x.shape[0]:
            self.order = torch.randperm(self.x.shape[0])
            self.cursor = 0
        idx = self.order[self.cursor : self.cursor + 128]
        self.cursor += 128
        return self.x.index_select(0, idx), self.y.index_select(0, idx)

    def steps(self, n):
        for _ in range(n):
            x, y = self.batch()
            h = x
            last = len(self.weights) - 1
            for l, (w, s) in enumerate(zip(self.weights, self.scores)):
                m = SignMask.apply(s) if self.mask == "gn" else TopKMask.apply(s, self.density)
                h = F.linear(h, w * m)
                if l < last:
                    h = F.relu(h)
            loss = F.cross_entropy(h, y)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()


def openblas_core():
    """The kernel set OpenBLAS picked for this CPU (or OPENBLAS_CORETYPE), e.g. Haswell (AVX2) or SkylakeX (AVX-512)."""
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        return lib.openblas_get_corename().decode()
    except (OSError, AttributeError):
        return "unknown (not OpenBLAS?)"


def main():
    tasks = {}
    for line in sys.stdin:
        msg = json.loads(line)
        if "setup" in msg:
            t = Task(msg["setup"], msg["outputs"], msg["mask"], msg.get("density", 0.5), msg["data"])
            tasks[msg["setup"]] = t
            reply = {"ready": msg["setup"], "torch": torch.__version__, "threads": torch.get_num_threads(),
                     "blas": openblas_core(), "foreach": t.foreach}
        else:
            t0, c0 = time.perf_counter(), time.process_time()
            tasks[msg["run"]].steps(msg["steps"])
            reply = {"ms": (time.perf_counter() - t0) * 1000, "cpuMs": (time.process_time() - c0) * 1000}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
