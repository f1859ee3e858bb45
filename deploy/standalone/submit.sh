#!/usr/bin/env bash
# Submits a sparkformer command to the cluster start-cluster.sh started, through spark-submit (deploy/spark-submit.sh):
#   deploy/standalone/submit.sh train --preset baby --data /path/tinyshakespeare.txt --steps 200 --out /tmp/run
# Every flag after the command is the command's; Spark settings: SPARK_CONF="--conf k=v ..." in the environment.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="${SPARKFORMER_CLUSTER_DIR:-/tmp/sparkformer-cluster}"
[ -f "$DIR/master.url" ] || { echo "submit.sh: no cluster running from $DIR (start it with deploy/standalone/start-cluster.sh)" >&2; exit 1; }
exec "$ROOT/deploy/spark-submit.sh" --master "$(cat "$DIR/master.url")" ${SPARK_CONF:-} "$@"
