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

    /** No executor JVM outlives the test class (a sharing executor can hang in its exit; see LeftoverExecutors). */
    @org.junit.jupiter.api.AfterAll static void noLeftoverExecutors() {
        LeftoverExecutors.stop();
        assertTrue(ProcessHandle.current().descendants().noneMatch(p -> LeftoverExecutors.commandLine(p).contains("CoarseGrainedExecutorBackend")),
                "an executor JVM outlived its SparkContext");
    }

    static SparkConf cluster() {
        String home = System.getenv("SPARK_HOME");
        Assumptions.assumeTrue(home != null && Files.isDirectory(Path.of(home, "jars")), "no SPARK_HOME/jars (run through Maven)");
        return Trainer.sparkConf("local-cluster[2,1,1536]")
                .set("spark.executor.memory", "1g")
                .set("spark.executor.extraClassPath", System.getProperty("java.class.path"))   // our classes, as the app jar would
                .set("spark.executorEnv.OMP_NUM_THREADS", "1")
                .set("spark.executor.extraJavaOptions", Trainer.JAVA17_FLAGS + " -Dlog4j2.configurationFile=" + System.getProperty("log4j2.configurationFile"));
    }

    @Test void trainsOnTwoExecutorJvms() throws Exception {
        SparkConf conf = cluster();
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

    /** A process's full command line (ProcessHandle truncates long ones): /proc/PID/cmdline, NULs as spaces. */
    static String commandLine(ProcessHandle p) { return LeftoverExecutors.commandLine(p); }

    /** kill -9 of one executor JVM mid-training: Spark re-runs its tasks, the run finishes, the failure is reported. */
    @Test void survivesALostExecutor() throws Exception {
        SparkConf conf = cluster();
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(2000, 8));
        Path run = tmp.resolve("run-kill");
        TrainConfig c = SparkTrainingTest.tinyConfig(run, 80, data.toString());
        c.evalInterval = 20;
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            java.util.concurrent.Future<Trainer.Result> training = java.util.concurrent.Executors.newSingleThreadExecutor()
                    .submit(() -> new Trainer(c, null, false).run(sc));
            long deadline = System.currentTimeMillis() + 120_000;
            while (!training.isDone() && System.currentTimeMillis() < deadline
                    && !(Files.exists(run.resolve("metrics.jsonl")) && Files.readAllLines(run.resolve("metrics.jsonl")).size() >= 4))
                Thread.sleep(200);
            ProcessHandle executor = ProcessHandle.current().descendants()
                    .filter(p -> commandLine(p).contains("CoarseGrainedExecutorBackend") && commandLine(p).contains("--executor-id 1 "))
                    .findFirst().orElseThrow(() -> new AssertionError("no executor JVM 1 among "
                            + ProcessHandle.current().descendants().map(LocalClusterTest::commandLine).map(l -> l.substring(Math.max(0, l.length() - 300))).toList()));
            assertTrue(executor.destroyForcibly());
            Trainer.Result r = training.get(240, java.util.concurrent.TimeUnit.SECONDS);
            assertEquals(80, r.steps());
            assertTrue(r.finalValLoss() < 0.8 * r.firstValLoss(), r.firstValLoss() + " -> " + r.finalValLoss());
        }
        ObjectMapper json = new ObjectMapper();
        int failures = 0;
        double valAfter = Double.NaN;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = json.readTree(line);
            failures += m.path("failures").asInt();
            if (failures > 0 && m.has("val_loss")) valAfter = m.get("val_loss").asDouble();
        }
        assertTrue(failures > 0, "the lost executor is reported in metrics.jsonl");
        assertTrue(Double.isFinite(valAfter), "evaluations continue after the loss");
    }
}
