package org.sparkformer.driver;

import org.apache.spark.SparkConf;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class ExecutorMemoryTest {
    @Test void overheadCoversOffHeapAndJavaCppLimitsMatchTheContainer() {
        SparkConf c = ExecutorMemory.apply(new SparkConf(false).set("spark.executor.memory", "4g").set("spark.executor.extraJavaOptions", "-Dx=1"));
        // off-heap defaults to the heap (JavaCPP's default maxbytes); Spark's own share is max(384 MB, 10%)
        assertEquals("4505m", c.get("spark.executor.memoryOverhead"));
        String opts = c.get("spark.executor.extraJavaOptions");
        assertTrue(opts.startsWith("-Dx=1 "), opts);
        assertTrue(opts.contains("-Dorg.bytedeco.javacpp.maxbytes=4096m"), opts);
        assertTrue(opts.contains("-Dorg.bytedeco.javacpp.maxphysicalbytes=8601m"), opts);
    }

    @Test void explicitSettingsAreKept() {
        SparkConf c = ExecutorMemory.apply(new SparkConf(false).set("spark.executor.memory", "2g").set(ExecutorMemory.OFF_HEAP, "6g")
                .set("spark.executor.memoryOverhead", "7g").set("spark.executor.extraJavaOptions", "-Dorg.bytedeco.javacpp.maxbytes=5g"));
        assertEquals("7g", c.get("spark.executor.memoryOverhead"));
        String opts = c.get("spark.executor.extraJavaOptions");
        assertTrue(opts.contains("maxbytes=5g") && !opts.contains("maxbytes=6144m"), opts);
        assertTrue(opts.contains("maxphysicalbytes=9216m"), opts);   // heap 2 GB + the user's 7 GB overhead
    }

    @Test void smallExecutorsGetSparksMinimum() {
        SparkConf c = ExecutorMemory.apply(new SparkConf(false).set("spark.executor.memory", "1g").set(ExecutorMemory.OFF_HEAP, "512m"));
        assertEquals("896m", c.get("spark.executor.memoryOverhead"));
    }
}
