#!/usr/bin/env bash
# Starts a Spark standalone master and N workers on this machine from the project's own jars (no Spark install):
#   deploy/standalone/start-cluster.sh [--workers 2] [--cores 1] [--memory 3g] [--port 7077] [--dir /tmp/sparkformer-cluster]
#   deploy/standalone/submit.sh train --preset baby ...      # a job on it (or: scripts/sparkformer train --master spark://...)
#   deploy/standalone/stop-cluster.sh
# GPUs: --gpus SCRIPT gives each worker the devices the discovery script reports (scripts/gpu-discovery.sh).
# Prints the master URL. Logs, pids and executor work folders live under --dir. SPARKFORMER_JAVA_OPTS: more options
# for the master and worker JVMs.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WORKERS=2 CORES=1 MEMORY=3g PORT=7077 HOST=127.0.0.1 GPUS="" DIR="${SPARKFORMER_CLUSTER_DIR:-/tmp/sparkformer-cluster}"
while [ $# -gt 0 ]; do
  case "$1" in
    --workers) WORKERS=$2; shift 2 ;;
    --cores) CORES=$2; shift 2 ;;
    --memory) MEMORY=$2; shift 2 ;;
    --port) PORT=$2; shift 2 ;;
    --host) HOST=$2; shift 2 ;;
    --gpus) GPUS=$2; shift 2 ;;
    --dir) DIR=$2; shift 2 ;;
    *) echo "start-cluster.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
export SPARK_HOME="${SPARK_HOME:-$ROOT/driver/target/spark-home}" SPARK_SCALA_VERSION=2.12
if [ ! -d "$SPARK_HOME/jars" ]; then
  echo "start-cluster.sh: no $SPARK_HOME/jars; build first: (cd $ROOT && mvn -B -DskipTests install)" >&2; exit 1
fi
. "$ROOT/scripts/jvm-flags.sh"
. "$ROOT/scripts/openblas-core.sh"    # the workers' executors inherit it
mkdir -p "$DIR"
if [ -f "$DIR/master.pid" ] && kill -0 "$(cat "$DIR/master.pid")" 2>/dev/null; then
  echo "start-cluster.sh: a cluster already runs from $DIR (stop it with deploy/standalone/stop-cluster.sh --dir $DIR)" >&2; exit 1
fi
start() {  # name, main class, args...
  local name=$1; shift
  nohup java -Xmx512m "${JAVA17_OPENS[@]}" ${SPARKFORMER_JAVA_OPTS:-} -cp "$SPARK_HOME/conf:$SPARK_HOME/jars/*" "$@" > "$DIR/$name.log" 2>&1 &
  echo $! > "$DIR/$name.pid"
}
start master org.apache.spark.deploy.master.Master --host "$HOST" --port "$PORT" --webui-port 0
MASTER="spark://$HOST:$PORT"
for _ in $(seq 1 100); do grep -q "I have been elected leader" "$DIR/master.log" 2>/dev/null && break; sleep 0.2; done
grep -q "I have been elected leader" "$DIR/master.log" || { echo "start-cluster.sh: the master did not start, see $DIR/master.log" >&2; exit 1; }
for i in $(seq 1 "$WORKERS"); do
  mkdir -p "$DIR/work-$i"
  gpu=()
  [ -n "$GPUS" ] && gpu=(-Dspark.worker.resource.gpu.amount=1 "-Dspark.worker.resource.gpu.discoveryScript=$GPUS")
  start "worker-$i" ${gpu[@]+"${gpu[@]}"} org.apache.spark.deploy.worker.Worker --host "$HOST" --webui-port 0 \
    --cores "$CORES" --memory "$MEMORY" --work-dir "$DIR/work-$i" "$MASTER"
done
for _ in $(seq 1 150); do
  [ "$(cat "$DIR"/worker-*.log 2>/dev/null | grep -c "Successfully registered with master")" -ge "$WORKERS" ] && break; sleep 0.2
done
n=$(cat "$DIR"/worker-*.log | grep -c "Successfully registered with master" || true)
[ "$n" -ge "$WORKERS" ] || { echo "start-cluster.sh: $n of $WORKERS workers registered, see $DIR/worker-*.log" >&2; exit 1; }
echo "$MASTER" > "$DIR/master.url"
echo "$MASTER"
