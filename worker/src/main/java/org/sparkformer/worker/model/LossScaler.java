package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.reduce.longer.MatchCondition;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.conditions.Conditions;

import java.io.Serializable;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Dynamic loss scaling for float16 products (PyTorch's GradScaler, as a DL4J listener). The head multiplies the
 * loss gradient by the current scale S, so gradients too small for float16 (below ~6e-8) survive the casts; here,
 * between DL4J's gradient computation and its updater, the gradient is divided by the S that was used. A non-finite
 * gradient (a product overflowed float16) zeroes the step's gradient and halves S; 2,000 finite steps in a row double
 * it. Register before {@link GlobalNormClipping}, which must see the unscaled gradient.
 *
 * <p>DL4J's updater cannot be told to skip a step, so an overflowed step applies a zero gradient: Adam still moves
 * the parameters by its momentum (nothing on the first steps, where S settles from 2^16). The scale is kept per JVM
 * because DL4J rebuilds each replica every averaging round; replicas of one JVM share it.
 */
public final class LossScaler extends BaseTrainingListener implements Serializable {
    private static final long serialVersionUID = 1L;
    static final double INITIAL = 65536, MAX = 16777216;
    static final int GROWTH_INTERVAL = 2000;
    private static volatile double scale = INITIAL;
    private static final AtomicLong goodSteps = new AtomicLong(), overflows = new AtomicLong();

    /** The scale the next backward pass uses. */
    public static double current() { return scale; }

    /** Steps whose gradient overflowed, in this JVM. */
    public static long overflows() { return overflows.get(); }

    /** Sets the scale and clears the counters (tests). */
    static void reset(double s) {
        scale = s;
        goodSteps.set(0);
        overflows.set(0);
    }

    @Override public void onGradientCalculation(Model model) {
        INDArray g = model.getGradientsViewArray();
        if (g == null || !(model instanceof ComputationGraph graph) || !(graph.getLayer(Gpt.HEAD) instanceof LmHead.Impl head)) return;
        double used = head.usedLossScale();
        if (used == 1) return;
        long bad = Nd4j.getExecutioner().exec(new MatchCondition(g, Conditions.notFinite())).getLong(0);   // one pass: NaN or ±Inf
        if (bad > 0) {
            g.assign(0);
            scale = Math.max(1, used / 2);
            goodSteps.set(0);
            overflows.incrementAndGet();
        } else {
            g.divi(used);
            if (goodSteps.incrementAndGet() >= GROWTH_INTERVAL) {
                scale = Math.min(MAX, used * 2);
                goodSteps.set(0);
            }
        }
    }
}
