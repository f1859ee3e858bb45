package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.graph.LayerVertex;
import org.deeplearning4j.nn.conf.layers.BaseLayer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;

import static org.junit.jupiter.api.Assertions.*;

/** ShardedAdam is Adam: the same parameters after training in shards, and the same fields through a saved configuration. */
class ShardedAdamTest {
    static GptConfig config() {
        GptConfig c = new GptConfig();    // C = 128: the MLP's [C, 4C] block is one wide update
        c.nLayer = 1; c.nHead = 2; c.nEmbd = 128; c.blockSize = 8; c.vocabSize = 11; c.seed = 7;
        return c;
    }

    static INDArray trained(IUpdater updater) {
        GptConfig c = config();
        ComputationGraph g = Gpt.build(c, updater, 0.1, DataType.FLOAT);
        MultiDataSet batch = new MultiDataSet(ShardsTest.ids(3, 4, 8, c.vocabSize).castTo(DataType.FLOAT),
                ShardsTest.ids(4, 4, 8, c.vocabSize).castTo(DataType.FLOAT));
        for (int i = 0; i < 3; i++) g.fit(batch);
        return g.params().dup();
    }

    @Test void trainsExactlyAsAdamInShards() {
        try {
            Shards.use(2);
            assertTrue(4L * 128 * 128 >= Shards.SPLIT_MIN_ELEMENTS, "no block would be split");
            var schedule = new WarmupCosineSchedule(1e-2, 1e-3, 1, 10);
            INDArray adam = trained(new Adam.Builder().learningRateSchedule(schedule).beta1(0.9).beta2(0.95).epsilon(1e-8).build());
            INDArray sharded = trained(new ShardedAdam(schedule, 0.9, 0.95, 1e-8));
            INDArray start = Gpt.build(config(), new Adam(), 0.1, DataType.FLOAT).params();
            assertTrue(adam.sub(start).amaxNumber().doubleValue() > 1e-3, "training moved nothing");
            assertEquals(0.0, adam.sub(sharded).amaxNumber().doubleValue(), 0.0, "ShardedAdam vs Adam");
        } finally {
            Shards.use(1);
        }
    }

    /** One block's step, split over the caller and a helper: the same update and state as Adam's, element for element. */
    @Test void aSplitStepIsAdamsStep() {
        try {
            Shards.use(2);
            long n = Shards.SPLIT_MIN_ELEMENTS + 5;
            var schedule = new WarmupCosineSchedule(1e-2, 1e-3, 1, 10);
            var plain = new Adam.Builder().learningRateSchedule(schedule).beta1(0.9).beta2(0.95).epsilon(1e-8).build();
            INDArray stateA = Nd4j.create(DataType.FLOAT, 1, 2 * n), stateB = Nd4j.create(DataType.FLOAT, 1, 2 * n);
            var a = plain.instantiate(stateA, true);
            var b = new ShardedAdam(schedule, 0.9, 0.95, 1e-8).instantiate(stateB, true);
            Nd4j.getRandom().setSeed(5);
            for (int step = 0; step < 3; step++) {
                INDArray g = Nd4j.randn(DataType.FLOAT, n), ga = g.dup(), gb = g.dup();
                a.applyUpdater(ga, step, 0);
                b.applyUpdater(gb, step, 0);
                assertTrue(ga.sub(g).amaxNumber().doubleValue() > 0, "the update is not the gradient");
                assertEquals(0.0, ga.sub(gb).amaxNumber().doubleValue(), 0.0, "update, step " + step);
                assertEquals(0.0, stateA.sub(stateB).amaxNumber().doubleValue(), 0.0, "m and v, step " + step);
            }
        } finally {
            Shards.use(1);
        }
    }

    /** DL4J writes configurations as JSON (and Spark ships them as Java objects: SparkTrainingTest trains with it). */
    @Test void survivesTheConfigurationsJson() {
        ShardedAdam adam = new ShardedAdam();
        adam.setLearningRate(3e-4);
        adam.setBeta2(0.95);
        ComputationGraphConfiguration conf = Gpt.configuration(config(), adam, 0.1, DataType.FLOAT);
        ComputationGraphConfiguration back = ComputationGraphConfiguration.fromJson(conf.toJson());
        IUpdater u = ((BaseLayer) ((LayerVertex) back.getVertices().get(Gpt.mlp(0))).getLayerConf().getLayer()).getIUpdater();
        ShardedAdam a = assertInstanceOf(ShardedAdam.class, u);
        assertEquals(0.95, a.getBeta2());
        assertEquals(3e-4, a.getLearningRate(50, 0));
        ShardedAdam copy = assertInstanceOf(ShardedAdam.class, a.clone());
        assertEquals(a, copy);
    }
}
