package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.Sgd;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.learning.regularization.Regularization;
import org.nd4j.linalg.learning.regularization.WeightDecay;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** ShardedWeightDecay is DL4J's WeightDecay, split over the shards' threads; matrices only, through the configuration's JSON. */
class ShardedWeightDecayTest {
    @AfterEach void wholeBatches() { Shards.use(1); }

    @Test void aSplitDecayIsWeightDecayElementForElement() {
        Shards.use(2);
        Nd4j.getRandom().setSeed(3);
        for (char order : new char[]{'c', 'f'}) {
            INDArray param = Nd4j.randn(DataType.FLOAT, 512, 1100).dup(order), grad = Nd4j.randn(DataType.FLOAT, 512, 1100).dup(order);
            assertTrue(param.length() >= Shards.SPLIT_MIN_CHEAP, "no split");
            INDArray plain = grad.dup(order), sharded = grad.dup(order);
            new WeightDecay(0.1, true).apply(param, plain, 3e-3, 5, 0);
            new ShardedWeightDecay(0.1, true).apply(param, sharded, 3e-3, 5, 0);
            assertTrue(plain.sub(grad).amaxNumber().doubleValue() > 0, order + ": nothing decayed");
            assertEquals(0.0, plain.sub(sharded).amaxNumber().doubleValue(), 0.0, order + "-order");
        }
    }

    @Test void decaysMatricesOnlyThroughTheConfigurationsJson() {
        ComputationGraphConfiguration conf = Gpt.configuration(ShardedAdamTest.config(), new Adam(), 0.1, DataType.FLOAT);
        ComputationGraphConfiguration back = ComputationGraphConfiguration.fromJson(conf.toJson());
        Layer mlp = ((LayerVertex) back.getVertices().get(Gpt.mlp(0))).getLayerConf().getLayer();
        List<Regularization> onMatrix = mlp.getRegularizationByParam(MlpBlock.WFC);
        assertEquals(1, onMatrix.size(), "one decay, not DL4J's global list twice: " + onMatrix);
        ShardedWeightDecay decay = assertInstanceOf(ShardedWeightDecay.class, onMatrix.get(0));
        assertEquals(0.1, decay.getCoeff().valueAt(7, 0));
        assertTrue(decay.isApplyLR());
        assertInstanceOf(ShardedWeightDecay.class, decay.clone());
        List<Regularization> onBias = mlp.getRegularizationByParam(MlpBlock.BFC);
        assertTrue(onBias == null || onBias.isEmpty(), "biases are not decayed: " + onBias);
    }

    /** One SGD step with decay, against the same step without: each matrix moved by -lr·wd·param once, vectors not at all. */
    @Test void aStepDecaysEachMatrixOnce() {
        for (int shards : new int[]{1, 2}) {
            Shards.use(shards);
            GptConfig c = ModelTest.config(2, 2, 16, 8, 11);
            double lr = 0.1, wd = 0.25;
            ComputationGraph plain = Gpt.build(c, new Sgd(lr), 0, DataType.DOUBLE), decayed = Gpt.build(c, new Sgd(lr), wd, DataType.DOUBLE);
            INDArray start = decayed.params().dup();
            assertEquals(0.0, plain.params().sub(start).amaxNumber().doubleValue(), 0.0, "same start");
            MultiDataSet batch = new MultiDataSet(ShardsTest.ids(1, 4, 8, 11), ShardsTest.ids(2, 4, 8, 11));
            plain.fit(batch);
            decayed.fit(batch);
            for (String[] p : new String[][]{{Gpt.mlp(1), MlpBlock.WFC}, {Gpt.attention(0), CausalSelfAttention.WQKV}, {Gpt.EMBEDDING, TokenEmbedding.WTE}}) {
                INDArray before = start0(c, p), moved = decayed.getLayer(p[0]).getParam(p[1]).sub(plain.getLayer(p[0]).getParam(p[1]));
                assertEquals(0.0, moved.add(before.mul(lr * wd)).amaxNumber().doubleValue(), 1e-12, shards + " shards: " + p[0] + "." + p[1]);
            }
            assertEquals(0.0, decayed.getLayer(Gpt.mlp(1)).getParam(MlpBlock.BFC).sub(plain.getLayer(Gpt.mlp(1)).getParam(MlpBlock.BFC))
                    .amaxNumber().doubleValue(), 0.0, "biases are not decayed");
        }
    }

    private static INDArray start0(GptConfig c, String[] param) {
        return Gpt.build(c, new Sgd(0.1), 0, DataType.DOUBLE).getLayer(param[0]).getParam(param[1]);
    }
}
