package org.sparkformer.worker.model;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.NoOp;
import org.sparkformer.worker.data.Windows;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class ModelTest {

    static GptConfig config(int layers, int heads, int width, int block, int vocab) {
        GptConfig c = new GptConfig();
        c.nLayer = layers; c.nHead = heads; c.nEmbd = width; c.blockSize = block; c.vocabSize = vocab;
        return c;
    }

    @Test void changingTokenTChangesNoOutputBeforeT() {
        GptConfig c = config(2, 2, 16, 12, 11);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        double[] ids = new double[12];
        Random r = new Random(5);
        for (int i = 0; i < ids.length; i++) ids[i] = r.nextInt(11);
        INDArray before = Gpt.logits(g, Nd4j.create(ids, new long[]{1, 12}, DataType.DOUBLE)).dup();
        for (int t : new int[]{0, 5, 11}) {
            double[] changed = ids.clone();
            changed[t] = (changed[t] + 3) % 11;
            INDArray after = Gpt.logits(g, Nd4j.create(changed, new long[]{1, 12}, DataType.DOUBLE));
            for (int s = 0; s < 12; s++) {
                INDArray a = before.get(NDArrayIndex.point(0), NDArrayIndex.point(s), NDArrayIndex.all());
                INDArray b = after.get(NDArrayIndex.point(0), NDArrayIndex.point(s), NDArrayIndex.all());
                double diff = a.sub(b).amaxNumber().doubleValue();
                if (s < t) assertEquals(0.0, diff, 1e-12, "position " + s + " saw token " + t);
                else assertTrue(diff > 1e-9, "position " + s + " should depend on token " + t);
            }
        }
    }

    @Test void parameterCountMatchesFormulaForEveryPreset() {
        int[][] presets = {{2, 4, 128, 64}, {4, 4, 128, 128}, {6, 6, 384, 256}, {12, 12, 768, 1024}};
        for (int[] p : presets) {
            for (boolean tied : new boolean[]{true, false}) {
                GptConfig c = config(p[0], p[1], p[2], p[3], 65);
                c.tiedHead = tied;
                long actual = Gpt.configuration(c, new NoOp(), 0, DataType.FLOAT).getVertices().values().stream()
                        .filter(v -> v instanceof org.deeplearning4j.nn.conf.graph.LayerVertex)
                        .mapToLong(v -> { var l = ((org.deeplearning4j.nn.conf.graph.LayerVertex) v).getLayerConf().getLayer();
                            return l.initializer().numParams(l); }).sum();
                assertEquals(c.parameterCount(), actual, "preset " + java.util.Arrays.toString(p) + " tied=" + tied);
            }
        }
        // and the formula agrees with GPT-2 small's published size (tied head, learned positions)
        assertEquals(124_439_808L, config(12, 12, 768, 1024, 50257).parameterCount());
        // a built network has exactly that many parameters
        GptConfig tiny = config(2, 4, 128, 64, 65);
        assertEquals(tiny.parameterCount(), Gpt.build(tiny, new NoOp(), 0, DataType.FLOAT).numParams());
    }

    @Test void tiedHeadSharesTheEmbeddingTable() {
        GptConfig c = config(1, 2, 8, 4, 9);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.FLOAT);
        INDArray wte = g.getLayer(Gpt.EMBEDDING).getParam(TokenEmbedding.WTE);
        wte.putScalar(3, 2, 0.75);
        assertEquals(0.75, ((LmHead.Impl) g.getLayer(Gpt.HEAD)).weight().getDouble(3, 2), 1e-7);
    }

    @Test void sameSeedSameInitialisation() {
        GptConfig c = config(2, 2, 16, 8, 13);
        assertEquals(Gpt.build(c, new NoOp(), 0, DataType.FLOAT).params(), Gpt.build(c, new NoOp(), 0, DataType.FLOAT).params());
    }

    @Test void initialLossIsNearLnVAndTrainingLowersIt() {
        GptConfig c = config(1, 2, 32, 16, 10);
        ComputationGraph g = Gpt.build(c, new Adam(3e-3), 0.1, DataType.FLOAT);
        int[] tokens = new int[2000];
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 7 + i / 10) % 10;   // a learnable pattern
        var batch = Windows.batch(tokens, new int[]{0, 100, 200, 300, 400, 500, 600, 700}, 16);
        double first = g.score(batch, false);
        assertEquals(Math.log(10), first, 0.3);
        for (int i = 0; i < 60; i++) g.fit(batch);
        assertTrue(g.score(batch, false) < 0.5 * first, "loss did not fall: " + g.score(batch, false));
    }

    /** AdamW: the weight decay shrinks the matrices but is no part of the score (DL4J would add an L2 penalty to it). */
    @Test void weightDecayShrinksWeightsButStaysOutOfTheScore() {
        GptConfig c = config(1, 2, 16, 8, 10);
        int[] tokens = new int[200];
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 3) % 10;
        var batch = Windows.batch(tokens, new int[]{0, 40, 80, 120}, 8);
        ComputationGraph decayed = Gpt.build(c, new Adam(1e-3), 0.5, DataType.FLOAT), plain = Gpt.build(c, new Adam(1e-3), 0, DataType.FLOAT);
        assertEquals(0.0, decayed.calcRegularizationScore(true));
        assertEquals(plain.score(batch, false), decayed.score(batch, false), 1e-6);
        decayed.fit(batch);
        plain.fit(batch);
        double shrunk = decayed.params().norm2Number().doubleValue(), kept = plain.params().norm2Number().doubleValue();
        assertTrue(shrunk < kept * (1 - 1e-5), "weight decay did not shrink the parameters: " + shrunk + " vs " + kept);
    }
}
