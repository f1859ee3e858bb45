package org.sparkformer.worker.model;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.sparkformer.worker.model.GradientCheckTest.*;

/**
 * Double-precision finite-difference checks of a 2-block model end to end (sampled entries of every parameter):
 * tied and untied, learned and sinusoidal, with dropout, distilling. A class of its own so that it runs beside
 * GradientCheckTest's single layers.
 */
class ModelGradientCheckTest {
    @BeforeAll static void doublePrecision() { GradientCheckTest.doublePrecision(); }

    @AfterAll static void restore() { GradientCheckTest.restore(); }

    /** Distillation labels [B, T, 1 + V]: the next-token id, then a teacher's logits. */
    @Test void twoBlockModelDistilling() {
        GptConfig c = small(true, GptConfig.Positional.LEARNED);
        c.distillAlpha = 0.3;
        c.distillTemperature = 2.0;
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        INDArray hard = ids(14, c.vocabSize);
        Nd4j.getRandom().setSeed(15);
        INDArray labels = Nd4j.concat(2, hard.reshape(B, T, 1), Nd4j.randn(DataType.DOUBLE, B, T, c.vocabSize).muli(2));
        checkSampled(g, ids(16, c.vocabSize), labels, () -> {});
        // alpha 1 is plain cross-entropy; a teacher equal to the student makes the KL term vanish
        INDArray in = ids(16, c.vocabSize);
        double ce = g.score(new org.nd4j.linalg.dataset.MultiDataSet(in, hard), false);
        INDArray self = Nd4j.concat(2, hard.reshape(B, T, 1), Gpt.logits(g, in));
        assertEquals(0.3 * ce, g.score(new org.nd4j.linalg.dataset.MultiDataSet(in, self), false), 1e-9);
    }

    @Test void twoBlockModelTiedLearned() {
        GptConfig c = small(true, GptConfig.Positional.LEARNED);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        checkSampled(g, ids(8, c.vocabSize), ids(9, c.vocabSize), () -> {});
    }

    @Test void twoBlockModelUntiedSinusoidal() {
        GptConfig c = small(false, GptConfig.Positional.SINUSOIDAL);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        checkSampled(g, ids(10, c.vocabSize), ids(11, c.vocabSize), () -> {});
    }

    /** Dropout is random, so reseed before every forward pass: then each pass draws the same masks. */
    @Test void twoBlockModelWithDropout() {
        GptConfig c = small(true, GptConfig.Positional.LEARNED);
        c.dropout = 0.3;
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        INDArray in = ids(12, c.vocabSize), labels = ids(13, c.vocabSize);
        checkSampled(g, in, labels, () -> Nd4j.getRandom().setSeed(99));
        // and the masks really drop something: two training passes with different seeds differ
        Nd4j.getRandom().setSeed(1);
        double a = g.score(new org.nd4j.linalg.dataset.MultiDataSet(in, labels), true);
        Nd4j.getRandom().setSeed(2);
        double b = g.score(new org.nd4j.linalg.dataset.MultiDataSet(in, labels), true);
        assertTrue(Math.abs(a - b) > 1e-6, "dropout had no effect");
        assertEquals(g.score(new org.nd4j.linalg.dataset.MultiDataSet(in, labels), false),
                g.score(new org.nd4j.linalg.dataset.MultiDataSet(in, labels), false), 0.0, "inference must not drop");
    }
}
