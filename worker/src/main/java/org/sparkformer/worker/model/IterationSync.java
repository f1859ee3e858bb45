package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.optimize.api.BaseTrainingListener;

import java.io.Serializable;

/**
 * Puts a replica's iteration counter at the true global step before each update. DL4J's
 * ComputationGraphConfiguration.clone() drops the iteration count, and the Spark training master clones
 * the broadcast configuration for every replica in every round, so without this every round would restart
 * the LR schedule and Adam's bias correction at iteration 0. Set a fresh instance per round.
 */
public final class IterationSync extends BaseTrainingListener implements Serializable {
    private static final long serialVersionUID = 1L;
    private final long firstStep;
    private int updates;

    public IterationSync(long firstStep) { this.firstStep = firstStep; }

    @Override public void onGradientCalculation(Model model) {
        if (model instanceof ComputationGraph g) g.getConfiguration().setIterationCount((int) (firstStep + updates++));
    }
}
