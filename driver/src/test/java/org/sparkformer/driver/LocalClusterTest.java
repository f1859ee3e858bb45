package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Real executor JVMs: Spark's local-cluster mode (a standalone master and two workers in this JVM, each
 * executor a separate process started from the SPARK_HOME the build assembles in target/spark-home).
 */
class LocalClusterTest {
    @TempDir Path tmp;

    @Test void trainsOnTwoExecutorJvms() throws Exception {
        String home = System.getenv("SPARK_HOME");
        Assumptions.assumeTrue(home != null && Files.isDirectory(Path.of(home, "jars")), "no SPARK_HOME/jars (run through Maven)");
        SparkConf conf = Trainer.sparkConf("local-cluster[2,1,1536]")
                .set("spark.executor.memory", "1g")
                .set("spark.executor.extraClassPath", System.getProperty("java.class.path"))   // our classes, as the app jar would
                .set("spark.executorEnv.OMP_NUM_THREADS", "1")
                .set("spark.executor.extraJavaOptions", Trainer.JAVA17_FLAGS + " -Dlog4j2.configurationFile=" + System.getProperty("log4j2.configurationFile"));
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(2000, 8));
        Path run = tmp.resolve("run");
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            Trainer.Result r = new Trainer(SparkTrainingTest.tinyConfig(run, 30, data.toString()), null, false).run(sc);
            assertEquals(30, r.steps());
            assertTrue(r.finalValLoss() < 0.8 * r.firstValLoss(), r.firstValLoss() + " -> " + r.finalValLoss());
        }
        // the rounds ran on two executors other than the driver
        TreeSet<String> executors = new TreeSet<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = json.readTree(line);
            m.path(RunLog.EXECUTOR_STEP_MS).fieldNames().forEachRemaining(executors::add);
        }
        assertEquals(new TreeSet<>(List.of("0", "1")), executors);
    }
}
