package org.sparkformer.worker.generate;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.learning.config.Adam;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    @Test void greedyTopKTopPAndTemperature() {
        double[] logits = {0.1, 3.0, 2.9, -1};
        assertEquals(1, Sampler.pick(logits, 0, 0, 1.0, new SplittableRandom(1)));
        SplittableRandom rng = new SplittableRandom(7);
        for (int i = 0; i < 200; i++) {
            int p = Sampler.pick(logits, 1.0, 2, 1.0, rng);
            assertTrue(p == 1 || p == 2, "top-k 2 allowed " + p);
        }
        int[] counts = new int[4];
        SplittableRandom r2 = new SplittableRandom(3);
        for (int i = 0; i < 2000; i++) counts[Sampler.pick(logits, 1.0, 0, 1.0, r2)]++;
        assertTrue(counts[3] > 0 && counts[3] < counts[0], Arrays.toString(counts));
        // probabilities ~ 0.04, 0.51, 0.46, 0.01: top-p 0.5 keeps only token 1; 0.9 keeps 1 and 2
        for (int i = 0; i < 200; i++) assertEquals(1, Sampler.pick(logits, 1.0, 0, 0.5, rng));
        for (int i = 0; i < 200; i++) assertTrue(Sampler.pick(logits, 1.0, 0, 0.9, rng) >= 1 && Sampler.pick(logits, 1.0, 0, 0.9, rng) <= 2);
    }

    @Test void repetitionPenaltyLowersSeenTokens() {
        double[] l = {2.0, -1.0, 1.0};
        Sampler.penalize(l, new int[]{0, 1, 0}, 2, 2.0);
        assertArrayEquals(new double[]{1.0, -2.0, 1.0}, l);
        assertThrows(IllegalArgumentException.class, () -> new Sampler.Settings(1, 0, 0, 1, 1));
    }

    /** The KV cache gives the logits recomputation gives, through growth, a new prompt and the sliding window. */
    @Test void kvCacheMatchesRecomputation() {
        for (GptConfig.Positional positional : GptConfig.Positional.values()) {
            GptConfig c = new GptConfig();
            c.nLayer = 2; c.nHead = 2; c.nEmbd = 16; c.blockSize = 8; c.vocabSize = 11; c.positional = positional; c.seed = 5;
            ComputationGraph g = Gpt.build(c, new Adam(1e-3), 0, DataType.FLOAT);
            NextToken slow = new Recompute(g, c.blockSize), fast = new KvCache(g, c);
            int[] ctx = new int[40];
            SplittableRandom r = new SplittableRandom(2);
            for (int i = 0; i < ctx.length; i++) ctx[i] = r.nextInt(c.vocabSize);
            for (int len : new int[]{3, 4, 5, 6, 7, 8, 9, 10, 2, 3, 12, 13, 40}) {   // grow, overflow, new prompt, slide
                float[] a = slow.logits(ctx, len), b = fast.logits(ctx, len);
                for (int i = 0; i < a.length; i++) assertEquals(a[i], b[i], 1e-4 * (1 + Math.abs(a[i])), positional + " len " + len + " logit " + i);
            }
            int[] prompt = {1, 2, 3};
            assertArrayEquals(new Sampler(slow).generate(prompt, 30, Sampler.Settings.greedy(), null),
                    new Sampler(fast).generate(prompt, 30, Sampler.Settings.greedy(), null));
        }
    }

    @Test void stopsWhenTheCallbackSaysSo() {
        GptConfig c = new GptConfig();
        c.nLayer = 1; c.nHead = 1; c.nEmbd = 8; c.blockSize = 8; c.vocabSize = 5;
        ComputationGraph g = Gpt.build(c, new Adam(1e-3), 0, DataType.FLOAT);
        int[] seen = {0};
        int[] out = new Sampler(new KvCache(g, c)).generate(new int[]{0}, 20, Sampler.Settings.of(1.0, 0, 3), t -> ++seen[0] < 4);
        assertEquals(4, out.length);
    }
}
