package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.hadoop.yarn.conf.YarnConfiguration;
import org.apache.hadoop.yarn.server.MiniYARNCluster;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * YARN cluster mode on Hadoop's in-process clusters: a MiniDFSCluster and a MiniYARNCluster (a ResourceManager
 * and a NodeManager that launches real container processes). deploy/spark-submit.sh submits a short training
 * job with --deploy-mode cluster: the driver runs in the YARN application master, reads its text from HDFS,
 * executors train in YARN containers, the checkpoint goes to HDFS; then it loads back from HDFS.
 */
class YarnClusterIT {
    @TempDir java.nio.file.Path tmp;

    @Test void trainsInYarnClusterModeFromHdfsToHdfs() throws Exception {
        YarnConfiguration conf = new YarnConfiguration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, tmp.resolve("hdfs").toString());
        // MiniYARNCluster overrides the NodeManager's own memory key with this one (default 4 GB: the AM and one executor
        // fit, the second executor's container never came and Spark waited 30 s for it, then trained on one)
        conf.setInt(YarnConfiguration.YARN_MINICLUSTER_NM_PMEM_MB, 12288);
        conf.setInt(YarnConfiguration.NM_VCORES, 4);
        conf.setInt(YarnConfiguration.RM_SCHEDULER_MINIMUM_ALLOCATION_MB, 256);
        conf.setBoolean(YarnConfiguration.NM_PMEM_CHECK_ENABLED, false);
        conf.setBoolean(YarnConfiguration.NM_VMEM_CHECK_ENABLED, false);
        conf.setFloat(YarnConfiguration.NM_MAX_PER_DISK_UTILIZATION_PERCENTAGE, 99.9f);   // a full CI disk must not mark the NM unhealthy
        conf.set("yarn.scheduler.capacity.maximum-am-resource-percent", "1.0");
        // the CapacityScheduler's one queue (a cluster's capacity-scheduler.xml would say this)
        conf.set("yarn.scheduler.capacity.root.queues", "default");
        conf.set("yarn.scheduler.capacity.root.default.capacity", "100");
        conf.set("yarn.scheduler.capacity.root.default.maximum-capacity", "100");
        conf.set("yarn.scheduler.capacity.root.default.user-limit-factor", "1");
        conf.set("yarn.scheduler.capacity.root.default.state", "RUNNING");
        conf.set("yarn.scheduler.capacity.root.default.acl_submit_applications", "*");
        conf.set("yarn.scheduler.capacity.root.default.acl_administer_queue", "*");
        conf.set("yarn.scheduler.capacity.node-locality-delay", "-1");
        MiniDFSCluster dfs = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
        MiniYARNCluster yarn = new MiniYARNCluster("sparkformer", 1, 1, 1);
        try {
            dfs.waitActive();
            String hdfs = dfs.getURI().toString();
            conf.set("fs.defaultFS", hdfs);
            yarn.init(conf);
            yarn.start();
            FileSystem fs = dfs.getFileSystem();
            try (FSDataOutputStream out = fs.create(new Path("/data/corpus.txt"))) {
                out.write(TestCorpus.text(1500, 8).getBytes(StandardCharsets.UTF_8));
            }
            // what spark-submit and the YARN containers read: the running clusters' addresses
            java.nio.file.Path hadoopConf = Files.createDirectories(tmp.resolve("hadoop-conf"));
            // only YARN's own keys: the mini cluster's full configuration names test-only classes (e.g. its rack mapping)
            Configuration site = new Configuration(false);
            for (java.util.Map.Entry<String, String> e : yarn.getConfig())
                if (e.getKey().startsWith("yarn.")) site.set(e.getKey(), yarn.getConfig().get(e.getKey()));
            try (OutputStream o = Files.newOutputStream(hadoopConf.resolve("yarn-site.xml"))) { site.writeXml(o); }
            try (OutputStream o = Files.newOutputStream(hadoopConf.resolve("core-site.xml"))) {
                Configuration core = new Configuration(false);
                core.set("fs.defaultFS", hdfs);
                core.writeXml(o);
            }

            java.nio.file.Path root = GpuBindingTest.root();
            String sparkJars = System.getenv("SPARK_HOME") + "/jars/*";
            String javaHome = System.getProperty("java.home");
            // deploy/yarn/submit.sh: master yarn, cluster mode and the rest from deploy/yarn/spark-defaults.conf
            List<String> cmd = new ArrayList<>(List.of(root.resolve("deploy/yarn/submit.sh").toString(),
                    // the jars are on this machine already: containers use them in place instead of uploading 300 MB
                    "--conf", "spark.yarn.jars=local:" + sparkJars,
                    "--conf", "spark.yarn.appMasterEnv.JAVA_HOME=" + javaHome, "--conf", "spark.executorEnv.JAVA_HOME=" + javaHome,
                    "--conf", "spark.executorEnv.OMP_NUM_THREADS=1", "--conf", "spark.yarn.appMasterEnv.OMP_NUM_THREADS=1",
                    "--conf", "spark.executor.instances=2", "--conf", "spark.executor.memory=1g", "--conf", "spark.driver.memory=1g",
                    "--conf", "spark.sparkformer.executor.offHeap=512m",
                    "train", "--data", hdfs + "/data/corpus.txt", "--out", hdfs + "/runs/yarn", "--n-layer", "1", "--n-head", "2",
                    "--n-embd", "32", "--block-size", "16", "--batch-size", "8", "--steps", "10", "--eval-interval", "10",
                    "--averaging-frequency", "5", "--workers", "2", "--samples", "0", "--progress", "log"));
            ProcessBuilder pb = new ProcessBuilder(cmd).directory(root.toFile()).redirectErrorStream(true)
                    .redirectOutput(tmp.resolve("submit.log").toFile());
            pb.environment().put("HADOOP_CONF_DIR", hadoopConf.toString());
            pb.environment().put("SPARKFORMER_JAVA_OPTS", StandaloneClusterIT.testJvm());           // spark-submit's JVM
            pb.environment().put("SPARKFORMER_CLUSTER_JAVA_OPTS", StandaloneClusterIT.testJvm());   // the AM and the executors
            Process p = pb.start();
            boolean done = p.waitFor(Integer.getInteger("yarn.it.timeout", 300), java.util.concurrent.TimeUnit.SECONDS);
            String log = Files.readString(tmp.resolve("submit.log"));
            if (!done) {
                StringBuilder dump = new StringBuilder();
                for (ProcessHandle h : java.util.stream.Stream.concat(java.util.stream.Stream.of(p.toHandle()), p.descendants()).toList()) {
                    Process js = new ProcessBuilder(System.getProperty("java.home") + "/bin/jstack", String.valueOf(h.pid())).redirectErrorStream(true).start();
                    dump.append(new String(js.getInputStream().readAllBytes()));
                }
                log += "\n--- thread dump ---\n" + dump.toString().lines().filter(l -> l.contains("\"main\"") || l.contains("at org.apache.spark") || l.contains("at org.apache.hadoop")).limit(40).reduce("", (x, y) -> x + y + "\n");
                p.descendants().forEach(ProcessHandle::destroyForcibly);
                p.destroyForcibly();
            }
            assertTrue(done, "spark-submit finished in time:\n" + tail(log) + diagnostics(yarn));
            assertEquals(0, p.exitValue(), "spark-submit to YARN:\n" + tail(log) + diagnostics(yarn));
            assertTrue(log.contains("final status: SUCCEEDED"), tail(log));
            List<java.nio.file.Path> containerLogs = containerLogs(yarn);
            assertEquals(3, containerLogs.size(), "the application master and both executors ran in containers: " + containerLogs);
            assertFalse(log.contains("invalid element"), "spark-submit's JVM has our logging plugin:\n" + tail(log));
            // the driver (in the AM) and the executors logged through our configuration and its secret masking
            boolean progress = false;
            for (java.nio.file.Path f : containerLogs)
                progress |= StandaloneClusterIT.assertOurLogging(f).contains("INFO  Trainer - step 10/10 | loss");
            assertTrue(progress, "the driver's progress lines in the AM's log");

            // the driver ran inside YARN and wrote its checkpoint to HDFS: it loads back from there
            assertTrue(fs.exists(new Path("/runs/yarn/ckpt/last/config.json")));
            Checkpoint.Loaded ckpt = Checkpoint.load(hdfs + "/runs/yarn/ckpt/last", conf, false);
            assertEquals(10, ckpt.state().step);
            assertTrue(fs.exists(new Path("/runs/yarn/metrics.jsonl")));
        } finally {
            yarn.stop();
            dfs.shutdown();
        }
    }

    /** Each container's stderr (one per container the NodeManager launched). */
    static List<java.nio.file.Path> containerLogs(MiniYARNCluster yarn) throws java.io.IOException {
        List<java.nio.file.Path> logs = new ArrayList<>();
        for (String dir : yarn.getNodeManager(0).getConfig().getTrimmedStrings(YarnConfiguration.NM_LOG_DIRS, ""))
            try (var files = Files.walk(java.nio.file.Path.of(dir))) {
                files.filter(f -> f.getFileName().toString().equals("stderr")).forEach(logs::add);
            }
        return logs;
    }

    /** The applications' states and the tails of the containers' logs, for a failure message. */
    static String diagnostics(MiniYARNCluster yarn) {
        StringBuilder b = new StringBuilder("\nRM at " + yarn.getConfig().get(YarnConfiguration.RM_ADDRESS) + "\n--- YARN applications ---\n");
        yarn.getResourceManager().getRMContext().getRMApps().values().forEach(app ->
                b.append(app.getApplicationId()).append(' ').append(app.getState()).append(' ').append(app.getDiagnostics()).append('\n'));
        for (String dir : yarn.getNodeManager(0).getConfig().getTrimmedStrings(YarnConfiguration.NM_LOG_DIRS, "")) {
            try (var files = Files.walk(java.nio.file.Path.of(dir))) {
                files.filter(Files::isRegularFile).forEach(f -> {
                    try {
                        b.append("--- ").append(f).append(" ---\n").append(tail(Files.readString(f)).lines()
                                .filter(l -> !l.startsWith("\tat ")).reduce("", (x, y) -> x + y + "\n"));
                    } catch (java.io.IOException | java.io.UncheckedIOException e) {
                        b.append(e).append('\n');
                    }
                });
            } catch (java.io.IOException e) {
                b.append(e).append('\n');
            }
        }
        return b.toString();
    }

    static String tail(String log) {
        return log.length() > 6000 ? log.substring(log.length() - 6000) : log;
    }
}
