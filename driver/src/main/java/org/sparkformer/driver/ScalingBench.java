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
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * {@code sparkformer bench --scaling [--preset baby] [--data FILE] [--steps 60] [--averaging-frequency 10]}:
 * parameter averaging on 1 and on 2 executor JVMs (Spark local-cluster, one core and one OpenMP thread each).
 * The 1-executor run takes twice the steps, so both see the same number of tokens. Prints one JSON line: per
 * run the median tokens/s of the rounds after the first two, the share of wall time outside the training
 * tasks (averaging, broadcast, scheduling; from the SparkListener), and the final val loss; then the speed-up.
 */
final class ScalingBench {
    private ScalingBench() {}

    static int run(Map<String, String> flags, PrintStream out) throws IOException {
        Main.allowFlags(flags, "bench --scaling", "scaling", "preset", "data", "steps", "averaging-frequency");
        String home = System.getenv("SPARK_HOME");
        if (home == null || !Files.isDirectory(Path.of(home, "jars")))
            throw new UserError("bench --scaling starts executor JVMs from $SPARK_HOME/jars: run it through scripts/sparkformer (which points SPARK_HOME at driver/target/spark-home)");
        int steps = Main.intFlag(flags, "steps", 60), avg = Main.intFlag(flags, "averaging-frequency", 10);
        String data = flags.getOrDefault("data", "");
        ObjectNode r = new ObjectMapper().createObjectNode();
        double[] speed = new double[3];
        for (int executors : new int[]{1, 2}) {
            TrainConfig c = new TrainConfig();
            c.set("preset", flags.getOrDefault("preset", "baby"), "--preset");
            c.data = data;
            c.workers = executors;
            c.steps = steps * (3 - executors);   // equal tokens: 1 executor runs twice the steps
            c.averagingFrequency = avg;
            c.evalInterval = c.steps;
            c.samples = 0;
            c.evalSampleTokens = 0;
            c.tensorboard = "none";
            c.progress = "log";
            c.out = Files.createTempDirectory("sparkformer-scaling-").toString();
            c.validate();
            String jar = Path.of(Main.class.getProtectionDomain().getCodeSource().getLocation().getPath()).toString();
            SparkConf conf = Trainer.sparkConf("local-cluster[" + executors + ",1,3072]")
                    .set("spark.executor.memory", "2g")
                    .set("spark.executor.extraClassPath", jar)
                    .set("spark.executorEnv.OMP_NUM_THREADS", "1");
            Trainer.Result result;
            try (JavaSparkContext sc = new JavaSparkContext(conf)) {
                result = new Trainer(c, null, true).run(sc);
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
            speed[executors] = sorted.length == 0 ? 0 : sorted[sorted.length / 2];
            ObjectNode e = r.putObject("executors_" + executors);
            e.put("steps", c.steps);
            e.put("tokens_per_s", Math.round(speed[executors]));
            e.put("outside_tasks_share", Math.round(syncMs / Math.max(1, wallMs) * 1000) / 1000.0);
            e.put("val_loss", Math.round(result.finalValLoss() * 10000) / 10000.0);
        }
        r.put("speedup", Math.round(speed[2] / Math.max(1e-9, speed[1]) * 100) / 100.0);
        r.put("averaging_frequency", avg);
        out.println(r);
        return 0;
    }
}
