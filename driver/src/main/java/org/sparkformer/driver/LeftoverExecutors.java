package org.sparkformer.driver;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Spark's local-cluster mode starts executor JVMs as this JVM's children. An executor that trained with gradient
 * sharing can hang in its exit (DL4J's Aeron shutdown hook), and once this JVM is gone nobody stops it: seen here as
 * two orphaned executors spinning at 23% CPU each for 20 minutes after a test run. After the SparkContext stops,
 * executors still running get SIGTERM, then SIGKILL after the grace period. Real clusters' workers and YARN's node
 * managers do this themselves.
 */
final class LeftoverExecutors {
    private static final Logger log = LogManager.getLogger(LeftoverExecutors.class);

    private LeftoverExecutors() {}

    /** Ends this JVM's executor child processes; returns how many were still running. */
    static int stop(long graceSeconds) {
        List<ProcessHandle> left = ProcessHandle.current().descendants()
                .filter(p -> p.info().commandLine().map(c -> c.contains("CoarseGrainedExecutorBackend")).orElse(false))
                .toList();
        left.forEach(ProcessHandle::destroy);
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(graceSeconds);
        for (ProcessHandle p : left) {
            try {
                p.onExit().get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
            } catch (TimeoutException e) {
                log.warn("executor process {} did not exit within {} s of SIGTERM: killing it", p.pid(), graceSeconds);
                p.destroyForcibly();
            } catch (Exception e) {
                p.destroyForcibly();
            }
        }
        return left.size();
    }
}
