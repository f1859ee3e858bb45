#!/usr/bin/env bash
# Runs a sparkformer command through spark-submit, with the JVM flags, memory and GPU settings it needs:
#   deploy/spark-submit.sh --master spark://host:7077 train --preset baby --data hdfs:///data/shk --out hdfs:///runs/a
#   deploy/spark-submit.sh --master yarn --deploy-mode cluster --gpu --conf spark.executor.instances=4 train ...
#   deploy/spark-submit.sh --master k8s://https://api:6443 --deploy-mode cluster --conf spark.kubernetes.container.image=IMG train ...
# Options before the command are spark-submit's (--master, --deploy-mode, --conf k=v, --executor-memory, ...), plus:
#   --gpu             one GPU per executor and per task, found by scripts/gpu-discovery.sh (GPU_DISCOVERY=path overrides)
#   --off-heap SIZE   ND4J's off-heap memory per executor (default: the executor heap); the driver turns it into
#                     spark.executor.memoryOverhead and JavaCPP's limits (ExecutorMemory)
#   --jar-on-classpath  the application jar on the driver's and executors' class path from their start (our Log4j2
#                     secret-masking plugin must be there when logging starts); its path must hold the jar on every
#                     node (standalone workers run from this install; the Kubernetes image has it)
# Spark: $SPARK_HOME/bin/spark-submit when SPARK_HOME is a Spark install (then the -Pdist application jar is used),
# else Spark's SparkSubmit class from the project's own jars (driver/target/spark-home, thin jar). APP_JAR overrides
# the jar (e.g. local:///opt/sparkformer/lib/sparkformer-dist.jar inside the Kubernetes image). SPARKFORMER_JAVA_OPTS:
# more options for the spark-submit JVM started from the own jars (as for scripts/sparkformer).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/jvm-flags.sh"
OWN_HOME="$ROOT/driver/target/spark-home"
export SPARK_HOME="${SPARK_HOME:-$OWN_HOME}" SPARK_SCALA_VERSION="${SPARK_SCALA_VERSION:-2.12}"

submit=() gpu=0 offheap="" jar_on_classpath=0
while [ $# -gt 0 ]; do
  case "$1" in
    --gpu) gpu=1; shift ;;
    --jar-on-classpath) jar_on_classpath=1; shift ;;
    --off-heap) offheap=$2; shift 2 ;;
    --off-heap=*) offheap=${1#--off-heap=}; shift ;;
    --verbose|--supervise) submit+=("$1"); shift ;;
    --*=*) submit+=("$1"); shift ;;
    --*) submit+=("$1" "$2"); shift 2 ;;
    *) break ;;
  esac
done
[ $# -gt 0 ] || { echo "spark-submit.sh: give a sparkformer command (train, prepare, eval, ...) after the spark-submit options" >&2; exit 2; }

if [ -x "$SPARK_HOME/bin/spark-submit" ]; then
  APP="${APP_JAR:-$ROOT/deploy/dist/target/sparkformer-dist.jar}"
  [[ "$APP" == local://* || -f "$APP" ]] || { echo "spark-submit.sh: no application jar; build it: (cd $ROOT && mvn -B -Pdist -DskipTests package)" >&2; exit 1; }
  SUBMIT=("$SPARK_HOME/bin/spark-submit")
else
  APP="${APP_JAR:-$ROOT/driver/target/sparkformer-driver.jar}"
  [[ "$APP" == local://* || -f "$APP" ]] && [ -d "$SPARK_HOME/jars" ] || { echo "spark-submit.sh: no $APP or $SPARK_HOME/jars; build: (cd $ROOT && mvn -B -DskipTests install)" >&2; exit 1; }
  # the application jar on this JVM's class path too: our Log4j2 plugin (RedactSecrets) must be there when logging starts
  SUBMIT=(java -Xmx"${SPARKFORMER_DRIVER_MEMORY:-4g}" "${JAVA17_OPENS[@]}" ${SPARKFORMER_JAVA_OPTS:-} -Dlog4j2.configurationFile="$ROOT/conf/log4j2.xml"
    -cp "${HADOOP_CONF_DIR:+$HADOOP_CONF_DIR:}${YARN_CONF_DIR:+$YARN_CONF_DIR:}$SPARK_HOME/conf:${APP#file:}:$SPARK_HOME/jars/*" org.apache.spark.deploy.SparkSubmit)
  # (like Spark's own launcher: the cluster's Hadoop/YARN configuration on the classpath)
fi

# SPARKFORMER_CLUSTER_JAVA_OPTS: more options for the driver and executor JVMs on the cluster (deploy/yarn/submit.sh
# and deploy/standalone/submit.sh give them our logging configuration this way)
opts="${JAVA17_OPENS[*]}${SPARKFORMER_CLUSTER_JAVA_OPTS:+ $SPARKFORMER_CLUSTER_JAVA_OPTS}"
conf=(--conf "spark.driver.extraJavaOptions=$opts" --conf "spark.executor.extraJavaOptions=$opts"
  --conf spark.serializer=org.apache.spark.serializer.KryoSerializer --conf spark.kryo.registrator=org.nd4j.kryo.Nd4jRegistrator
  --conf spark.executorEnv.OMP_WAIT_POLICY=PASSIVE --conf spark.executorEnv.OPENBLAS_THREAD_TIMEOUT=22)
[ -n "$offheap" ] && conf+=(--conf "spark.sparkformer.executor.offHeap=$offheap")
if [ "$jar_on_classpath" = 1 ]; then
  jar="${APP#local://}"; jar="${jar#file:}"
  conf+=(--conf "spark.driver.extraClassPath=$jar" --conf "spark.executor.extraClassPath=$jar")
fi
if [ "$gpu" = 1 ]; then
  discovery="${GPU_DISCOVERY:-$ROOT/scripts/gpu-discovery.sh}"
  conf+=(--conf spark.executor.resource.gpu.amount=1 --conf spark.task.resource.gpu.amount=1
    --conf "spark.executor.resource.gpu.discoveryScript=$discovery")
fi
# the user's --conf come last and win
exec "${SUBMIT[@]}" --class org.sparkformer.driver.Main "${conf[@]}" ${submit[@]+"${submit[@]}"} "$APP" "$@"
