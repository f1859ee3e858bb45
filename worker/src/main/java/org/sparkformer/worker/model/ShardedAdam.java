package org.sparkformer.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.AdamUpdater;
import org.nd4j.linalg.learning.GradientUpdater;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.schedule.ISchedule;

import java.util.Map;

/**
 * DL4J's Adam with each large block's step computed in {@link Shards}, a range of its elements per thread
 * ({@link Shards#split}). With shards every op runs on one thread and the helpers idle through the optimizer's step:
 * 3.5-5% of the calling thread's time before this (small, tiny; docs/PERFORMANCE.md). Same arithmetic (Adam's own native op, element by element),
 * state layout and configuration fields as Adam.
 */
public class ShardedAdam extends Adam {

    public ShardedAdam() {}

    public ShardedAdam(ISchedule learningRateSchedule, double beta1, double beta2, double epsilon) {
        super(learningRateSchedule);
        setBeta1(beta1);
        setBeta2(beta2);
        setEpsilon(epsilon);
    }

    @Override
    public GradientUpdater instantiate(INDArray viewArray, boolean initializeViewArray) {
        return new Updater((AdamUpdater) super.instantiate(viewArray, initializeViewArray));
    }

    @Override
    public GradientUpdater instantiate(Map<String, INDArray> updaterState, boolean initializeStateArrays) {
        return new Updater((AdamUpdater) super.instantiate(updaterState, initializeStateArrays));
    }

    @Override
    public ShardedAdam clone() {
        ShardedAdam a = new ShardedAdam(getLearningRateSchedule(), getBeta1(), getBeta2(), getEpsilon());
        a.setLearningRate(getLearningRate());
        return a;
    }

    /** Adam's own updater (its state, m and v), its step split into ranges. */
    private record Updater(AdamUpdater adam) implements GradientUpdater<Adam> {
        @Override public Adam getConfig() { return adam.getConfig(); }

        @Override public void setState(Map<String, INDArray> state, boolean initialize) { adam.setState(state, initialize); }

        @Override public Map<String, INDArray> getState() { return adam.getState(); }

        @Override public void setStateViewArray(INDArray view, long[] gradientShape, char order, boolean initialize) {
            adam.setStateViewArray(view, gradientShape, order, initialize);
        }

        /** As AdamUpdater.applyUpdater: gradient becomes the update, m and v advance; each range on its own thread. */
        @Override public void applyUpdater(INDArray gradient, int iteration, int epoch) {
            Adam c = adam.getConfig();
            double lr = c.getLearningRate(iteration, epoch);
            INDArray g = vector(gradient), m = vector(adam.getM()), v = vector(adam.getV());
            Shards.split(g.length(), (from, to) -> Nd4j.exec(new org.nd4j.linalg.api.ops.impl.updaters.AdamUpdater(
                    Shards.part(g, from, to), Shards.part(v, from, to), Shards.part(m, from, to), lr, c.getBeta1(), c.getBeta2(),
                    c.getEpsilon(), iteration)));
        }

        /** The array as a vector: as it is already (DL4J's block views and Adam's state are), or reshaped. */
        private static INDArray vector(INDArray a) {
            if (a == null) throw new IllegalStateException("Updater has not been initialized with view state");
            return Shards.flat(a);
        }
    }
}
