#!/usr/bin/env bash
# Long-run memory check (not in CI): one replica trains for MINUTES (default 15); every N steps, after a GC, the
# Java heap in use, JavaCPP's off-heap bytes and resident memory are sampled; the slopes after warm-up are
# printed in MB per 1,000 steps (flat: under 1 for heap and off-heap). Results: docs/RELIABILITY.md.
#   scripts/soak.sh                       # 15 minutes, baby preset
#   scripts/soak.sh 5 --preset small --sample-every 25 --warmup-fraction 0.3
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
MINUTES="${1:-15}"; [ $# -gt 0 ] && shift
exec "$ROOT/scripts/sparkformer" bench --soak --minutes "$MINUTES" "$@"
