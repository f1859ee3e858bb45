package org.sparkformer.worker.generate;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.sparkformer.worker.model.Gpt;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.IntConsumer;

/**
 * Autoregressive sampling: crop the context to the block size, take the last position's logits, divide
 * by the temperature, keep the top k, sample (temperature 0: greedy). Recomputes the whole context per
 * token (no KV cache yet).
 */
public final class Sampler {
    private final ComputationGraph graph;
    private final int blockSize;

    public Sampler(ComputationGraph graph, int blockSize) {
        this.graph = graph;
        this.blockSize = blockSize;
    }

    /** Returns only the new tokens; each is also handed to {@code onToken} as it is produced. */
    public int[] generate(int[] prompt, int maxNewTokens, double temperature, int topK, long seed, IntConsumer onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("prompt must contain at least one token");
        SplittableRandom rng = new SplittableRandom(seed);
        int[] ctx = Arrays.copyOf(prompt, prompt.length + maxNewTokens);
        int len = prompt.length;
        for (int i = 0; i < maxNewTokens; i++) {
            int start = Math.max(0, len - blockSize);
            float[] window = new float[len - start];
            for (int j = start; j < len; j++) window[j - start] = ctx[j];
            INDArray logits = Gpt.logits(graph, Nd4j.create(window, new long[]{1, window.length}, 'c'));
            INDArray last = logits.get(NDArrayIndex.point(0), NDArrayIndex.point(window.length - 1), NDArrayIndex.all());
            int next = pick(last.toDoubleVector(), temperature, topK, rng);
            ctx[len++] = next;
            if (onToken != null) onToken.accept(next);
        }
        return Arrays.copyOfRange(ctx, prompt.length, len);
    }

    static int pick(double[] logits, double temperature, int topK, SplittableRandom rng) {
        int v = logits.length;
        if (temperature <= 0) {
            int best = 0;
            for (int i = 1; i < v; i++) if (logits[i] > logits[best]) best = i;
            return best;
        }
        double cutoff = Double.NEGATIVE_INFINITY;
        if (topK > 0 && topK < v) {
            double[] sorted = logits.clone();
            Arrays.sort(sorted);
            cutoff = sorted[v - topK];
        }
        double max = Double.NEGATIVE_INFINITY;
        for (double l : logits) max = Math.max(max, l);
        double[] p = new double[v];
        double sum = 0;
        for (int i = 0; i < v; i++) {
            p[i] = logits[i] < cutoff ? 0 : Math.exp((logits[i] - max) / temperature);
            sum += p[i];
        }
        double r = rng.nextDouble() * sum;
        for (int i = 0; i < v; i++) {
            r -= p[i];
            if (r <= 0 && p[i] > 0) return i;
        }
        for (int i = v - 1; i >= 0; i--) if (p[i] > 0) return i;
        return 0;
    }
}
