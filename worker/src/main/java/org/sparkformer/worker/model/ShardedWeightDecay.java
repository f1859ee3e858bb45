package org.sparkformer.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.pairwise.arithmetic.Axpy;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.regularization.WeightDecay;
import org.nd4j.linalg.schedule.ISchedule;
import org.nd4j.shade.jackson.annotation.JsonProperty;

/**
 * DL4J's decoupled weight decay (update += lr · coeff · param, after the updater) with each matrix's pass split in
 * ranges over the shards' helper threads ({@link Shards#split}), which otherwise idle through it: the same arithmetic.
 */
public class ShardedWeightDecay extends WeightDecay {

    public ShardedWeightDecay(double coeff, boolean applyLR) {
        super(coeff, applyLR);
    }

    public ShardedWeightDecay(@JsonProperty("coeff") ISchedule coeff, @JsonProperty("applyLR") boolean applyLR) {
        super(coeff, applyLR);
    }

    @Override
    public void apply(INDArray param, INDArray gradView, double lr, int iteration, int epoch) {
        double scale = coeff.valueAt(iteration, epoch) * (applyLR ? lr : 1);
        Shards.splitPair(param, gradView, (p, g) -> Nd4j.exec(new Axpy(p, g, g, scale)));
    }

    @Override
    public ShardedWeightDecay clone() {
        return new ShardedWeightDecay(coeff.clone(), applyLR);
    }
}
