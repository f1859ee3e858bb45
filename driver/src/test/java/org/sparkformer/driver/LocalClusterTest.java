package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.nd4j.Nd4jTuning;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Real executor JVMs: Spark's local-cluster mode (a standalone master and two workers in this JVM, each
 * executor a separate process started from the SPARK_HOME the build assembles in target/spark-home). One cluster
 * for the class (executor JVMs are the suite's most expensive processes): two workers that each discover two fake
 * GPUs through a discovery script, one GPU per executor and per task, as on a GPU cluster.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class LocalClusterTest {
    @TempDir static Path tmp;
    static JavaSparkContext sc;

    @BeforeAll static void start() throws Exception {
        Path fake = GpuBindingTest.executable(tmp.resolve("fake-gpus.sh"), "#!/bin/sh\necho '{\"name\":\"gpu\",\"addresses\":[\"3\",\"7\"]}'\n");
        sc = new JavaSparkContext(cluster()
                .set("spark.worker.resource.gpu.amount", "2")
                .set("spark.worker.resource.gpu.discoveryScript", fake.toString())
                .set("spark.executor.resource.gpu.amount", "1")
                .set("spark.executor.resource.gpu.discoveryScript", fake.toString())
                .set("spark.task.resource.gpu.amount", "1"));
    }

    /** No executor JVM outlives the test class (a sharing executor can hang in its exit; see LeftoverExecutors). */
    @AfterAll static void stopWithNoLeftoverExecutors() {
        if (sc != null) sc.close();
        LeftoverExecutors.stop();
        assertTrue(ProcessHandle.current().descendants().noneMatch(p -> LeftoverExecutors.commandLine(p).contains("CoarseGrainedExecutorBackend")),
                "an executor JVM outlived its SparkContext");
    }

    static SparkConf cluster() {
        String home = System.getenv("SPARK_HOME");
        Assumptions.assumeTrue(home != null && Files.isDirectory(Path.of(home, "jars")), "no SPARK_HOME/jars (run through Maven)");
        SparkConf c = Trainer.sparkConf("local-cluster[2,1,1536]")
                .set("spark.executor.memory", "1g")
                .set("spark.executor.extraClassPath", System.getProperty("java.class.path"))   // our classes, as the app jar would
                .set("spark.executorEnv.OMP_NUM_THREADS", "1");
        return c.set("spark.executor.extraJavaOptions", c.get("spark.executor.extraJavaOptions") + " -Dlog4j2.configurationFile="
                + System.getProperty("log4j2.configurationFile"));
    }

    /** Both executors train; each replica learns the (fake) GPU Spark assigned it, logs it and stays on the CPU. */
    @Test @Order(1) void trainsOnTwoExecutorJvmsEachWithTheGpuSparkAssignedIt() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(2000, 8));
        Path run = tmp.resolve("run");
        Trainer.Result r = new Trainer(SparkTrainingTest.tinyConfig(run, 30, data.toString()), null, false).run(sc);
        assertEquals(30, r.steps());
        assertTrue(r.finalValLoss() < 0.8 * r.firstValLoss(), r.firstValLoss() + " -> " + r.finalValLoss());
        // the rounds ran on two executors other than the driver, each bound to the GPU it was given
        TreeSet<String> executors = new TreeSet<>();
        List<String> devices = new ArrayList<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = json.readTree(line);
            m.path(RunLog.EXECUTOR_STEP_MS).fieldNames().forEachRemaining(executors::add);
            m.path("devices").forEach(d -> devices.add(d.asText()));
        }
        assertEquals(new TreeSet<>(List.of("0", "1")), executors);
        assertEquals(2, devices.size(), devices.toString());
        for (String d : devices)
            assertTrue(d.matches("executor [01]: GPU [37] assigned, ND4J backend is CPU: not bound, CPU path unchanged.*"), d);
        // the executors' native thread settings are the launcher's (Trainer.sparkConf's executorEnv defaults)
        assertEquals(List.of("PASSIVE 22", "PASSIVE 22"), sc.parallelize(List.of(1, 2), 2)
                .map(i -> System.getenv("OMP_WAIT_POLICY") + " " + System.getenv("OPENBLAS_THREAD_TIMEOUT")).collect());
        // and ND4J's caching classes (Nd4jTuning through Trainer.sparkConf's executor options)
        assertEquals(List.of("CachedTadOpExecutioner CachedShapeInfoProvider", "CachedTadOpExecutioner CachedShapeInfoProvider"),
                sc.parallelize(List.of(1, 2), 2).map(i -> Nd4j.getExecutioner().getClass().getSimpleName() + " "
                        + Nd4j.getShapeInfoProvider().getClass().getSimpleName()).collect());
        // and the driver's choice of BLAS (MKL on Intel CPUs), which must be made before ND4J starts in each executor
        String blas = "mkl_rt".equals(Nd4jTuning.properties().get(Nd4jTuning.BLAS)) ? "MKL" : "OPENBLAS";
        assertEquals(List.of(blas, blas), sc.parallelize(List.of(1, 2), 2)
                .map(i -> Nd4j.factory().blas().getBlasVendor().name()).collect());
    }

    /** A process's full command line (ProcessHandle truncates long ones): /proc/PID/cmdline, NULs as spaces. */
    static String commandLine(ProcessHandle p) { return LeftoverExecutors.commandLine(p); }

    /** kill -9 of one executor JVM mid-training: Spark re-runs its tasks, the run finishes, the failure is reported. */
    @Test @Order(2) void survivesALostExecutor() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus-kill.txt", TestCorpus.text(2000, 8));
        Path run = tmp.resolve("run-kill");
        TrainConfig c = SparkTrainingTest.tinyConfig(run, 80, data.toString());
        c.evalInterval = 20;
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
