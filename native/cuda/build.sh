#!/usr/bin/env bash
# Builds the CUDA mask kernels (native/cuda/*) into build/cuda/supsup_cuda.node. Separate from the CPU addon on
# purpose: `npm ci` never runs this, so machines without nvcc build and behave exactly as before.
#
#   native/cuda/build.sh            the addon, machine code for $SUPSUP_CUDA_ARCHS (default "80 90") plus PTX of
#                                   the newest, which the driver compiles for later GPUs
#   native/cuda/build.sh --check    compile only, once per target in $SUPSUP_CUDA_CHECK_ARCHS (default "90 75":
#                                   Hopper and the oldest target CUDA 13 keeps), with the register/spill report
#                                   in build/cuda/check/sm_<arch>.ptxas.txt
#
# nvcc: $NVCC, else on PATH, else /usr/local/cuda/bin/nvcc. Node's headers (node_api.h): $NODE_API_INCLUDE, else
# <node prefix>/include/node, /usr/include/node, or node-gyp's cache. The CUDA runtime is linked statically, so
# the addon needs only the driver (libcuda) where it runs; without one it loads and reports why it cannot run.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

nvcc=${NVCC:-$(command -v nvcc || true)}
[ -n "$nvcc" ] || nvcc=/usr/local/cuda/bin/nvcc
if [ ! -x "$nvcc" ]; then
  echo "supsup: nvcc not found (set NVCC or put CUDA's bin on PATH); the CUDA kernels are not built" >&2
  exit 2
fi

common=(-std=c++17 -O3 --threads 0 -Xcompiler -fPIC,-O3 -DNAPI_DISABLE_CPP_EXCEPTIONS -DNODE_ADDON_API_DISABLE_DEPRECATED)

if [ "${1:-}" = "--check" ]; then
  mkdir -p build/cuda/check
  for arch in ${SUPSUP_CUDA_CHECK_ARCHS:-90 75}; do
    "$nvcc" "${common[@]}" -c -gencode "arch=compute_${arch},code=sm_${arch}" -Xptxas -v \
      -o "build/cuda/check/supsup_cuda.sm_${arch}.o" native/cuda/supsup_cuda.cu \
      2> "build/cuda/check/sm_${arch}.ptxas.txt" || { cat "build/cuda/check/sm_${arch}.ptxas.txt" >&2; exit 1; }
    if grep -q "bytes spill" "build/cuda/check/sm_${arch}.ptxas.txt" && grep "bytes spill" "build/cuda/check/sm_${arch}.ptxas.txt" | grep -vq " 0 bytes spill stores, 0 bytes spill loads"; then
      echo "supsup: sm_${arch}: register spills (see build/cuda/check/sm_${arch}.ptxas.txt)" >&2
    fi
    echo "supsup: native/cuda/supsup_cuda.cu compiles for sm_${arch}"
  done
  exit 0
fi

node_include=${NODE_API_INCLUDE:-}
if [ -z "$node_include" ]; then
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  version=$(node -p 'process.versions.node')
  for dir in "$prefix/include/node" /usr/include/node "$HOME/.cache/node-gyp/$version/include/node"; do
    if [ -f "$dir/node_api.h" ]; then node_include=$dir; break; fi
  done
fi
[ -n "$node_include" ] && [ -f "$node_include/node_api.h" ] || { echo "supsup: node_api.h not found (set NODE_API_INCLUDE)" >&2; exit 2; }
addon_include=$(node -p "require('node-addon-api').include_dir")

gencode=()
archs=(${SUPSUP_CUDA_ARCHS:-80 90})
for arch in "${archs[@]}"; do gencode+=(-gencode "arch=compute_${arch},code=sm_${arch}"); done
newest=${archs[${#archs[@]}-1]}
gencode+=(-gencode "arch=compute_${newest},code=compute_${newest}")

mkdir -p build/cuda
"$nvcc" "${common[@]}" "${gencode[@]}" -shared -I"$node_include" -I"$addon_include" \
  -o build/cuda/supsup_cuda.node native/cuda/supsup_cuda.cu native/cuda/supsup_cuda_addon.cc
echo "supsup: built build/cuda/supsup_cuda.node (sm_${archs[*]}, PTX compute_${newest}) with $("$nvcc" --version | tail -1)"
