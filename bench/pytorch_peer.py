#!/usr/bin/python3
"""The PyTorch peer of bench/scale.ts: the same work in the strongest eager-PyTorch form, in one process.

    /usr/bin/python3 bench/pytorch_peer.py --k 2500 [--threads 2] [--outputs 500]

Model: LeNet 300-100 with s outputs, signed Kaiming constant weights, k random masks of density 0.5, held as
one k x P float32 matrix M (the form the matrix-vector inference needs; a given task reads its row).
  given-b1 / given-b128  a random task each call: W_l * M[t] per layer, then the matmuls and the softmax
  oneshot-b1             one-shot H: autograd through the cached superposition W * mean(M), then the k x P
                         matrix-vector product g = M @ (dH/dW_eff * W), argmin
Protocol (stdin/stdout, one JSON object per line): {"case": name, "runs": n} -> {"case": name, "ms": [..]};
{"quit": true} ends. A line {"ready": true, ...} is printed once the masks are built.
Needs Debian python3-torch and libopenblas0-pthread.
"""
import argparse
import json
import sys
import time

import torch


def build(k, outputs, seed):
    sizes = [784, 300, 100, outputs]
    g = torch.Generator().manual_seed(seed)
    shapes = list(zip(sizes[:-1], sizes[1:]))
    weights = []
    for n_in, n_out in shapes:
        c = (2.0 / n_in) ** 0.5
        sign = torch.randint(0, 2, (n_in, n_out), generator=g, dtype=torch.int8)
        weights.append((sign.float() * 2 - 1) * c)
    P = sum(a * b for a, b in shapes)
    masks = torch.empty(k, P, dtype=torch.float32)
    for r0 in range(0, k, 64):  # in chunks: no k x P temporary besides M itself
        r1 = min(k, r0 + 64)
        masks[r0:r1] = (torch.rand(r1 - r0, P, generator=g) < 0.5).float()
    return shapes, weights, masks


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--k", type=int, default=2500)
    ap.add_argument("--outputs", type=int, default=500)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_grad_enabled(False)
    shapes, weights, masks = build(args.k, args.outputs, args.seed)
    offsets = [0]
    for n_in, n_out in shapes:
        offsets.append(offsets[-1] + n_in * n_out)
    k = args.k
    g = torch.Generator().manual_seed(args.seed + 1)

    def task_layers(t):
        row = masks[t]
        return [w * row[offsets[l]:offsets[l + 1]].view_as(w) for l, w in enumerate(weights)]

    def forward(layers, x):
        h = x
        for l, w in enumerate(layers):
            h = h @ w
            if l + 1 < len(layers):
                h = torch.relu(h)
        return h

    def given(batch):
        x = torch.rand(batch, 784, generator=g)
        t = int(torch.randint(0, k, (1,), generator=g))
        def run():
            logits = forward(task_layers(t), x)
            return torch.softmax(logits[:, : args.classes], dim=1)
        return run

    mean = masks.mean(dim=0)
    superposed = [w * mean[offsets[l]:offsets[l + 1]].view_as(w) for l, w in enumerate(weights)]

    def oneshot():
        x = torch.rand(1, 784, generator=g)
        def run():
            with torch.enable_grad():
                eff = [w.clone().requires_grad_(True) for w in superposed]
                logits = forward(eff, x)
                logp = torch.log_softmax(logits, dim=1)
                entropy = -(logp.exp() * logp).sum()
                grads = torch.autograd.grad(entropy, eff)
            v = torch.cat([(gr * w).reshape(-1) for gr, w in zip(grads, weights)])
            scores = masks @ v  # k x P matrix-vector product: dH/dalpha_i
            return int(torch.argmin(scores))
        return run

    cases = {"given-b1": lambda: given(1), "given-b128": lambda: given(128), "oneshot-b1": oneshot}
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(), "k": k}), flush=True)
    for line in sys.stdin:
        cmd = json.loads(line)
        if cmd.get("quit"):
            break
        ms = []
        for _ in range(int(cmd["runs"])):
            run = cases[cmd["case"]]()  # a fresh random task / input each call, prepared outside the timing
            t0 = time.perf_counter()
            run()
            ms.append((time.perf_counter() - t0) * 1e3)
        print(json.dumps({"case": cmd["case"], "ms": ms}), flush=True)


if __name__ == "__main__":
    main()
