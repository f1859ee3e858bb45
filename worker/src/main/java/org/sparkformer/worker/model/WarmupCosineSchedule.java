package org.sparkformer.worker.model;

import org.nd4j.linalg.schedule.ISchedule;

/**
 * nanoGPT's learning rate: linear warmup from 0 to {@code lr} over {@code warmup} steps, then cosine decay
 * to {@code minLr} at {@code decaySteps}, then flat. Indexed by DL4J's iteration count, which the Spark
 * training master advances between averaging rounds, so every replica sees the same step.
 */
public final class WarmupCosineSchedule implements ISchedule {
    private static final long serialVersionUID = 1L;
    private final double lr, minLr;
    private final int warmup, decaySteps;

    public WarmupCosineSchedule(double lr, double minLr, int warmup, int decaySteps) {
        this.lr = lr;
        this.minLr = minLr;
        this.warmup = warmup;
        this.decaySteps = decaySteps;
    }

    @Override public double valueAt(int iteration, int epoch) {
        if (iteration < warmup) return lr * (iteration + 1) / (warmup + 1);
        if (iteration >= decaySteps) return minLr;
        double progress = (double) (iteration - warmup) / Math.max(1, decaySteps - warmup);
        return minLr + 0.5 * (1 + Math.cos(Math.PI * progress)) * (lr - minLr);
    }

    @Override public ISchedule clone() { return new WarmupCosineSchedule(lr, minLr, warmup, decaySteps); }
}
