package org.sparkformer.driver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.ResetPolicy;
import org.nd4j.linalg.api.memory.enums.SpillPolicy;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.data.Windows;
import org.sparkformer.worker.model.GlobalNormClipping;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.model.Shards;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * One replica's training step, no Spark: {@code sparkformer bench --preset P [--steps N] [--warmup W]
 * [--threads K] [--shards S] [--forward-only] [--profile]}. K cores (default: the launcher's OMP_NUM_THREADS), the batch
 * split into S shards computed at once (default K; 1: whole batches, ops split over K threads). The first W steps are
 * not timed (default: WARMUP_SECONDS of steps, for the JIT). Prints one JSON line: tokens_per_s, ms_per_step (median of the timed
 * steps), achieved_gflops (nanoGPT's 6N + 12LCT FLOPs per token; a third of it forward-only), gemm_gflops
 * (the best of ten 1024^3 fp32 ND4J matmuls in the same process), mfu, peak_rss_mb, and with 50+ timed steps
 * rss_slope_mb_per_1000_steps and offheap_slope_mb_per_1000_steps (resident memory and JavaCPP's off-heap
 * total, sampled every 25 steps; flat means near 0). Vocabulary 65, as char-level Tiny
 * Shakespeare, so the shapes match the PyTorch reference in ../shared/peer.
 */
final class Bench {
    private static final ObjectMapper JSON = new ObjectMapper();
    /**
     * Without --warmup, untimed steps run for this long (and at least MIN_WARMUP_STEPS): with every core training,
     * the JVM's compiler threads take tens of seconds to finish (baby, 2 shards: 9,700 tokens/s over the first 50
     * steps, 14,600 over steps 100-150, 16,500 after 35 s; docs/PERFORMANCE.md).
     */
    static final int WARMUP_SECONDS = 40, MIN_WARMUP_STEPS = 10;

    private Bench() {}

    static int run(Map<String, String> flags, PrintStream out) {
        Main.allowFlags(flags, "bench", "preset", "steps", "warmup", "threads", "shards", "forward-only", "profile", "vocab-size",
                "n-layer", "n-head", "n-embd", "block-size", "batch-size");
        TrainConfig cfg = new TrainConfig();
        for (String k : List.of("preset", "n-layer", "n-head", "n-embd", "block-size", "batch-size"))
            if (flags.containsKey(k)) cfg.set(k, flags.get(k), "--" + k);
        cfg.validate();
        int steps = Main.intFlag(flags, "steps", 30);
        Integer warmup = flags.containsKey("warmup") ? Main.intFlag(flags, "warmup", 0) : null;   // null: by time
        int threads = Main.intFlag(flags, "threads", 0), vocab = Main.intFlag(flags, "vocab-size", 65);
        if (steps < 1 || (warmup != null && warmup < 0)) throw new UserError("--steps must be >= 1 and --warmup >= 0");
        if (threads > 0) Nd4j.getEnvironment().setMaxThreads(threads);
        boolean forwardOnly = flags.containsKey("forward-only"), profile = flags.containsKey("profile");

        int cores = threads > 0 ? threads : envThreads();
        double gemm = gemmGflops(cores);
        // one shard per core unless told: each core computes whole sequences with one-thread ops (Shards says why)
        int shards = Main.intFlag(flags, "shards", cores);
        if (shards < 1) throw new UserError("--shards must be >= 1");
        Shards.use(shards);
        GptConfig model = cfg.model(vocab);
        cfg.steps = 1_000_000;   // the learning-rate schedule only: no decay to speak of
        ComputationGraph graph = Gpt.build(model, Optimizer.updater(cfg), cfg.weightDecay, DataType.FLOAT);
        graph.setListeners(new GlobalNormClipping(cfg.gradClip));
        int[] tokens = new int[1 << 20];
        SplittableRandom rng = new SplittableRandom(1);
        for (int i = 0; i < tokens.length; i++) tokens[i] = rng.nextInt(vocab);

        Map<String, double[]> perLayer = new LinkedHashMap<>();
        double[] ms = new double[steps];
        List<double[]> rss = new java.util.ArrayList<>();   // (timed step, resident MB) every 25 timed steps
        List<double[]> offHeap = new java.util.ArrayList<>();   // (timed step, JavaCPP-tracked off-heap MB)
        long warmupStart = System.nanoTime();
        int warmupSteps = 0;
        for (int i = 0; i < steps; ) {
            boolean timed = warmup != null ? warmupSteps >= warmup
                    : warmupSteps >= MIN_WARMUP_STEPS && System.nanoTime() - warmupStart >= WARMUP_SECONDS * 1_000_000_000L;
            MultiDataSet batch = Windows.batch(tokens, Windows.randomStarts(tokens.length, model.blockSize, cfg.batchSize, rng), model.blockSize);
            long t0 = System.nanoTime();
            if (forwardOnly) graph.output(false, batch.getFeatures(0));
            else graph.fit(batch);
            if (timed) ms[i] = (System.nanoTime() - t0) / 1e6;
            if (timed && i % 25 == 0) {
                rss.add(new double[]{i, procStatusMb("VmRSS:")});
                offHeap.add(new double[]{i, org.bytedeco.javacpp.Pointer.totalBytes() / 1048576.0});
            }
            // the profile repeats the step layer by layer (outside the timed step), to split its time by kind
            if (profile) profileStep(graph, batch, forwardOnly, timed ? perLayer : new LinkedHashMap<>());
            if (timed) i++;
            else warmupSteps++;
        }
        double median = median(ms);
        long tokensPerStep = (long) cfg.batchSize * model.blockSize;
        double flopsPerToken = model.trainingFlopsPerToken();
        if (forwardOnly) flopsPerToken /= 3;
        double tokensPerSecond = tokensPerStep / (median / 1e3);
        double achieved = flopsPerToken * tokensPerSecond / 1e9;

        ObjectNode r = JSON.createObjectNode();
        r.put("preset", cfg.preset);
        r.put("mode", forwardOnly ? "forward" : "train");
        r.put("tokens_per_s", round(tokensPerSecond));
        r.put("ms_per_step", round(median));
        // over all timed steps, collector pauses included: the PyTorch peer's tokens_per_s and ms_per_step are these
        double mean = Arrays.stream(ms).average().orElseThrow();
        r.put("tokens_per_s_mean", round(tokensPerStep / (mean / 1e3)));
        r.put("ms_per_step_mean", round(mean));
        r.put("achieved_gflops", round(achieved));
        r.put("gemm_gflops", round(gemm));
        r.put("mfu", round(achieved / gemm));
        r.put("peak_rss_mb", procStatusMb("VmHWM:"));
        if (rss.size() >= 3) {
            r.put("rss_slope_mb_per_1000_steps", round(1000 * slope(rss)));
            r.put("offheap_slope_mb_per_1000_steps", round(1000 * slope(offHeap)));
        }
        r.put("params", graph.numParams());
        r.put("threads", cores);
        r.put("shards", shards);
        // which BLAS ran the products (MKL or OpenBLAS: Nd4jTuning), and which OpenBLAS kernels (Haswell vs SkylakeX: 1.8x)
        r.put("blas", Nd4j.factory().blas().getBlasVendor().name().toLowerCase(Locale.ROOT));
        r.put("openblas_coretype", System.getenv().getOrDefault("OPENBLAS_CORETYPE", "auto"));
        r.put("steps", steps);
        r.put("warmup_steps", warmupSteps);
        if (profile) {
            ObjectNode p = r.putObject("profile_ms_per_step");
            double layersMs = 0;
            for (Map.Entry<String, double[]> e : perLayer.entrySet()) {
                p.put(e.getKey(), round(e.getValue()[0] / steps));
                layersMs += e.getValue()[0] / steps;
            }
            p.put("layers_total", round(layersMs));
            p.put("rest_of_step(optimizer,dl4j)", round(median - layersMs));
        }
        out.println(r);
        return 0;
    }

    /**
     * Forward and backward layer by layer, as the graph would, timing each layer kind (what is left of the
     * step time is the optimizer and DL4J's own bookkeeping). The graph is a chain (embedding, blocks, head),
     * so each layer's input is the previous one's output.
     */
    private static final WorkspaceConfiguration PROFILE_WS = WorkspaceConfiguration.builder()
            .initialSize(0).overallocationLimit(0.05).policyReset(ResetPolicy.BLOCK_LEFT)
            .policyAllocation(AllocationPolicy.OVERALLOCATE).policySpill(SpillPolicy.REALLOCATE)
            .policyLearning(LearningPolicy.FIRST_LOOP).build();

    /** Workspaces laid out as DL4J's training pass lays them out, so the profile sees the same memory behaviour. */
    private static final LayerWorkspaceMgr PROFILE_MGR = LayerWorkspaceMgr.builder()
            .with(ArrayType.ACTIVATIONS, "PROFILE_ACT", PROFILE_WS).with(ArrayType.INPUT, "PROFILE_ACT", PROFILE_WS)
            .with(ArrayType.FF_WORKING_MEM, "PROFILE_WORK", PROFILE_WS).with(ArrayType.BP_WORKING_MEM, "PROFILE_WORK", PROFILE_WS)
            .with(ArrayType.ACTIVATION_GRAD, "PROFILE_GRAD", PROFILE_WS)
            .with(ArrayType.RNN_FF_LOOP_WORKING_MEM, "PROFILE_WORK", PROFILE_WS).with(ArrayType.RNN_BP_LOOP_WORKING_MEM, "PROFILE_WORK", PROFILE_WS)
            .with(ArrayType.UPDATER_WORKING_MEM, "PROFILE_WORK", PROFILE_WS).build();

    /**
     * Forward and backward layer by layer, as the graph would, timing each layer kind (what is left of the
     * step time is the optimizer and DL4J's own bookkeeping). The graph is a chain (embedding, blocks, head),
     * so each layer's input is the previous one's output.
     */
    private static void profileStep(ComputationGraph graph, MultiDataSet batch, boolean forwardOnly, Map<String, double[]> acc) {
        LayerWorkspaceMgr mgr = PROFILE_MGR;
        Layer[] layers = graph.getLayers();
        try (MemoryWorkspace act = mgr.notifyScopeEntered(ArrayType.ACTIVATIONS);
             MemoryWorkspace grads = mgr.notifyScopeEntered(ArrayType.ACTIVATION_GRAD)) {
            INDArray x = batch.getFeatures(0);
            for (int i = 0; i < layers.length; i++) {
                Layer l = layers[i];
                if (l instanceof org.deeplearning4j.nn.api.layers.IOutputLayer head) {
                    l.setInput(x, mgr);
                    head.setLabels(batch.getLabels(0));
                    if (forwardOnly) {
                        time(acc, kind(l) + ".forward", () -> l.activate(false, mgr), mgr, ArrayType.FF_WORKING_MEM);
                        return;
                    }
                    INDArray[] eps = new INDArray[1];
                    time(acc, kind(l) + ".forward+backward", () -> eps[0] = l.backpropGradient(null, mgr).getSecond(), mgr, ArrayType.BP_WORKING_MEM);
                    for (int j = i - 1; j >= 0; j--) {
                        Layer lj = layers[j];
                        INDArray e = eps[0];
                        time(acc, kind(lj) + ".backward", () -> eps[0] = lj.backpropGradient(e, mgr).getSecond(), mgr, ArrayType.BP_WORKING_MEM);
                    }
                    return;
                }
                INDArray in = x;
                INDArray[] outArr = new INDArray[1];
                time(acc, kind(l) + ".forward", () -> outArr[0] = l.activate(in, !forwardOnly, mgr), mgr, ArrayType.FF_WORKING_MEM);
                x = outArr[0];
            }
        }
    }

    private static String kind(Layer l) {
        String n = l.getClass().getName();
        n = n.substring(n.lastIndexOf('.') + 1);
        return n.endsWith("$Impl") ? n.substring(0, n.length() - 5) : n;
    }

    private interface Timed { Object run(); }

    private static void time(Map<String, double[]> acc, String key, Timed body, LayerWorkspaceMgr mgr, ArrayType working) {
        long t0 = System.nanoTime();
        try (MemoryWorkspace ws = mgr.notifyScopeEntered(working)) {
            body.run();
        }
        acc.computeIfAbsent(key, k -> new double[1])[0] += (System.nanoTime() - t0) / 1e6;
    }

    /** The replica's threads: OMP_NUM_THREADS (the launcher sets it), else every core. */
    static int envThreads() {
        try {
            return Math.max(1, Integer.parseInt(System.getenv().getOrDefault("OMP_NUM_THREADS", "").trim()));
        } catch (NumberFormatException e) {
            return Runtime.getRuntime().availableProcessors();
        }
    }

    /**
     * GEMM rate with the given OpenBLAS threads (the replica's cores, whatever its shards do): 1024^3 products through
     * the path the model's products take (Nd4j.gemm; INDArray.mmuli is 3x slower here).
     */
    static double gemmGflops(int threads) {
        int before = Nd4j.factory().blas().getMaxThreads();
        Nd4j.factory().blas().setMaxThreads(threads);
        INDArray a = Nd4j.rand(DataType.FLOAT, 1024, 1024), b = Nd4j.rand(DataType.FLOAT, 1024, 1024);
        INDArray c = Nd4j.create(DataType.FLOAT, 1024, 1024);
        double[] s = new double[10];
        try {
            for (int i = 0; i < 3; i++) Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
            for (int i = 0; i < s.length; i++) {
                long t0 = System.nanoTime();
                Nd4j.gemm(a, b, c, false, false, 1.0, 0.0);
                s[i] = (System.nanoTime() - t0) / 1e9;
            }
        } finally {
            Nd4j.factory().blas().setMaxThreads(before);
        }
        // the best of the samples: a peak rate, as MFU's denominator should be (the machine is noisy)
        return 2.0 * 1024 * 1024 * 1024 / Arrays.stream(s).min().orElseThrow() / 1e9;
    }

    static double median(double[] v) {
        double[] s = v.clone();
        Arrays.sort(s);
        return s.length % 2 == 1 ? s[s.length / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
    }

    private static double round(double v) { return Math.round(v * 1000) / 1000.0; }

    /** A memory line of /proc/self/status in MB (VmHWM: peak resident, VmRSS: resident now), or -1. */
    static long procStatusMb(String key) {
        long kb = procStatusKb(key);
        return kb < 0 ? -1 : kb / 1024;
    }

    /** A memory line of /proc/self/status in kB (Linux), or -1. */
    static long procStatusKb(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status")))
                if (line.startsWith(key)) return Long.parseLong(line.replaceAll("[^0-9]", ""));
        } catch (IOException | NumberFormatException e) {
            return -1;
        }
        return -1;
    }

    /** Least-squares slope of y over x for (x, y) points. */
    static double slope(List<double[]> points) {
        double mx = 0, my = 0;
        for (double[] p : points) { mx += p[0]; my += p[1]; }
        mx /= points.size();
        my /= points.size();
        double num = 0, den = 0;
        for (double[] p : points) { num += (p[0] - mx) * (p[1] - my); den += (p[0] - mx) * (p[0] - mx); }
        return den == 0 ? 0 : num / den;
    }

}
