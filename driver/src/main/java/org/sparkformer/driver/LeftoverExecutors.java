package org.sparkformer.driver;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.List;

/**
 * Spark's local-cluster mode starts executor JVMs as this JVM's children. An executor that trained with gradient
 * sharing can hang in its exit (DL4J's Aeron shutdown hook), and once this JVM is gone nobody stops it: seen here as
 * two orphaned executors spinning at 23% CPU each for 20 minutes after a test run. After the SparkContext stops,
 * executors still running are killed. Real clusters' workers and YARN's node managers do this themselves.
 */
final class LeftoverExecutors {
    private static final Logger log = LogManager.getLogger(LeftoverExecutors.class);

    private LeftoverExecutors() {}

    /**
     * A process's whole command line: from /proc on Linux, since ProcessHandle.Info cuts it short (an executor's class
     * path is thousands of characters long, and its main class comes after it).
     */
    static String commandLine(ProcessHandle p) {
        try {
            return proc(p, "cmdline").replace('\0', ' ');
        } catch (java.io.IOException | RuntimeException e) {
            return p.info().commandLine().orElse("");
        }
    }

    /** A file of /proc/PID (cmdline, environ: NUL-separated entries). */
    static String proc(ProcessHandle p, String file) throws java.io.IOException {
        return new String(java.nio.file.Files.readAllBytes(java.nio.file.Path.of("/proc", String.valueOf(p.pid()), file)),
                java.nio.charset.StandardCharsets.UTF_8);
    }

    /**
     * Kills this JVM's executor child processes still running (SIGKILL: the SparkContext has stopped, they have nothing
     * left to do, and waiting for a graceful exit kept the driver JVM alive long enough for DL4J's Aeron poll thread to
     * crash it; see docs/RELIABILITY.md). Returns how many there were.
     */
    static int stop() {
        List<ProcessHandle> left = ProcessHandle.current().descendants()
                .filter(p -> commandLine(p).contains("CoarseGrainedExecutorBackend"))
                .toList();
        for (ProcessHandle p : left) {
            log.info("executor process {} still running after the SparkContext stopped: killing it", p.pid());
            p.destroyForcibly();
        }
        for (ProcessHandle p : left) {
            try {
                p.onExit().get(5, java.util.concurrent.TimeUnit.SECONDS);
            } catch (Exception e) {
                log.warn("executor process {} still running 5 s after SIGKILL", p.pid());
            }
        }
        return left.size();
    }
}
