"""PyTorch's given-task forward on the same GPU, for bench/gpu/cuda-bench.ts to compare against (issue 14).

The same network as the benchmark (LeNet 300-100, s = 500 outputs: 784-300-100-500, no biases, ReLU between
layers), weights ±c_l, k task masks kept on the device as bool tensors (1 byte per weight, PyTorch's smallest
mask type). Two variants per batch size, each timed host to host like ours (inputs from host memory, logits back
to host memory), median of --runs after warm-up:

  maskThenMatmulMs  per request: W_l ⊙ M_l[task] for each layer, then the matmuls (the issue's comparison)
  matmulOnlyMs      the masked weights precomputed (what a server caching dense per-task weights would do)

float32 throughout with TF32 off (PyTorch's default for float32 matmul), so both sides compute in float32.
Usage: python3 bench/gpu/torch_given_task.py --out torch.json [--k 2500] [--runs 200] [--device cuda|cpu]
"""
import argparse
import json
import statistics
import time

import torch

SIZES = [784, 300, 100, 500]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--k", type=int, default=2500)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--batches", default="1,1024")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()
    dev = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.manual_seed(1)
    gen = torch.Generator(device="cpu").manual_seed(1)

    weights, masks = [], []
    for n_in, n_out in zip(SIZES[:-1], SIZES[1:]):
        c = (2.0 / n_in) ** 0.5
        sign = torch.randint(0, 2, (n_in, n_out), generator=gen).float() * 2 - 1
        weights.append((sign * c).to(dev))
        masks.append(torch.rand((args.k, n_in, n_out), device=dev) < 0.5)
    task = args.k // 2
    dense = [w * m[task] for w, m in zip(weights, masks)]

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize()

    def forward(x_host: torch.Tensor, mask_now: bool) -> torch.Tensor:
        h = x_host.to(dev, non_blocking=False)
        last = len(weights) - 1
        for layer, (w, m) in enumerate(zip(weights, masks)):
            weff = w * m[task] if mask_now else dense[layer]
            h = h @ weff
            if layer < last:
                h = torch.relu(h)
        return h.cpu()

    def median_ms(fn, runs: int) -> float:
        for _ in range(5):
            fn()
        sync()
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            fn()
            sync()
            times.append((time.perf_counter() - t0) * 1e3)
        return statistics.median(times)

    rows = []
    with torch.inference_mode():
        for batch in [int(b) for b in args.batches.split(",")]:
            x = torch.rand((batch, SIZES[0]), generator=gen)
            rows.append({
                "batch": batch,
                "maskThenMatmulMs": median_ms(lambda: forward(x, True), args.runs),
                "matmulOnlyMs": median_ms(lambda: forward(x, False), args.runs),
            })
            print(json.dumps(rows[-1]), flush=True)
    report = {
        "torch": torch.__version__,
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "k": args.k,
        "maskBytes": sum(m.numel() for m in masks),
        "allowTf32": torch.backends.cuda.matmul.allow_tf32,
        "runs": args.runs,
        "timing": "median ms, host to host (x from host memory, logits to host memory)",
        "rows": rows,
    }
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
