package org.sparkformer.driver;

import org.nd4j.linalg.learning.config.IUpdater;
import org.sparkformer.worker.model.WarmupCosineSchedule;
import org.sparkformer.worker.model.ShardedAdam;

/**
 * AdamW as DL4J expresses it: Adam (its step split over a replica's shard threads) with our warmup+cosine schedule;
 * decoupled weight decay is set on the graph.
 */
public final class Optimizer {
    private Optimizer() {}

    public static IUpdater updater(TrainConfig c) {
        return new ShardedAdam(new WarmupCosineSchedule(c.lr, c.resolvedMinLr(), c.resolvedWarmup(), c.steps), c.beta1, c.beta2, 1e-8);
    }

    public static double lrAt(TrainConfig c, long step) {
        return new WarmupCosineSchedule(c.lr, c.resolvedMinLr(), c.resolvedWarmup(), c.steps).valueAt((int) step, 0);
    }
}
