package org.sparkformer.worker.model;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.MultiDataSet;

import static org.junit.jupiter.api.Assertions.*;

/** GptGraph hands DL4J's updater the graph's own gradient view: its standard path, with the same result as the external one. */
class GptGraphTest {
    static final double WEIGHT_DECAY = 0.1;

    static MultiDataSet batch(GptConfig c) {
        return new MultiDataSet(ShardsTest.ids(3, 4, 8, c.vocabSize).castTo(DataType.FLOAT),
                ShardsTest.ids(4, 4, 8, c.vocabSize).castTo(DataType.FLOAT));
    }

    static ShardedAdam adamW() {
        return new ShardedAdam(new WarmupCosineSchedule(1e-2, 1e-3, 1, 10), 0.9, 0.95, 1e-8);
    }

    @Test void theUpdaterSeesTheGraphsOwnGradientView() {
        GptConfig c = ShardedAdamTest.config();
        ComputationGraph g = Gpt.build(c, adamW(), WEIGHT_DECAY, DataType.FLOAT);
        assertInstanceOf(GptGraph.class, g);
        g.fit(batch(c));
        // DL4J's updater takes its standard path only for this exact object (BaseMultiLayerUpdater: identity check)
        assertSame(g.getGradientsViewArray(), g.gradientAndScore().getFirst().gradient());
    }

    /** A plain ComputationGraph (DL4J's external-gradient path) and GptGraph train to the same parameters, weight decay included. */
    @Test void trainsExactlyAsAPlainComputationGraph() {
        GptConfig c = ShardedAdamTest.config();
        ComputationGraph ours = Gpt.build(c, adamW(), WEIGHT_DECAY, DataType.FLOAT);
        INDArray start = ours.params().dup();
        ComputationGraph plain = new ComputationGraph(Gpt.configuration(c, adamW(), WEIGHT_DECAY, DataType.FLOAT));
        plain.init(start.dup(), false);
        for (int i = 0; i < 3; i++) {
            ours.fit(batch(c));
            plain.fit(batch(c));
        }
        assertTrue(ours.params().sub(start).amaxNumber().doubleValue() > 1e-3, "training moved nothing");
        assertEquals(0.0, ours.params().sub(plain.params()).amaxNumber().doubleValue(), 1e-7, "GptGraph vs ComputationGraph");
    }
}
