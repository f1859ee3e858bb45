package org.sparkformer.worker.model;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.NoOp;

import static org.junit.jupiter.api.Assertions.*;

/** The whole model's gradient norm, and clipping to it, with and without shards. */
class GlobalNormClippingTest {
    @AfterEach void wholeBatches() { Shards.use(1); }

    @Test void normAndClippingOverRangesMatchTheWholeGradient() {
        ComputationGraph g = Gpt.build(ModelTest.config(2, 2, 16, 8, 11), new NoOp(), 0, DataType.DOUBLE);
        for (int shards : new int[]{1, 2}) {
            Shards.use(shards);
            g.setInputs(ShardsTest.ids(1, 4, 8, 11));
            g.setLabels(ShardsTest.ids(2, 4, 8, 11));
            g.computeGradientAndScore();
            INDArray before = g.getGradientsViewArray().dup();
            double norm = before.norm2Number().doubleValue();

            GlobalNormClipping unclipped = new GlobalNormClipping(2 * norm);
            unclipped.onGradientCalculation(g);
            assertEquals(norm, unclipped.lastNorm(), 1e-12 * norm, shards + " shards: norm");
            assertEquals(0.0, g.getGradientsViewArray().sub(before).amaxNumber().doubleValue(), 0.0, "below the bound: untouched");

            GlobalNormClipping clipped = new GlobalNormClipping(norm / 4);
            clipped.onGradientCalculation(g);
            assertEquals(norm / 4, g.getGradientsViewArray().norm2Number().doubleValue(), 1e-6 * norm, shards + " shards: clipped norm");
            assertEquals(0.0, g.getGradientsViewArray().mul(4 * (1 + 1e-6 / norm)).sub(before).amaxNumber().doubleValue(),
                    1e-9 * before.amaxNumber().doubleValue(), shards + " shards: same direction, every element scaled");
        }
    }
}
