package org.sparkformer.driver;

import org.apache.spark.SparkConf;
import org.apache.spark.network.util.JavaUtils;

/**
 * Executor memory for ND4J. A replica's arrays live off the Java heap, in memory JavaCPP allocates; Spark's
 * container limit (YARN, Kubernetes) counts them only through {@code spark.executor.memoryOverhead}, so with
 * Spark's default overhead (10% of the heap, at least 384 MB) executors are killed from outside, without a
 * Java error. JavaCPP's own limits: {@code org.bytedeco.javacpp.maxbytes} caps its allocations (default: the
 * heap size, -Xmx) and {@code maxphysicalbytes} the whole process's resident memory (default: maxbytes + -Xmx);
 * past either it runs the GC, then throws OutOfMemoryError naming the limit.
 *
 * <p>Here: off-heap = {@code spark.sparkformer.executor.offHeap} (default: the heap size); the overhead Spark adds to
 * each container = off-heap + Spark's own 10% / 384 MB; maxbytes = off-heap; maxphysicalbytes = heap + overhead,
 * the container's size, so JavaCPP fails with a clear error before the cluster manager kills the executor.
 * Settings the user gave are kept.
 */
final class ExecutorMemory {
    static final String OFF_HEAP = "spark.sparkformer.executor.offHeap";   // spark.* so that spark-submit passes it on

    private ExecutorMemory() {}

    static SparkConf apply(SparkConf conf) {
        long heapMb = JavaUtils.byteStringAsMb(conf.get("spark.executor.memory", "1g"));
        long offHeapMb = JavaUtils.byteStringAsMb(conf.get(OFF_HEAP, heapMb + "m"));
        long sparkOwnMb = Math.max(384, heapMb / 10);
        if (!conf.contains("spark.executor.memoryOverhead")) conf.set("spark.executor.memoryOverhead", (offHeapMb + sparkOwnMb) + "m");
        long overheadMb = JavaUtils.byteStringAsMb(conf.get("spark.executor.memoryOverhead"));
        String opts = conf.get("spark.executor.extraJavaOptions", "");
        if (!opts.contains("org.bytedeco.javacpp.maxbytes"))
            opts += " -Dorg.bytedeco.javacpp.maxbytes=" + offHeapMb + "m";
        if (!opts.contains("org.bytedeco.javacpp.maxphysicalbytes"))
            opts += " -Dorg.bytedeco.javacpp.maxphysicalbytes=" + (heapMb + overheadMb) + "m";
        conf.set("spark.executor.extraJavaOptions", opts.trim());
        return conf;
    }
}
