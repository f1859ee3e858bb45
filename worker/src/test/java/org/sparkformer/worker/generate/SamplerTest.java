package org.sparkformer.worker.generate;

import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.*;

class SamplerTest {
    @Test void greedyTopKAndTemperature() {
        double[] logits = {0.1, 3.0, 2.9, -1};
        assertEquals(1, Sampler.pick(logits, 0, 0, new SplittableRandom(1)));
        SplittableRandom rng = new SplittableRandom(7);
        for (int i = 0; i < 200; i++) {
            int p = Sampler.pick(logits, 1.0, 2, rng);
            assertTrue(p == 1 || p == 2, "top-k 2 allowed " + p);
        }
        int[] counts = new int[4];
        SplittableRandom r2 = new SplittableRandom(3);
        for (int i = 0; i < 2000; i++) counts[Sampler.pick(logits, 1.0, 0, r2)]++;
        assertTrue(counts[3] > 0 && counts[3] < counts[0], java.util.Arrays.toString(counts));
    }
}
