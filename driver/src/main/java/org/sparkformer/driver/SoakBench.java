package org.sparkformer.driver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.bytedeco.javacpp.Pointer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.sparkformer.worker.data.Windows;
import org.sparkformer.worker.model.GlobalNormClipping;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;

import java.io.PrintStream;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * {@code sparkformer bench --soak [--minutes 15] [--preset baby] [--sample-every 50] [--warmup-fraction 0.4]} (scripts/soak.sh): one
 * replica trains for the given time; every N steps, after a full GC, it samples the Java heap in use, the process's
 * resident memory as JavaCPP counts it (Pointer.physicalBytes) and, as off-heap, its anonymous part less the committed heap. After
 * warm-up it fits a line to each one's floor and prints the slopes in MB per 1,000 steps: flat means under 1 for heap and off-heap.
 */
final class SoakBench {
    private static final Logger log = LogManager.getLogger(SoakBench.class);

    private SoakBench() {}

    /** (mean step, minimum) of each block of 5 consecutive samples. */
    static List<double[]> floor(List<double[]> samples) {
        List<double[]> out = new ArrayList<>();
        for (int b = 0; b + 5 <= samples.size(); b += 5) {
            double step = 0, min = Double.POSITIVE_INFINITY;
            for (double[] p : samples.subList(b, b + 5)) { step += p[0] / 5; min = Math.min(min, p[1]); }
            out.add(new double[]{step, min});
        }
        return out;
    }

    /** RssAnon from /proc/self/status in MB (Linux); elsewhere the whole resident size given. */
    static double anonResidentMb(double residentMb) {
        long kb = Bench.procStatusKb("RssAnon:");
        return kb < 0 ? residentMb : kb / 1024.0;
    }

    static int run(Map<String, String> flags, PrintStream out) {
        Main.allowFlags(flags, "bench --soak", "soak", "minutes", "preset", "sample-every", "warmup-fraction");
        TrainConfig cfg = new TrainConfig();
        cfg.set("preset", flags.getOrDefault("preset", "baby"), "--preset");
        cfg.validate();
        double minutes = Double.parseDouble(flags.getOrDefault("minutes", "15"));
        int every = Main.intFlag(flags, "sample-every", 50);
        double warmupFraction = Double.parseDouble(flags.getOrDefault("warmup-fraction", "0.4"));
        if (minutes <= 0 || every < 1 || warmupFraction < 0 || warmupFraction >= 1)
            throw new UserError("--minutes must be > 0, --sample-every >= 1, --warmup-fraction in [0, 1)");
        GptConfig model = cfg.model(65);
        cfg.steps = 1_000_000;   // the schedule only; the clock ends the run
        ComputationGraph graph = Gpt.build(model, Optimizer.updater(cfg), cfg.weightDecay, DataType.FLOAT);
        graph.setListeners(new GlobalNormClipping(cfg.gradClip));
        int[] tokens = new int[1 << 20];
        SplittableRandom rng = new SplittableRandom(1);
        for (int i = 0; i < tokens.length; i++) tokens[i] = rng.nextInt(65);

        List<double[]> heap = new ArrayList<>(), offHeap = new ArrayList<>(), rss = new ArrayList<>();
        long end = System.nanoTime() + (long) (minutes * 60e9);
        int step = 0;
        while (System.nanoTime() < end) {
            MultiDataSet batch = Windows.batch(tokens, Windows.randomStarts(tokens.length, model.blockSize, cfg.batchSize, rng), model.blockSize);
            graph.fit(batch);
            if (++step % every == 0) {
                System.gc();
                System.gc();
                Runtime rt = Runtime.getRuntime();
                // off-heap: the process's anonymous resident memory less the committed heap = ND4J's native buffers
                // (libnd4j allocates them itself, not through JavaCPP's counter), malloc arenas, thread stacks, metaspace.
                // Anonymous only: file-backed pages (the mapped native libraries and jars) come and go with the kernel's
                // page reclaim and are not ours to leak; soak.sh fixes and pre-touches the heap so that all of it is resident.
                double h = (rt.totalMemory() - rt.freeMemory()) / 1048576.0, r = Pointer.physicalBytes() / 1048576.0;
                double o = anonResidentMb(r) - rt.totalMemory() / 1048576.0;
                heap.add(new double[]{step, h});
                offHeap.add(new double[]{step, o});
                rss.add(new double[]{step, r});
                log.info(String.format(java.util.Locale.ROOT, "soak step %d: heap in use %.1f MB, off-heap (anonymous resident less heap) %.1f MB, resident (JavaCPP physical bytes) %.0f MB", step, h, o, r));
            }
        }
        ObjectNode res = new ObjectMapper().createObjectNode();
        res.put("preset", cfg.preset);
        res.put("minutes", minutes);
        res.put("steps", step);
        res.put("samples", heap.size());
        // After warm-up (allocator pools and JIT settle: ~1,500 baby steps measured), the slope of the floor: the
        // minimum of each block of 5 samples, since a sample lands at a random point of the allocator's and GC's cycles
        int skip = (int) (heap.size() * warmupFraction);
        if (heap.size() - skip >= 15) {
            double hs = 1000 * Bench.slope(floor(heap.subList(skip, heap.size())));
            double os = 1000 * Bench.slope(floor(offHeap.subList(skip, offHeap.size())));
            double rs = 1000 * Bench.slope(floor(rss.subList(skip, rss.size())));
            res.put("heap_slope_mb_per_1000_steps", Math.round(hs * 1000) / 1000.0);
            res.put("offheap_slope_mb_per_1000_steps", Math.round(os * 1000) / 1000.0);
            res.put("rss_slope_mb_per_1000_steps", Math.round(rs * 1000) / 1000.0);
            res.put("heap_slope_all_samples", Math.round(1000 * Bench.slope(heap.subList(skip, heap.size())) * 1000) / 1000.0);
            res.put("offheap_slope_all_samples", Math.round(1000 * Bench.slope(offHeap.subList(skip, offHeap.size())) * 1000) / 1000.0);
            res.put("flat", Math.abs(hs) < 1 && Math.abs(os) < 1);
            res.put("warmup_steps", (long) heap.get(skip)[0]);
            res.put("offheap_mb_floor_last", Math.round(floor(offHeap).get(floor(offHeap).size() - 1)[1] * 10) / 10.0);
            res.put("heap_mb_floor_last", Math.round(floor(heap).get(floor(heap).size() - 1)[1] * 10) / 10.0);
        } else {
            res.put("flat", (String) null);
            res.put("note", "too few samples after warm-up (need 15): run longer or lower --sample-every");
        }
        out.println(res);
        return 0;
    }
}
