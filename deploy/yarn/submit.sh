#!/usr/bin/env bash
# Submits a sparkformer command to YARN in cluster mode with deploy/yarn/spark-defaults.conf; needs HADOOP_CONF_DIR.
#   HADOOP_CONF_DIR=/etc/hadoop/conf deploy/yarn/submit.sh --conf spark.executor.instances=4 \
#       train --preset small --data hdfs:///data/shk --out hdfs:///runs/small --steps 2000
# Options before the command are deploy/spark-submit.sh's (spark-submit's, plus --gpu and --off-heap).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -n "${HADOOP_CONF_DIR:-${YARN_CONF_DIR:-}}" ] || { echo "deploy/yarn/submit.sh: set HADOOP_CONF_DIR to the folder with yarn-site.xml and core-site.xml" >&2; exit 2; }
# Our logging (the format, and the masking of secrets in every line) in the application master and the executors: the
# configuration shipped to each container (--files: localized in its working folder) and the application jar, which
# holds the masking plugin, on the containers' class path from the start (YARN localizes it as __app__.jar). A
# --files of your own replaces this one: list conf/log4j2.xml in it too.
LOG_CONF="${SPARKFORMER_LOG_CONF:-$HERE/../../conf/log4j2.xml}"
export SPARKFORMER_CLUSTER_JAVA_OPTS="-Dlog4j2.configurationFile=$(basename "$LOG_CONF")${SPARKFORMER_CLUSTER_JAVA_OPTS:+ $SPARKFORMER_CLUSTER_JAVA_OPTS}"
exec "$HERE/../spark-submit.sh" --properties-file "${SPARKFORMER_YARN_DEFAULTS:-$HERE/spark-defaults.conf}" \
  --files "$LOG_CONF" --conf spark.driver.extraClassPath=__app__.jar --conf spark.executor.extraClassPath=__app__.jar "$@"
