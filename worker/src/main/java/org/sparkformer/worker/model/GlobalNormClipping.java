package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.io.Serializable;

/**
 * Clips the whole model's gradient to a maximum L2 norm (nanoGPT's clip_grad_norm_), between DL4J's
 * gradient computation and its updater; DL4J itself only clips per layer. Remembers the last norm seen
 * and hands each norm (before clipping) to an optional sink, e.g. a Spark accumulator the driver reads.
 */
public final class GlobalNormClipping extends BaseTrainingListener implements Serializable {
    private static final long serialVersionUID = 1L;
    private final double maxNorm;
    private final NormSink sink;
    private transient double lastNorm = Double.NaN;

    /** Receives every gradient norm; travels with the listener to wherever the replica trains. */
    public interface NormSink extends Serializable {
        void accept(double norm);
    }

    public GlobalNormClipping(double maxNorm) { this(maxNorm, null); }

    public GlobalNormClipping(double maxNorm, NormSink sink) {
        this.maxNorm = maxNorm;
        this.sink = sink;
    }

    @Override public void onGradientCalculation(Model model) {
        INDArray g = model.getGradientsViewArray();
        if (g == null) return;
        // in ranges over the shards' helper threads, idle between passes (Shards.split)
        lastNorm = Math.sqrt(Shards.sum(g, part -> {
            double n = part.norm2Number().doubleValue();
            return n * n;
        }));
        if (sink != null) sink.accept(lastNorm);
        double scale = maxNorm / (lastNorm + 1e-6);
        if (maxNorm > 0 && lastNorm > maxNorm) Shards.splitPair(g, g, (part, same) -> part.muli(scale));
    }

    public double lastNorm() { return lastNorm; }
}
