package org.sparkformer.worker.data;

import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;

import java.util.SplittableRandom;

/**
 * (T+1)-token windows of a token array: inputs tokens[s .. s+T), targets tokens[s+1 .. s+T]. A minibatch
 * is B such windows as a MultiDataSet of features [B, T] and labels [B, T] (token ids as floats).
 */
public final class Windows {
    private Windows() {}

    /** Start offsets of B windows drawn uniformly from tokens (nanoGPT's get_batch). */
    public static int[] randomStarts(int tokenCount, int blockSize, int batchSize, SplittableRandom rng) {
        int span = tokenCount - blockSize - 1;
        if (span < 0) throw new IllegalArgumentException("need at least " + (blockSize + 1) + " tokens, have " + tokenCount);
        int[] starts = new int[batchSize];
        for (int i = 0; i < batchSize; i++) starts[i] = rng.nextInt(span + 1);
        return starts;
    }

    public static MultiDataSet batch(int[] tokens, int[] starts, int blockSize) {
        float[] x = new float[starts.length * blockSize], y = new float[starts.length * blockSize];
        for (int b = 0; b < starts.length; b++) {
            for (int t = 0; t < blockSize; t++) {
                x[b * blockSize + t] = tokens[starts[b] + t];
                y[b * blockSize + t] = tokens[starts[b] + t + 1];
            }
        }
        long[] shape = {starts.length, blockSize};
        return new MultiDataSet(Nd4j.create(x, shape, 'c').castTo(Nd4j.defaultFloatingPointType()),
                Nd4j.create(y, shape, 'c').castTo(Nd4j.defaultFloatingPointType()));
    }

    /**
     * Start offsets of windows number first .. first+count-1 in an epoch-by-epoch order over one token array:
     * epoch e cuts the tokens into n = (length - T) / T windows at a random offset in [0, T), and visits them in
     * a random permutation; both are drawn from (seed, e, stream) alone, so any window's position is a pure
     * function of its number (exact resume) and every window is seen once per epoch.
     */
    public static int[] epochStarts(int tokenCount, int blockSize, long seed, int stream, long first, int count) {
        long n = (tokenCount - blockSize) / blockSize;
        if (n <= 0) throw new IllegalArgumentException("need at least " + (2 * blockSize) + " tokens, have " + tokenCount);
        int[] starts = new int[count];
        long cachedEpoch = -1;
        int[] order = null;
        int offset = 0;
        for (int i = 0; i < count; i++) {
            long g = first + i, epoch = g / n;
            if (epoch != cachedEpoch) {
                SplittableRandom rng = new SplittableRandom(seed * 0x9E3779B97F4A7C15L + epoch * 0xBF58476D1CE4E5B9L + stream * 0x94D049BB133111EBL);
                offset = rng.nextInt(blockSize);
                order = new int[(int) n];
                for (int k = 0; k < n; k++) order[k] = k;
                for (int k = (int) n - 1; k > 0; k--) {
                    int j = rng.nextInt(k + 1), t = order[k];
                    order[k] = order[j];
                    order[j] = t;
                }
                cachedEpoch = epoch;
            }
            starts[i] = offset + blockSize * order[(int) (g % n)];
        }
        return starts;
    }

    /** Evenly spaced windows covering a token array: a fixed, reproducible evaluation sample. */
    public static int[] evenStarts(int tokenCount, int blockSize, int count) {
        int span = tokenCount - blockSize - 1;
        if (span < 0) throw new IllegalArgumentException("need at least " + (blockSize + 1) + " tokens, have " + tokenCount);
        int[] starts = new int[count];
        for (int i = 0; i < count; i++) starts[i] = count == 1 ? 0 : (int) ((long) span * i / (count - 1));
        return starts;
    }

}
