#!/usr/bin/env bash
# Spark resource discovery for NVIDIA GPUs: prints {"name":"gpu","addresses":["0","1",...]} (Spark's JSON format).
# Point spark.executor.resource.gpu.discoveryScript (and spark.worker.resource.gpu.discoveryScript on a standalone
# worker) at this file; Spark then gives each task the ids in spark.task.resource.gpu.amount and sparkformer binds
# that task's ND4J replica to its GPU. No nvidia-smi (a CPU machine): an empty list.
set -euo pipefail
ids=""
if command -v nvidia-smi >/dev/null 2>&1; then
  ids=$(nvidia-smi --query-gpu=index --format=csv,noheader 2>/dev/null | tr -d ' ' | grep -E '^[0-9]+$' || true)
fi
printf '{"name":"gpu","addresses":['
sep=""
for id in $ids; do printf '%s"%s"' "$sep" "$id"; sep=","; done
printf ']}\n'
