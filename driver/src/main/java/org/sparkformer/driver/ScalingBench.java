package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * {@code sparkformer bench --scaling [--preset baby] [--data FILE] [--steps 60] [--averaging-frequency 10] [--sync both]}:
 * 1 executor JVM, then 2 with parameter averaging and/or gradient sharing (Spark local-cluster, one core and one
 * OpenMP thread each). The 1-executor run takes twice the steps, so all see the same number of tokens. Prints one
 * JSON line: per run the median tokens/s of the rounds after the first two, the share of wall time outside the
 * training tasks (averaging, broadcast, scheduling; from the SparkListener) and the final val loss; for the
 * 2-executor runs the speed-up and the val loss relative to the single executor's.
 */
final class ScalingBench {
    private ScalingBench() {}

    static int run(Map<String, String> flags, PrintStream out) throws IOException {
        Main.allowFlags(flags, "bench --scaling", "scaling", "preset", "data", "steps", "averaging-frequency", "sync", "sharing-threshold");
        String home = System.getenv("SPARK_HOME");
        if (home == null || !Files.isDirectory(Path.of(home, "jars")))
            throw new UserError("bench --scaling starts executor JVMs from $SPARK_HOME/jars: run it through scripts/sparkformer (which points SPARK_HOME at driver/target/spark-home)");
        int steps = Main.intFlag(flags, "steps", 60), avg = Main.intFlag(flags, "averaging-frequency", 10);
        String sync = flags.getOrDefault("sync", "both");
        if (!List.of("both", "averaging", "sharing").contains(sync))
            throw new UserError("--sync: expected averaging, sharing or both, got '" + sync + "'");
        ObjectNode r = new ObjectMapper().createObjectNode();
        ObjectNode single = one(flags, 1, "averaging", steps * 2, avg);   // equal tokens: 1 executor runs twice the steps
        r.set("executors_1", single);
        for (String mode : sync.equals("both") ? List.of("averaging", "sharing") : List.of(sync)) {
            ObjectNode two = one(flags, 2, mode, steps, avg);
            String key = mode.equals("averaging") ? "executors_2" : "executors_2_sharing";
            r.set(key, two);
            two.put("speedup", Math.round(two.get("tokens_per_s").asDouble() / Math.max(1e-9, single.get("tokens_per_s").asDouble()) * 100) / 100.0);
            two.put("val_vs_single", Math.round(two.get("val_loss").asDouble() / single.get("val_loss").asDouble() * 1000) / 1000.0);
        }
        r.put("averaging_frequency", avg);
        out.println(r);
        return 0;
    }

    /** One run on its own local-cluster: median tokens/s after two warm-up rounds, share outside tasks, final val loss. */
    private static ObjectNode one(Map<String, String> flags, int executors, String sync, int steps, int avg) throws IOException {
        TrainConfig c = new TrainConfig();
        c.set("preset", flags.getOrDefault("preset", "baby"), "--preset");
        c.data = flags.getOrDefault("data", "");
        c.workers = executors;
        c.steps = steps;
        c.sync = sync;
        if (flags.containsKey("sharing-threshold")) c.set("sharing-threshold", flags.get("sharing-threshold"), "--sharing-threshold");
        c.averagingFrequency = avg;
        c.evalInterval = c.steps;
        c.samples = 0;
        c.evalSampleTokens = 0;
        c.tensorboard = "none";
        c.progress = "log";
        c.out = Files.createTempDirectory("sparkformer-scaling-").toString();
        c.validate();
        SparkConf conf = Trainer.sparkConf("local-cluster[" + executors + ",1,3072]")
                .set("spark.executor.memory", "2g")
                .set("spark.executorEnv.OMP_NUM_THREADS", "1");
        Trainer.Result result;
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            result = new Trainer(c, null, true).run(sc);
        } finally {
            LeftoverExecutors.stop();
        }
        List<Double> tps = new ArrayList<>();
        double syncMs = 0, wallMs = 0;
        int round = 0;
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(Path.of(java.net.URI.create(result.runDir())).resolve("metrics.jsonl"))) {
            JsonNode m = json.readTree(line);
            if (!m.has("tokens_per_s") || round++ < 2) continue;
            double roundTokens = (double) avg * c.batchSize * c.blockSize * executors;
            tps.add(m.get("tokens_per_s").asDouble());
            wallMs += roundTokens / m.get("tokens_per_s").asDouble() * 1000;
            syncMs += m.path("sync_ms").asDouble();
        }
        double[] sorted = tps.stream().mapToDouble(Double::doubleValue).sorted().toArray();
        ObjectNode e = new ObjectMapper().createObjectNode();
        e.put("sync", sync);
        e.put("steps", c.steps);
        e.put("tokens_per_s", Math.round(sorted.length == 0 ? 0 : sorted[sorted.length / 2]));
        e.put("outside_tasks_share", Math.round(syncMs / Math.max(1, wallMs) * 1000) / 1000.0);
        e.put("val_loss", Math.round(result.finalValLoss() * 10000) / 10000.0);
        return e;
    }
}
