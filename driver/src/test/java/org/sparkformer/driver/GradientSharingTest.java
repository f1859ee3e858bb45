package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** --sync sharing on two executor JVMs (local-cluster): the mesh forms, the model learns, a broken mesh fails in bounded time. */
class GradientSharingTest {
    @TempDir Path tmp;

    /** No executor JVM outlives the test class (a sharing executor can hang in its exit; see LeftoverExecutors). */
    @org.junit.jupiter.api.AfterAll static void noLeftoverExecutors() {
        LeftoverExecutors.stop();
        assertTrue(ProcessHandle.current().descendants().noneMatch(p -> LeftoverExecutors.commandLine(p).contains("CoarseGrainedExecutorBackend")),
                "an executor JVM outlived its SparkContext");
    }

    static TrainConfig sharing(Path run, int steps, String data) {
        TrainConfig c = SparkTrainingTest.tinyConfig(run, steps, data);
        c.sync = "sharing";
        c.samples = 0;
        c.evalSampleTokens = 0;
        c.sharingThreshold = 3e-4;   // this config's lr is 3e-3 (encoded updates move in steps of the threshold)
        return c;
    }

    @Test void trainsWithGradientSharingAcrossTwoExecutorJvms() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(2000, 8));
        Path run = tmp.resolve("run");
        try (JavaSparkContext sc = new JavaSparkContext(LocalClusterTest.cluster())) {
            Trainer.Result r = new Trainer(sharing(run, 40, data.toString()), null, false).run(sc);
            assertEquals(40, r.steps());
            assertTrue(r.finalValLoss() < 0.85 * r.firstValLoss(), r.firstValLoss() + " -> " + r.finalValLoss());
        }
        // both executors joined the driver's mesh, and the driver's copy kept improving (the updates reached it)
        ObjectMapper json = new ObjectMapper();
        int mesh = -1;
        double val10 = Double.NaN, val40 = Double.NaN;
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = json.readTree(line);
            if (m.has("mesh_executors")) mesh = m.get("mesh_executors").asInt();
            if (m.path("step").asInt() == 10 && m.has("val_loss")) val10 = m.get("val_loss").asDouble();
            if (m.path("step").asInt() == 40 && m.has("val_loss")) val40 = m.get("val_loss").asDouble();
        }
        assertEquals(2, mesh, "executors in the mesh");
        assertTrue(val40 < val10, "val at 40 " + val40 + " below val at 10 " + val10);
    }

    @Test void aMeshThatCannotFormFailsInBoundedTimeWithTheReason() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(2000, 8));
        // executors advertise an address that is not theirs (TEST-NET-2): their Aeron endpoints cannot bind or be reached
        SparkConf conf = LocalClusterTest.cluster().set("spark.executorEnv.DL4J_VOID_IP", "198.51.100.7");
        TrainConfig c = sharing(tmp.resolve("run-broken"), 20, data.toString());
        c.syncTimeout = 15;
        long t0 = System.nanoTime();
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            UserError e = assertThrows(UserError.class, () -> new Trainer(c, null, false).run(sc));
            assertTrue(e.getMessage().startsWith("--sync sharing:"), e.getMessage());
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        }
        assertTrue((System.nanoTime() - t0) / 1e9 < 120, "failed within bounded time");
    }

    @Test void refusesLocalModeWhereNoGradientsWouldBeShared() throws Exception {
        TrainConfig c = sharing(tmp.resolve("run-local"), 10, TestCorpus.write(tmp, "c.txt", TestCorpus.text(500, 8)).toString());
        try (JavaSparkContext sc = new JavaSparkContext(Trainer.sparkConf("local[2]"))) {
            UserError e = assertThrows(UserError.class, () -> new Trainer(c, null, false).run(sc));
            assertTrue(e.getMessage().contains("local-cluster"), e.getMessage());
        }
    }
}
