#!/usr/bin/env bash
# Spark on Kubernetes, cluster mode, without the operator: the driver and executors run in pods of the image
# deploy/kubernetes/Dockerfile builds; data and runs on a Hadoop file system (s3a, hdfs) every pod reaches.
#   K8S_API=https://api.example:6443 IMAGE=registry/sparkformer:0.1.0 deploy/kubernetes/submit-k8s.sh \
#     train --preset small --data s3a://bucket/shk-gpt2 --out s3a://bucket/runs/small --steps 2000
# GPU=1 requests one nvidia.com/gpu per executor, found by the image's scripts/gpu-discovery.sh.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
: "${K8S_API:?set K8S_API to the Kubernetes API server URL}" "${IMAGE:?set IMAGE to the sparkformer image}"
gpu=()
[ "${GPU:-0}" = 1 ] && gpu=(--conf spark.executor.resource.gpu.amount=1 --conf spark.task.resource.gpu.amount=1
  --conf spark.executor.resource.gpu.vendor=nvidia.com
  --conf spark.executor.resource.gpu.discoveryScript=/opt/sparkformer/scripts/gpu-discovery.sh)
# our logging (JSON lines, secrets masked) in the driver and executor pods: the configuration, and the jar that holds
# its masking plugin on their class path from the start
export SPARKFORMER_CLUSTER_JAVA_OPTS="-Dlog4j2.configurationFile=/opt/sparkformer/conf/log4j2-json.xml${SPARKFORMER_CLUSTER_JAVA_OPTS:+ $SPARKFORMER_CLUSTER_JAVA_OPTS}"
APP_JAR=local:///opt/sparkformer/lib/sparkformer-dist.jar exec "$ROOT/deploy/spark-submit.sh" \
  --master "k8s://$K8S_API" --deploy-mode cluster --name sparkformer \
  --conf spark.kubernetes.container.image="$IMAGE" \
  --jar-on-classpath \
  --conf spark.kubernetes.namespace="${NAMESPACE:-default}" \
  --conf spark.kubernetes.authenticate.driver.serviceAccountName="${SERVICE_ACCOUNT:-spark}" \
  --conf spark.executor.instances="${EXECUTORS:-2}" --conf spark.executor.cores=1 --conf spark.executor.memory="${EXECUTOR_MEMORY:-8g}" \
  ${gpu[@]+"${gpu[@]}"} "$@"
