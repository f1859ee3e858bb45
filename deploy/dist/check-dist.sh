#!/usr/bin/env bash
# Checks what `mvn -B -Pdist package` built (CI runs it): the application jar leaves Spark, Scala and Hadoop to the
# cluster, finds ND4J's CPU backend through its merged META-INF/services, carries both Log4j2 plugin sets in one
# merged cache (ours and the JSON layout's), relocates protobuf; the tarball holds the jar, conf/, scripts/, deploy/.
set -euo pipefail
DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/target
JAR="$DIR/sparkformer-dist.jar"
TAR=$(ls "$DIR"/sparkformer-*.tar.gz)
fail() { echo "check-dist: $*" >&2; exit 1; }
list=$(unzip -Z1 "$JAR")
grep -q '^org/apache/spark/SparkContext' <<<"$list" && fail "Spark's classes are in the jar (they must come from the cluster)"
grep -q '^scala/Predef' <<<"$list" && fail "Scala's library is in the jar"
grep -q '^org/apache/hadoop/fs/FileSystem.class' <<<"$list" && fail "Hadoop's classes are in the jar"
grep -q '^com/google/protobuf/' <<<"$list" && fail "protobuf is not relocated"
grep -q '^org/sparkformer/driver/Main.class' <<<"$list" || fail "no org.sparkformer.driver.Main"
grep -q '^org/nd4j/linalg/cpu/nativecpu/CpuBackend.class' <<<"$list" || fail "no ND4J CPU backend"
unzip -p "$JAR" META-INF/services/org.nd4j.linalg.factory.Nd4jBackend | grep -q 'org.nd4j.linalg.cpu.nativecpu.CpuBackend' \
  || fail "META-INF/services/org.nd4j.linalg.factory.Nd4jBackend does not name the CPU backend"
cache=$(unzip -p "$JAR" META-INF/org/apache/logging/log4j/core/config/plugins/Log4j2Plugins.dat | strings)
grep -q 'org.sparkformer.driver.RedactSecrets' <<<"$cache" || fail "Log4j2 plugin cache lacks RedactSecrets"
grep -q 'JsonTemplateLayout' <<<"$cache" || fail "Log4j2 plugin cache lacks JsonTemplateLayout"
unzip -p "$JAR" META-INF/MANIFEST.MF | grep -q 'Main-Class: org.sparkformer.driver.Main' || fail "no Main-Class"
files=$(tar tzf "$TAR")
for f in lib/sparkformer-dist.jar conf/log4j2.xml conf/log4j2-json.xml scripts/gpu-discovery.sh scripts/openblas-core.sh deploy/spark-submit.sh \
    deploy/standalone/start-cluster.sh deploy/kubernetes/sparkformer-train.yaml README.md; do
  grep -q "^sparkformer-[^/]*/$f\$" <<<"$files" || fail "tarball lacks $f"
done
echo "check-dist: $(basename "$JAR") ($(du -m "$JAR" | cut -f1) MB) and $(basename "$TAR") look right"
