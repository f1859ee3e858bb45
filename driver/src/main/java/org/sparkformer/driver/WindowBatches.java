package org.sparkformer.driver;

import org.apache.spark.api.java.function.Function2;
import org.apache.spark.broadcast.Broadcast;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.sparkformer.worker.data.Windows;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Runs on each executor: partition i of W owns the i-th contiguous slice of the training tokens (shipped
 * once per executor as a broadcast) and turns it into {@code batches} minibatches of B random (T+1)-token
 * windows for one averaging round. The draw depends only on (seed, step, partition), so a resumed run
 * sees exactly the batches the uninterrupted run would have.
 */
final class WindowBatches implements Function2<Integer, Iterator<Integer>, Iterator<MultiDataSet>> {
    private static final long serialVersionUID = 1L;
    private final Broadcast<int[]> train;
    private final int parts;
    private final long seed, step;
    private final int batches, batchSize, blockSize;

    WindowBatches(Broadcast<int[]> train, int parts, long seed, long step, int batches, int batchSize, int blockSize) {
        this.train = train;
        this.parts = parts;
        this.seed = seed;
        this.step = step;
        this.batches = batches;
        this.batchSize = batchSize;
        this.blockSize = blockSize;
    }

    /** [from, to) of slice i of n over a token array of the given length. */
    static int[] slice(int length, int i, int n) {
        return new int[]{(int) ((long) length * i / n), (int) ((long) length * (i + 1) / n)};
    }

    @Override
    public Iterator<MultiDataSet> call(Integer partition, Iterator<Integer> ignored) {
        int[] tokens = train.value();
        int[] range = slice(tokens.length, partition, parts);
        int span = range[1] - range[0] - blockSize;   // window starts in [from, to - T - 1]
        if (span <= 0) return java.util.Collections.emptyIterator();
        SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + step * 0xBF58476D1CE4E5B9L + partition);
        List<MultiDataSet> out = new ArrayList<>(batches);
        for (int b = 0; b < batches; b++) {
            int[] starts = new int[batchSize];
            for (int i = 0; i < batchSize; i++) starts[i] = range[0] + rng.nextInt(span);
            out.add(Windows.batch(tokens, starts, blockSize));
        }
        return out.iterator();
    }
}
