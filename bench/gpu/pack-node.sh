#!/usr/bin/env bash
# Packs what the device machine lacks into .device/ (ignored), for the device tool's `carry`: the GPU machines have
# CUDA, nvcc and PyTorch but no Node. The device tool carries at most 64 MiB with the working tree, so:
#
#   .device/node.tar.xz          this machine's node binary and the Node-API headers (to build the CUDA addon there)
#   .device/node_modules.tar.xz  the runtime packages the tests and the benchmark import, with their dependencies
#                                (no source maps, type declarations or browser bundles)
#   .device/cpu-addon.tar.xz     build/Release/supsup_kernels.node, the CPU kernels, for the CPU columns
#   .device/commit.txt           the commit this was packed from (+dirty when the tree had uncommitted changes)
#
# Then: bench/gpu/run-on-device.sh there (docs/gpu.md says how to call it).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=.device
mkdir -p "$out"
rm -f "$out/node_modules.tar.xz" "$out/cpu-addon.tar.xz" "$out/commit.txt"

# Node: about 24 MB compressed and minutes of xz on a busy machine, so kept while the binary is the same.
node_bin=$(readlink -f "$(command -v node)")
stamp="$(node --version) $(stat -c %s "$node_bin")"
if [ ! -f "$out/node.tar.xz" ] || [ "$(cat "$out/node.stamp" 2>/dev/null)" != "$stamp" ]; then
  rm -rf "$out/stage" && mkdir -p "$out/stage/bin" "$out/stage/include/node"
  cp "$node_bin" "$out/stage/bin/node"
  node_include=${NODE_API_INCLUDE:-$(dirname "$(dirname "$node_bin")")/include/node}
  [ -f "$node_include/node_api.h" ] || node_include=/usr/include/node
  for h in node_api.h node_api_types.h js_native_api.h js_native_api_types.h; do cp "$node_include/$h" "$out/stage/include/node/"; done
  XZ_OPT="-6 -T2" tar -C "$out/stage" -cJf "$out/node.tar.xz.part" bin include
  mv "$out/node.tar.xz.part" "$out/node.tar.xz" && echo "$stamp" > "$out/node.stamp"
  rm -rf "$out/stage"
fi

# Runtime packages: the dependency closure of what the tests and the benchmark import, nothing else.
packages=$(node -e '
  const fs = require("fs"), path = require("path"), seen = new Set();
  const visit = (name) => {
    const p = path.join("node_modules", name, "package.json");
    if (seen.has(name) || !fs.existsSync(p)) return;
    seen.add(name);
    const j = JSON.parse(fs.readFileSync(p, "utf8"));
    for (const d of Object.keys({ ...j.dependencies, ...j.optionalDependencies })) visit(d);
  };
  ["@tensorflow/tfjs-core", "@tensorflow/tfjs-backend-cpu", "@tensorflow/tfjs-backend-wasm", "tsx", "node-addon-api"].forEach(visit);
  console.log([...seen].map((n) => "node_modules/" + n).join("\n"));')
XZ_OPT="-6 -T2" tar -cJf "$out/node_modules.tar.xz" \
  --exclude='*.map' --exclude='*.d.ts' --exclude='*.md' \
  --exclude='node_modules/@tensorflow/*/dist/*.es2017*' --exclude='node_modules/@tensorflow/*/dist/*.fesm*' \
  --exclude='node_modules/@tensorflow/*/dist/*.min.js' --exclude='node_modules/@tensorflow/*/dist/miniprogram' \
  $packages

if [ -f build/Release/supsup_kernels.node ]; then
  tar -cJf "$out/cpu-addon.tar.xz" build/Release/supsup_kernels.node
fi
echo "$(git rev-parse HEAD)$(git diff --quiet HEAD -- . ':!.device' || echo +dirty)" > "$out/commit.txt"
du -b "$out"/* | awk '{ total += $1; printf "%8.1f MiB  %s\n", $1 / 1048576, $2 } END { printf "%8.1f MiB  in all (the tree adds its own; the limit is 64 MiB)\n", total / 1048576 }'
