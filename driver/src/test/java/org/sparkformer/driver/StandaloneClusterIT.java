package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * A Spark standalone cluster started by deploy/standalone/start-cluster.sh (a master and two workers from the
 * project's own jars), a short training job given to it by deploy/spark-submit.sh (Spark's SparkSubmit, client
 * mode), and the checkpoint it wrote loaded back. Runs after package: spark-submit needs the application jar.
 */
class StandaloneClusterIT {
    @TempDir Path tmp;

    static int freePort() throws Exception {
        try (ServerSocket s = new ServerSocket(0)) {
            return s.getLocalPort();
        }
    }

    static String run(Path log, long timeoutSeconds, Map<String, String> env, String... cmd) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(GpuBindingTest.root().toFile()).redirectErrorStream(true).redirectOutput(log.toFile());
        pb.environment().put("SPARKFORMER_JAVA_OPTS", testJvm());   // the daemons and the spark-submit JVM
        pb.environment().putAll(env);
        Process p = pb.start();
        if (!p.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            fail(String.join(" ", cmd) + " did not finish in " + timeoutSeconds + " s:\n" + Files.readString(log));
        }
        String out = Files.readString(log);
        assertEquals(0, p.exitValue(), String.join(" ", cmd) + ":\n" + out);
        return out;
    }

    /**
     * A cluster JVM's log went through our Log4j2 configuration, with its secret-masking rewrite policy in place: no
     * fallback to Spark's default profile, no missing plugin, and the lines (if any) in our layout. Returns the log.
     */
    static String assertOurLogging(Path stderr) throws Exception {
        String log = Files.readString(stderr);
        assertFalse(log.contains("Using Spark's default log4j profile"), stderr + ":\n" + YarnClusterIT.tail(log));
        assertFalse(log.contains("invalid element"), stderr + ":\n" + YarnClusterIT.tail(log));
        for (String line : log.lines().filter(l -> l.matches("^\\d\\d[:/].*")).toList())
            assertTrue(line.matches("\\d\\d:\\d\\d:\\d\\d (TRACE|DEBUG|INFO |WARN |ERROR|FATAL) \\S+ - .*"), stderr + ": " + line);
        return log;
    }

    /** The JIT options the build gives every JVM of the tests (the root pom's test.jvm). */
    static String testJvm() { return System.getProperty("spark.executor.defaultJavaOptions", ""); }

    @Test void spark_submitTrainsOnAStandaloneClusterFromDeployScripts() throws Exception {
        Path root = GpuBindingTest.root();
        Path cluster = tmp.resolve("cluster");
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(1500, 8));
        Path run = tmp.resolve("run");
        String master = run(tmp.resolve("start.log"), 120, Map.of(), root.resolve("deploy/standalone/start-cluster.sh").toString(),
                "--workers", "2", "--cores", "1", "--memory", "2g", "--port", String.valueOf(freePort()), "--dir", cluster.toString()).trim();
        master = master.lines().reduce((a, b) -> b).orElse("");
        assertTrue(master.startsWith("spark://"), master);
        try {
            // deploy/standalone/submit.sh finds the cluster by its folder; the executors get the tests' JVM options too
            Map<String, String> env = Map.of("SPARKFORMER_CLUSTER_DIR", cluster.toString(), "SPARKFORMER_CLUSTER_JAVA_OPTS", testJvm(),
                    "SPARK_CONF", "--conf spark.executor.memory=1g --conf spark.executorEnv.OMP_NUM_THREADS=1");
            List<String> cmd = new ArrayList<>(List.of(root.resolve("deploy/standalone/submit.sh").toString(),
                    "train", "--data", data.toString(), "--out", run.toString(), "--n-layer", "1", "--n-head", "2", "--n-embd", "32",
                    "--block-size", "16", "--batch-size", "8", "--steps", "20", "--eval-interval", "10", "--averaging-frequency", "5",
                    "--workers", "2", "--samples", "0", "--progress", "log"));
            String out = run(tmp.resolve("submit.log"), 300, env, cmd.toArray(String[]::new));
            assertTrue(out.contains("done: 20 steps"), out);
            assertFalse(out.contains("invalid element"), "the driver (spark-submit's JVM) has our logging plugin:\n" + out);
            try (var files = Files.walk(cluster)) {
                List<Path> executorLogs = files.filter(f -> f.getFileName().toString().equals("stderr")).toList();
                assertEquals(2, executorLogs.size(), executorLogs.toString());
                for (Path f : executorLogs) assertOurLogging(f);
            }
        } finally {
            run(tmp.resolve("stop.log"), 60, Map.of(), root.resolve("deploy/standalone/stop-cluster.sh").toString(), "--dir", cluster.toString());
        }
        // the workers' executors trained (two executor ids), and the checkpoint loads
        TreeSet<String> executors = new TreeSet<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = new ObjectMapper().readTree(line);
            m.path(RunLog.EXECUTOR_STEP_MS).fieldNames().forEachRemaining(executors::add);
        }
        assertEquals(2, executors.size(), executors.toString());
        Checkpoint.Loaded ckpt = Checkpoint.load(run.resolve("ckpt/last").toString(), new Configuration(), false);
        assertEquals(20, ckpt.state().step);
        // stop-cluster left no master or worker behind
        assertFalse(Files.exists(cluster.resolve("master.pid")));
    }
}
