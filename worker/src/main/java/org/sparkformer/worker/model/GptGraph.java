package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * A ComputationGraph that trains our layers faster than DL4J's own: its updater recognises the gradient as its own,
 * and its head has the labels before the forward pass (see {@link #computeGradientAndScore}). DL4J's updater compares
 * the gradient's flat array with the graph's gradient view by identity, but {@code DefaultGradient.gradient()} returns a new reshaped view
 * on every call, so the check always failed and every step took the "external gradient" path: fresh views of the
 * parameters and of the gradient for every parameter, before and after the updater (3.4% of the calling thread's
 * time on tiny, while the shard helpers idle; tiny +2.6% per step without it). Same arithmetic on the same memory.
 * Executors that rebuild a plain ComputationGraph from the configuration train the same, on the slower paths.
 */
public class GptGraph extends ComputationGraph {

    public GptGraph(ComputationGraphConfiguration configuration) {
        super(configuration);
    }

    private INDArray[] labels;

    @Override
    public void setLabels(INDArray... labels) {
        super.setLabels(labels);
        this.labels = labels;       // the same array as the graph's: setLabel(i, x) updates it too
    }

    @Override
    public void clear() {
        super.clear();
        labels = null;
    }

    /**
     * Gives the head its labels before the forward pass (DL4J gives them at the head's backward), so that with shards
     * a helper runs its rows through the head and back down without waiting for the caller to reach the head.
     */
    @Override
    public void computeGradientAndScore() {
        LmHead.Impl head = getNumOutputArrays() == 1 && labels != null && getOutputLayer(0) instanceof LmHead.Impl h ? h : null;
        if (head != null) head.labelsBeforeForward(labels[0]);
        try {
            super.computeGradientAndScore();
        } finally {
            if (head != null) head.labelsBeforeForward(null);
        }
    }

    @Override
    public Pair<Gradient, Double> gradientAndScore() {
        Gradient g = gradient();
        INDArray view = getGradientsViewArray();
        // the graph's gradient is always a DefaultGradient over this very view (ComputationGraph.calcBackpropGradients)
        if (g != null && view != null) g = new OwnView(g, view);
        return new Pair<>(g, score());
    }

    /** The layers' gradients, with the graph's own flat view returned as is. */
    static final class OwnView extends DefaultGradient {
        private final INDArray view;

        OwnView(Gradient g, INDArray view) {
            super(view);
            this.view = view;
            gradientForVariable().putAll(g.gradientForVariable());
        }

        @Override public INDArray gradient() { return view; }
    }
}
