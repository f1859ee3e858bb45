package org.sparkformer.driver;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.storage.StorageLevel;
import org.deeplearning4j.optimize.solvers.accumulation.encoding.threshold.FixedThresholdAlgorithm;
import org.deeplearning4j.spark.api.RDDTrainingApproach;
import org.deeplearning4j.spark.api.Repartition;
import org.deeplearning4j.spark.api.Repartitioner;
import org.apache.spark.api.java.JavaRDD;
import org.deeplearning4j.spark.parameterserver.training.SharedTrainingMaster;
import org.nd4j.parameterserver.distributed.conf.VoidConfiguration;
import org.nd4j.parameterserver.distributed.v2.ModelParameterServer;
import org.nd4j.parameterserver.distributed.v2.transport.PortSupplier;
import org.nd4j.parameterserver.distributed.v2.transport.UpdatesHandler;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.reactivestreams.Subscription;

import java.io.File;
import java.io.IOException;
import java.net.DatagramSocket;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;

/**
 * {@code --sync sharing}: DL4J's SharedTrainingMaster. Every replica sends its threshold-encoded updates to
 * the others over Aeron UDP after every step (no rounds of averaging); the driver joins the mesh as its root
 * and applies the same updates to its own copy, which is what evaluation and checkpoints read.
 *
 * <p>What this class adds to DL4J's: a free UDP port per executor (all executors on one host otherwise take
 * the same default port, each believes it is the root and the model never changes), Aeron's timeout setting,
 * refusal of setups that cannot form a mesh, and a watchdog that ends a round whose mesh does not form
 * or that stalls, with the reason, instead of hanging (DL4J's worker waits for the mesh without a limit).
 */
final class GradientSharing {
    private static final Logger log = LogManager.getLogger(GradientSharing.class);
    /** Aeron refuses its own default (publication unblock timeout ≤ client liveness timeout) without this. */
    static final String AERON_FLAG = "-Daeron.publication.unblock.timeout=60000000000";

    private final JavaSparkContext sc;
    private final int workers;
    private final int timeoutSeconds;
    private final String controller;
    private long longestRoundMs;
    private int meshExecutors;
    private final Arrivals arrivals;
    private long updatesThisRound;

    private final SharedTrainingMaster master;

    private GradientSharing(JavaSparkContext sc, SharedTrainingMaster master, int workers, int timeoutSeconds, String controller,
                            INDArray driverParams) {
        this.sc = sc;
        this.arrivals = new Arrivals(driverParams);
        this.master = master;
        this.workers = workers;
        this.timeoutSeconds = timeoutSeconds;
        this.controller = controller;
    }

    /** Checks the setup, then builds the training master and the watchdog for its rounds; {@code driverParams}: the driver's copy. */
    static GradientSharing start(JavaSparkContext sc, TrainConfig cfg, int workers, INDArray driverParams) {
        SparkConf conf = sc.getConf();
        String sparkMaster = conf.get("spark.master");
        if (sparkMaster.matches("local\\[.*\\]"))
            throw new UserError("--sync sharing: in " + sparkMaster + " every replica lives in the driver's JVM, where DL4J's parameter "
                    + "server is one per process, so no gradients would be shared; use --master local-cluster[N,1,MB] or a cluster, "
                    + "or --sync averaging");
        boolean sameHost = sparkMaster.startsWith("local");
        if (!sameHost && !conf.get("spark.executor.extraJavaOptions", "").contains("aeron.publication.unblock.timeout"))
            throw new UserError("--sync sharing: spark.executor.extraJavaOptions must include " + AERON_FLAG
                    + " (Aeron rejects its default timeouts); the default options carry it, so keep them when adding your own");
        String mask = cfg.networkMask.isEmpty() ? null : cfg.networkMask;
        if (!sameHost && mask == null && conf.getOption("spark.executorEnv.DL4J_VOID_IP").isEmpty())
            throw new UserError("--sync sharing: on a cluster give --network-mask (e.g. 10.0.0.0/16, the subnet the executors' addresses "
                    + "share) so each executor advertises an address the others can reach; without it they advertise 127.0.0.1");
        checkAeronDirectory();
        System.setProperty("aeron.publication.unblock.timeout", "60000000000");

        String address = !cfg.controllerAddress.isEmpty() ? cfg.controllerAddress : conf.get("spark.driver.host", "127.0.0.1");
        checkLocalAddress(address);
        int port = freeUdpPort();
        VoidConfiguration voidConf = VoidConfiguration.builder()
                .controllerAddress(address)
                .unicastPort(port)
                .networkMask(mask)
                .portSupplier(new FreeUdpPort())
                .build();
        // a fixed threshold: DL4J's adaptive one (its default) raises the threshold until at most 1% of the elements
        // go out per step, which throttles a small model's updates (baby preset, 100 steps: val 2.6331 / 2.6377
        // adaptive vs 2.5652 / 2.5778 fixed at lr/2; docs/PERFORMANCE.md)
        double threshold = threshold(cfg, workers);
        SharedTrainingMaster master = new SharedTrainingMaster.Builder(voidConf, workers, new FixedThresholdAlgorithm(threshold), cfg.batchSize)
                .batchSizePerWorker(cfg.batchSize)
                .workersPerNode(1)
                .workerPrefetchNumBatches(0)
                .rddTrainingApproach(RDDTrainingApproach.Direct)
                .repartitionData(Repartition.Never)
                .repartitioner(new KeepPartitions())
                // not cached: the training task then computes its own batches, in its thread (GPU binding); cheap
                // windows of tokens, except with a teacher, whose logits are worth keeping
                .storageLevel(cfg.teacher.isEmpty() ? null : StorageLevel.MEMORY_ONLY())
                .rngSeed(cfg.seed)
                .build();
        log.info("gradient sharing: controller {}:{} (UDP), threshold {}, {} executors, network mask {}", address, port,
                threshold, workers, mask == null ? "none" : mask);
        return new GradientSharing(sc, master, workers, cfg.syncTimeout, address + ":" + port, driverParams);
    }

    /**
     * The encoding threshold: --sharing-threshold, or by default lr / workers. Every update element travels as steps of
     * exactly the threshold (the rest waits in a residual), so one step of all workers' messages moves a parameter at
     * most workers x threshold: lr / workers keeps that at one replica's peak Adam step. Measured on the baby preset
     * (2 executors, lr 1e-3, 100 steps): 2e-4 -> val 2.6130, 5e-4 -> 2.5652 / 2.5778, 1e-3 -> 2.6181; a threshold
     * following the cosine schedule (lr(step) / workers) did worse, 2.6249 at 100 steps and 2.4948 vs 2.4812 at 300.
     */
    static double threshold(TrainConfig cfg, int workers) {
        return cfg.sharingThreshold > 0 ? cfg.sharingThreshold : cfg.lr / workers;
    }

    /**
     * Runs one round under the watchdog: the mesh must hold every executor within --sync-timeout seconds of
     * the first round's start, and no round may take longer than the timeout or five times the longest round
     * so far, whichever is larger. On expiry the Spark jobs are cancelled and the reason is the error.
     */
    void round(Runnable fit) {
        long start = System.currentTimeMillis();
        long limitMs = Math.max(timeoutSeconds * 1000L, 5 * longestRoundMs);
        AtomicReference<String> reason = new AtomicReference<>();
        Thread trainer = Thread.currentThread();
        Thread watchdog = new Thread(() -> {
            long reasonAt = 0;
            try {
                while (true) {
                    Thread.sleep(500);
                    arrivals.subscribeOnce();
                    long elapsed = System.currentTimeMillis() - start;
                    int joined = executorsJoined();
                    if (reason.get() != null) {
                        // again and again until fit returns: a job DL4J submits after a cancel would otherwise run
                        // unwatched; and if fit still has not returned a minute later, interrupt its thread
                        sc.sc().cancelAllJobs();
                        if (System.currentTimeMillis() - reasonAt > 60_000) trainer.interrupt();
                        continue;
                    }
                    if (elapsed > timeoutSeconds * 1000L && joined < workers) {
                        reason.set("--sync sharing: the gradient-sharing mesh did not form within " + timeoutSeconds + " s (--sync-timeout): "
                                + joined + " of " + workers + " executors joined the controller at " + controller + " over UDP; check that the "
                                + "executors reach that address and port (--controller-address, --network-mask, firewalls) and that /dev/shm has room for Aeron");
                    } else if (elapsed > limitMs) {
                        reason.set("--sync sharing: a round made no progress for " + elapsed / 1000 + " s (limit " + limitMs / 1000
                                + " s, --sync-timeout); an executor may have lost its Aeron connection; the last checkpoint is kept");
                    }
                    if (reason.get() != null) {
                        reasonAt = System.currentTimeMillis();
                        sc.sc().cancelAllJobs();
                    }
                }
            } catch (InterruptedException done) {
                Thread.currentThread().interrupt();
            }
        }, "sparkformer-sharing-watchdog");
        watchdog.setDaemon(true);
        watchdog.start();
        try {
            fit.run();
        } catch (Exception e) {    // Spark's SparkException is checked in Java's eyes yet thrown from Scala unannounced
            if (reason.get() != null) throw new UserError(reason.get());
            log.warn("gradient-sharing round failed", e);
            throw new UserError("--sync sharing: the round failed on the executors: " + rootCause(e) + " (details in the log)");
        } finally {
            watchdog.interrupt();
            while (watchdog.isAlive()) {
                try {
                    watchdog.join();
                } catch (InterruptedException sentByTheWatchdog) {
                    // it is stopping; wait for it
                }
            }
            Thread.interrupted();   // an interrupt the watchdog sent has done its work
        }
        if (reason.get() != null) throw new UserError(reason.get());
        arrivals.subscribeOnce();
        updatesThisRound = arrivals.take();
        longestRoundMs = Math.max(longestRoundMs, System.currentTimeMillis() - start);
        meshExecutors = executorsJoined();
    }

    /**
     * Update messages the driver's copy applied during the last round (the first round's count starts once DL4J's server
     * is up): one per step and executor while some element of its update exceeds the threshold, fewer as the learning
     * rate decays (the rest waits in the executors' residuals): 10, 10, 10, 10, 10 and 8 for rounds of 5 steps on 2
     * executors over 30 steps of the tiny model; 10, 10 and 1 over 15 steps, 10, 10 and 10 with --sharing-threshold 1e-5.
     */
    long updatesThisRound() { return updatesThisRound; }

    /**
     * Counts the updates that reach the driver, after DL4J's consumer has applied each (subscribers run in order, on the
     * thread that received the message; DL4J answers a restarting node's request for parameters from the first subscriber,
     * so this one joins after DL4J's, once the parameter server has launched). An update lost on the way never reaches
     * the copy that evaluation and checkpoints read: the count per round shows it.
     */
    static final class Arrivals implements UpdatesHandler {
        private final INDArray driverParams;
        private final AtomicLong count = new AtomicLong();
        private boolean subscribed;
        private long taken;

        Arrivals(INDArray driverParams) { this.driverParams = driverParams; }

        synchronized void subscribeOnce() {
            ModelParameterServer ps = ModelParameterServer.getInstance();
            if (subscribed || !ps.isInitialized()) return;
            ps.addUpdatesSubscriber(this);
            subscribed = true;
        }

        /** Updates since the last call. */
        synchronized long take() {
            long now = count.get(), n = now - taken;
            taken = now;
            return n;
        }

        @Override public void onNext(INDArray update) {
            count.incrementAndGet();
        }

        @Override public INDArray getParametersArray() { return driverParams; }
        @Override public void onSubscribe(Subscription s) { }
        @Override public void onError(Throwable t) { log.warn("gradient-sharing updates: {}", t.toString()); }
        @Override public void onComplete() { }
    }

    private static String rootCause(Throwable e) {
        Throwable t = e;
        while (t.getCause() != null && t.getCause() != t) t = t.getCause();
        String m = t.getMessage() == null ? t.getClass().getSimpleName() : t.getClass().getSimpleName() + ": " + t.getMessage();
        return m.lines().findFirst().orElse(m);
    }

    /** DL4J's training master, for SparkComputationGraph. */
    SharedTrainingMaster master() { return master; }

    /** Executors in the mesh at the end of the last round. */
    int meshExecutors() { return meshExecutors; }

    /**
     * Stops the driver's end of the mesh (Aeron threads and ports), waiting at most 30 s: Aeron's close waits on its
     * conductor, and a run that is ending must not hang on it.
     */
    void close() {
        Thread stop = new Thread(() -> {
            try {
                if (ModelParameterServer.getInstance().isInitialized()) ModelParameterServer.getInstance().shutdown();
            } catch (RuntimeException e) {
                log.warn("stopping the gradient-sharing mesh: {}", e.toString());
            }
        }, "sparkformer-sharing-shutdown");
        stop.setDaemon(true);
        stop.start();
        try {
            stop.join(30_000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        if (stop.isAlive()) log.warn("the gradient-sharing mesh did not stop within 30 s; going on without it");
    }

    /** Executors in the driver's mesh (DL4J's count leaves out the root, the driver itself). */
    static int executorsJoined() {
        try {
            ModelParameterServer ps = ModelParameterServer.getInstance();
            return ps.isInitialized() && ps.getTransport() != null ? ps.getTransport().totalNumberOfNodes() : 0;
        } catch (RuntimeException e) {
            return 0;
        }
    }

    /** The driver binds the controller's UDP port at this address, so it must be one of this machine's. */
    private static void checkLocalAddress(String address) {
        try {
            java.net.InetAddress a = java.net.InetAddress.getByName(address);
            if (!a.isLoopbackAddress() && java.net.NetworkInterface.getByInetAddress(a) == null)
                throw new UserError("--controller-address " + address + ": not an address of this machine (the driver listens there)");
        } catch (java.net.UnknownHostException | java.net.SocketException e) {
            throw new UserError("--controller-address " + address + ": cannot resolve it (" + e.getMessage() + ")");
        }
    }

    /** Aeron keeps its buffers in /dev/shm and fails without a word when that is nearly full. */
    private static void checkAeronDirectory() {
        File shm = new File("/dev/shm");
        if (shm.isDirectory() && shm.getUsableSpace() < 64L << 20)
            throw new UserError("--sync sharing: /dev/shm has " + (shm.getUsableSpace() >> 20) + " MB free; Aeron needs at least 64 MB there "
                    + "(in a container: --shm-size=1g)");
    }

    static int freeUdpPort() {
        try (DatagramSocket s = new DatagramSocket(0)) {
            return s.getLocalPort();
        } catch (IOException e) {
            throw new IllegalStateException("no free UDP port: " + e.getMessage(), e);
        }
    }

    /** Our rounds already hold one partition per worker, each drawn from its own slice of the data: keep them. */
    static final class KeepPartitions implements Repartitioner {
        private static final long serialVersionUID = 1L;

        @Override public <T> JavaRDD<T> repartition(JavaRDD<T> input, int minObjectsPerPartition, int numExecutors) {
            return input;
        }
    }

    /** Each executor JVM takes a UDP port that is free there, once: DL4J asks more than once per JVM. */
    static final class FreeUdpPort implements PortSupplier {
        private static final long serialVersionUID = 1L;
        private static volatile int port;

        @Override public int getPort() {
            synchronized (FreeUdpPort.class) {
                if (port == 0) port = freeUdpPort();
                return port;
            }
        }
    }
}
