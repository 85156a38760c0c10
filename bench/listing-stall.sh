#!/usr/bin/env bash
# What a full task listing does to other requests (stop 23, docs/benchmarks.md): `supsup serve` on a model, wrk
# sending given-task batch-1 requests (random tasks, one connection) for 6 s while 20 full `GET /tasks` run one after
# another; prints wrk's latency percentiles and the server's RSS after. Needs Debian `wrk` and curl.
#
#   bash bench/listing-stall.sh [MODEL_DIR (default .bench/tasks-k2500, made by bench/tasks-scale.ts)] [ROOT (a checkout)]
set -euo pipefail
model=$(realpath "${1:-.bench/tasks-k2500}")
root=$(realpath "${2:-.}")
work=$(mktemp -d)
trap 'kill $pid 2>/dev/null || true; rm -rf "$work"' EXIT
node -e '
  const { readFileSync, writeFileSync } = require("node:fs");
  const manifest = JSON.parse(readFileSync(process.argv[1] + "/manifest.json", "utf8"));
  const ids = manifest.tasks.map((t) => t.id), inputs = manifest.architecture.inputSize;
  const bodies = Array.from({ length: 256 }, () => {
    const x = Float32Array.from({ length: inputs }, Math.random);
    return JSON.stringify({ inputsBase64: Buffer.from(x.buffer).toString("base64"), dtype: "float32", shape: [1, inputs], task: ids[Math.floor(Math.random() * ids.length)] });
  });
  writeFileSync(process.argv[2], ["bodies = {", ...bodies.map((b) => "[[" + b + "]],"), "}", "i = 0", "wrk.method = \"POST\"",
    "wrk.headers[\"Content-Type\"] = \"application/json\"", "request = function() i = i % #bodies + 1; return wrk.format(nil, \"/classify\", nil, bodies[i]) end"].join("\n"));
' "$model" "$work/given.lua"
port=$((20000 + RANDOM % 20000))
SUPSUP_ADMIN_TOKEN= node "$root/bin/supsup.js" serve --model "$model" --host 127.0.0.1 --http-port $port --grpc-port $((port + 1)) --log-level warn &
pid=$!
until curl -sf "localhost:$port/readyz" >/dev/null; do sleep 0.1; done
curl -s -o /dev/null "localhost:$port/tasks"
(for i in $(seq 1 20); do curl -s -o /dev/null "localhost:$port/tasks"; sleep 0.2; done) &
wrk -t1 -c1 -d6s --latency -s "$work/given.lua" "http://127.0.0.1:$port/classify" | grep -E "Latency  |  50%|  99%|Requests/sec"
wait %2
echo "server RSS after: $(($(ps -o rss= -p $pid) / 1024)) MiB"
