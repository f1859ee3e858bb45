#!/usr/bin/env bash
# Submits a sparkformer command to the cluster start-cluster.sh started, through spark-submit (deploy/spark-submit.sh):
#   deploy/standalone/submit.sh train --preset baby --data /path/tinyshakespeare.txt --steps 200 --out /tmp/run
# Every flag after the command is the command's; Spark settings: SPARK_CONF="--conf k=v ..." in the environment.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR="${SPARKFORMER_CLUSTER_DIR:-/tmp/sparkformer-cluster}"
[ -f "$DIR/master.url" ] || { echo "submit.sh: no cluster running from $DIR (start it with deploy/standalone/start-cluster.sh)" >&2; exit 1; }
# The workers run from this install (start-cluster.sh): executors log through our configuration, with the jar that
# holds its secret-masking plugin on their class path from the start.
export SPARKFORMER_CLUSTER_JAVA_OPTS="-Dlog4j2.configurationFile=${SPARKFORMER_LOG_CONF:-$ROOT/conf/log4j2.xml}${SPARKFORMER_CLUSTER_JAVA_OPTS:+ $SPARKFORMER_CLUSTER_JAVA_OPTS}"
exec "$ROOT/deploy/spark-submit.sh" --master "$(cat "$DIR/master.url")" --jar-on-classpath ${SPARK_CONF:-} "$@"
