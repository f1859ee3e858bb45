package org.sparkformer.driver;

import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.IUpdater;
import org.sparkformer.worker.model.WarmupCosineSchedule;

/** AdamW as DL4J expresses it: Adam with our warmup+cosine schedule; decoupled weight decay is set on the graph. */
public final class Optimizer {
    private Optimizer() {}

    public static IUpdater updater(TrainConfig c) {
        return new Adam.Builder()
                .learningRateSchedule(new WarmupCosineSchedule(c.lr, c.resolvedMinLr(), c.resolvedWarmup(), c.steps))
                .beta1(c.beta1).beta2(c.beta2).epsilon(1e-8).build();
    }

    public static double lrAt(TrainConfig c, long step) {
        return new WarmupCosineSchedule(c.lr, c.resolvedMinLr(), c.resolvedWarmup(), c.steps).valueAt((int) step, 0);
    }
}
