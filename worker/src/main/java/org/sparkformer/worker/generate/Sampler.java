package org.sparkformer.worker.generate;

import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.function.IntPredicate;

/**
 * Autoregressive sampling over any {@link NextToken} model: the last position's logits, a repetition
 * penalty on tokens already in the context (CTRL's: positive logits divided, negative multiplied), then
 * temperature, top-k and top-p (nucleus) filtering, and a draw from a seeded generator; temperature 0 is
 * greedy.
 */
public final class Sampler {
    /** Sampling settings; defaults: temperature 0.8, no top-k (0), no top-p (1.0), no penalty (1.0). */
    public record Settings(double temperature, int topK, double topP, double repetitionPenalty, long seed) {
        public Settings {
            if (temperature < 0) throw new IllegalArgumentException("temperature must be >= 0");
            if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0");
            if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1]");
            if (!(repetitionPenalty > 0)) throw new IllegalArgumentException("repetition penalty must be > 0");
        }

        public static Settings of(double temperature, int topK, long seed) { return new Settings(temperature, topK, 1.0, 1.0, seed); }

        public static Settings greedy() { return new Settings(0, 0, 1.0, 1.0, 0); }
    }

    private final NextToken model;

    public Sampler(NextToken model) { this.model = model; }

    /**
     * Returns only the new tokens; each is handed to {@code onToken} as it is produced, and generation stops
     * early when that returns false (stop strings).
     */
    public int[] generate(int[] prompt, int maxNewTokens, Settings s, IntPredicate onToken) {
        if (prompt.length == 0) throw new IllegalArgumentException("prompt must contain at least one token");
        SplittableRandom rng = new SplittableRandom(s.seed());
        int[] ctx = Arrays.copyOf(prompt, prompt.length + maxNewTokens);
        int len = prompt.length;
        for (int i = 0; i < maxNewTokens; i++) {
            float[] logits = model.logits(ctx, len);
            double[] l = new double[logits.length];
            for (int j = 0; j < l.length; j++) l[j] = logits[j];
            if (s.repetitionPenalty() != 1.0) penalize(l, ctx, len, s.repetitionPenalty());
            int next = pick(l, s.temperature(), s.topK(), s.topP(), rng);
            ctx[len++] = next;
            if (onToken != null && !onToken.test(next)) break;
        }
        return Arrays.copyOfRange(ctx, prompt.length, len);
    }

    static void penalize(double[] logits, int[] ctx, int len, double penalty) {
        boolean[] seen = new boolean[logits.length];
        for (int i = 0; i < len; i++) if (ctx[i] >= 0 && ctx[i] < seen.length) seen[ctx[i]] = true;
        for (int t = 0; t < logits.length; t++)
            if (seen[t]) logits[t] = logits[t] > 0 ? logits[t] / penalty : logits[t] * penalty;
    }

    static int pick(double[] logits, double temperature, int topK, double topP, SplittableRandom rng) {
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
        if (topP < 1.0) {   // keep the most probable tokens until their mass reaches top-p
            Integer[] order = new Integer[v];
            for (int i = 0; i < v; i++) order[i] = i;
            Arrays.sort(order, (a, b) -> Double.compare(p[b], p[a]));
            double kept = 0, total = sum;
            sum = 0;
            for (Integer i : order) {
                if (kept >= topP * total) p[i] = 0;
                else { kept += p[i]; sum += p[i]; }
            }
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
