#!/usr/bin/env bash
# Stops what start-cluster.sh started (master, workers, and their executors).
#   deploy/standalone/stop-cluster.sh [--dir /tmp/sparkformer-cluster]
set -uo pipefail
DIR="${SPARKFORMER_CLUSTER_DIR:-/tmp/sparkformer-cluster}"
[ "${1:-}" = --dir ] && DIR=$2
for f in "$DIR"/worker-*.pid "$DIR"/master.pid; do
  [ -f "$f" ] || continue
  pid=$(cat "$f")
  pkill -TERM -P "$pid" 2>/dev/null   # executors the worker started
  kill "$pid" 2>/dev/null
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null
  rm -f "$f"
done
rm -f "$DIR/master.url"
echo "stopped the cluster in $DIR"
