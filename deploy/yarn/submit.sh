#!/usr/bin/env bash
# Submits a sparkformer command to YARN in cluster mode with deploy/yarn/spark-defaults.conf; needs HADOOP_CONF_DIR.
#   HADOOP_CONF_DIR=/etc/hadoop/conf deploy/yarn/submit.sh --conf spark.executor.instances=4 \
#       train --preset small --data hdfs:///data/shk --out hdfs:///runs/small --steps 2000
# Options before the command are deploy/spark-submit.sh's (spark-submit's, plus --gpu and --off-heap).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${HADOOP_CONF_DIR:-${YARN_CONF_DIR:-}}" ] || { echo "deploy/yarn/submit.sh: set HADOOP_CONF_DIR to the folder with yarn-site.xml and core-site.xml" >&2; exit 2; }
exec "$HERE/../spark-submit.sh" --properties-file "${SPARKFORMER_YARN_DEFAULTS:-$HERE/spark-defaults.conf}" "$@"
