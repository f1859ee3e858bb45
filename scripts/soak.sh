#!/usr/bin/env bash
# Long-run memory check (not in CI): one replica trains for MINUTES (default 15); every N steps, after a GC, the
# Java heap in use, JavaCPP's off-heap bytes and resident memory are sampled; the slopes after warm-up are
# printed in MB per 1,000 steps (flat: under 1 for heap and off-heap). Results: docs/RELIABILITY.md.
#   scripts/soak.sh                       # 15 minutes, baby preset
#   scripts/soak.sh 5 --preset small --sample-every 25 --warmup-fraction 0.3
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINUTES="${1:-15}"; [ $# -gt 0 ] && shift
# A fixed, pre-touched heap: its committed size never changes and all of it is resident, so "anonymous resident less
# heap" is the native memory alone (with a heap that grows and shrinks, committed-but-untouched pages blur it).
export SPARKFORMER_DRIVER_MEMORY="${SPARKFORMER_DRIVER_MEMORY:-1g}"
export SPARKFORMER_JAVA_OPTS="-Xms$SPARKFORMER_DRIVER_MEMORY -XX:+AlwaysPreTouch ${SPARKFORMER_JAVA_OPTS:-}"
exec "$ROOT/scripts/sparkformer" bench --soak --minutes "$MINUTES" "$@"
