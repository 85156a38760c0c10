#!/usr/bin/env bash
# The one prepared device check for the CUDA path (issue 14; docs/gpu.md). On the GPU machine, from the repo root:
#
#   here, first:   bench/gpu/pack-node.sh        (writes .device/: Node, runtime packages, the CPU addon, the commit)
#   device tool:   run(command="bash bench/gpu/run-on-device.sh", carry=[".device"], timeout_s=590)
#
# Steps, each with its own time limit so the whole stays under 10 minutes and a failing step still leaves its log:
#   1. unpack the carried Node and packages         4. PyTorch's W ⊙ M then matmul on the same GPU
#   2. build the CUDA addon with nvcc (sm_90)        5. the figures for k = 100, 1000, 2500, 25000
#   3. the CUDA tests (CUDA against CPU kernels)     6. a short table last (the device tool returns the tail)
# Results under $OUT (at most 8 files come back): log.txt, nvidia-smi.txt, build.txt, tests.txt, torch.json,
# cuda-bench.json. For a dry run elsewhere, SUPSUP_TORCH_ARGS / SUPSUP_BENCH_ARGS add arguments to steps 4 and 5
# (e.g. "--device cpu --k 20 --runs 5" and "--ks 100,25000 --cpu-runs 1").
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
OUT=${OUT:-/tmp/supsup-device-out}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
step() { echo "== $(date -u +%H:%M:%S) $*"; }
status=0
fail() { echo "!! $*"; status=1; }

step "1. unpack"
[ -f .device/node.tar.xz ] || { echo "!! .device/node.tar.xz missing: run bench/gpu/pack-node.sh here and carry .device"; exit 2; }
mkdir -p .device/node && tar -xJf .device/node.tar.xz -C .device/node || exit 2
export PATH="$PWD/.device/node/bin:$PATH"
tar -xJf .device/node_modules.tar.xz || exit 2
[ -f .device/cpu-addon.tar.xz ] && tar -xJf .device/cpu-addon.tar.xz
commit=$(cat .device/commit.txt 2>/dev/null || echo unknown)
echo "node $(node --version), commit $commit, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
node -e "require('./build/Release/supsup_kernels.node')" 2>/dev/null && echo "CPU addon loads" || echo "CPU addon does not load here: CPU columns use the TypeScript kernels"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm,clocks.mem,temperature.gpu,power.draw --format=csv \
  > "$OUT/nvidia-smi.txt" 2>&1; cat "$OUT/nvidia-smi.txt"

step "2. build the CUDA addon"
nvcc=$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)
{ NVCC=$nvcc NODE_API_INCLUDE="$PWD/.device/node/include/node" SUPSUP_CUDA_ARCHS=90 timeout 240 native/cuda/build.sh \
  && SUPSUP_CUDA_CHECK_ARCHS=90 timeout 120 native/cuda/build.sh --check && cat build/cuda/check/sm_90.ptxas.txt; } > "$OUT/build.txt" 2>&1 \
  || fail "CUDA build failed (build.txt)"
grep -E "supsup:|error" "$OUT/build.txt"
node -e "const a = require('./build/cuda/supsup_cuda.node'); console.log(JSON.stringify(a.deviceInfo()))" || fail "addon does not load"

step "3. CUDA tests"
SUPSUP_SKIP_NVCC=1 timeout 240 node --import tsx --test --test-concurrency=1 test/cuda.test.ts test/kernels.test.ts > "$OUT/tests.txt" 2>&1 \
  || fail "tests failed (tests.txt)"
grep -E "^# (tests|pass|fail|skipped)|^not ok|SKIP" "$OUT/tests.txt" | head -20

step "4. PyTorch: W ⊙ M then matmul"
PYTHONUNBUFFERED=1 timeout 150 python3 bench/gpu/torch_given_task.py --out "$OUT/torch.json" --k 2500 --runs 200 ${SUPSUP_TORCH_ARGS:-} \
  || fail "torch script failed"

step "5. figures"
torch_arg=()
[ -f "$OUT/torch.json" ] && torch_arg=(--torch "$OUT/torch.json")
timeout 300 node --import tsx bench/gpu/cuda-bench.ts --out "$OUT/cuda-bench.json" --commit "$commit" "${torch_arg[@]}" ${SUPSUP_BENCH_ARGS:-} \
  || fail "benchmark failed"

step "6. summary"
[ -f "$OUT/cuda-bench.json" ] && node -e '
const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
console.log(r.device || r.deviceReason);
const f = (x, d = 3) => (x === undefined || x === null ? "-" : Number(x).toFixed(d));
console.log("k      bankMB  floor_ms  oneshot_ms  (kernels)  /floor  cpu_oneshot_ms  cpu/gpu  given1_ms  given1024_ms  torch1/ours  torch1024/ours");
for (const row of r.rows) {
  const g = row.gpu || {}, c = row.cpu || {}, t = row.torchOverOurs || {};
  console.log([String(row.k).padEnd(6), f(row.bankBytes / 1e6, 1).padStart(7), f(g.floorMs, 4).padStart(9), f(g.oneShotMs, 4).padStart(11),
    f(g.oneShotDeviceMs, 4).padStart(10), f(g.oneShotOverFloor, 1).padStart(7), f(c.oneShotMs, 2).padStart(15), f(row.cpuOverGpuOneShot, 0).padStart(8),
    f(g.given && g.given.batch1Ms, 4).padStart(10), f(g.given && g.given.batch1024Ms, 4).padStart(13),
    f(t.batch1 && t.batch1.maskThenMatmul, 2).padStart(12), f(t.batch1024 && t.batch1024.maskThenMatmul, 2).padStart(15)].join(" "));
}' "$OUT/cuda-bench.json"
step "done, status $status"
exit $status
