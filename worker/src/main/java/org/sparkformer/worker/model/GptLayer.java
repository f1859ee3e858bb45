package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.gradient.DefaultGradient;
import org.deeplearning4j.nn.gradient.Gradient;
import org.deeplearning4j.nn.layers.BaseLayer;
import org.deeplearning4j.nn.workspace.ArrayType;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.common.primitives.Pair;

/**
 * Runtime side of our layers: each subclass writes {@code activate} (forward, caching what backward
 * needs) and {@code backpropGradient} (backward, writing into DL4J's gradient views) side by side.
 */
public abstract class GptLayer<C extends GptLayerConf> extends BaseLayer<C> {

    protected GptLayer(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    protected INDArray param(String name) { return params.get(name); }

    /** The precision of this layer's matrix products (null: the network's own type). */
    protected DataType ct() { return layerConf().computeType(); }

    protected INDArray grad(String name) { return gradientViews.get(name); }

    /** All of this layer's gradient views, keyed by parameter name, as DL4J's updater expects. */
    protected Gradient gradientsOut() {
        Gradient g = new DefaultGradient(gradientsFlattened);
        for (ParamSpec s : layerConf().paramSpecs()) g.gradientForVariable().put(s.name(), gradientViews.get(s.name()));
        this.gradient = g;
        return g;
    }

    /** The input as [B, T, C] in the network's data type. */
    protected INDArray input3d() {
        assertInputSet(false);
        if (input.rank() != 3 || input.size(2) != layerConf().getNEmbd())
            throw new IllegalStateException(layerId() + ": expected input [B, T, " + layerConf().getNEmbd() + "], got "
                    + java.util.Arrays.toString(input.shape()));
        return input.castTo(dataType);
    }

    /**
     * Scope for a forward pass: everything it allocates (what backward needs, and the output) goes to
     * DL4J's activations workspace, which lives until the end of the training iteration; temporaries of
     * backward go to DL4J's per-layer working memory. Outside any workspace (workspaces off, or detached
     * output), allocations are ordinary.
     */
    protected static MemoryWorkspace forwardScope(LayerWorkspaceMgr mgr) {
        if (!mgr.isScopedOut(ArrayType.ACTIVATIONS) && mgr.hasConfiguration(ArrayType.ACTIVATIONS)
                && mgr.isWorkspaceOpen(ArrayType.ACTIVATIONS))
            return mgr.notifyScopeBorrowed(ArrayType.ACTIVATIONS);
        return Nd4j.getWorkspaceManager().scopeOutOfWorkspaces();
    }

    /** Runs {@code body} outside every workspace: for arrays kept across iterations (masks, tables). */
    protected static INDArray detached(java.util.function.Supplier<INDArray> body) {
        try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().scopeOutOfWorkspaces()) {
            return body.get();
        }
    }

    protected Pair<Gradient, INDArray> result(INDArray epsilonOut, LayerWorkspaceMgr mgr) {
        return new Pair<>(gradientsOut(), epsilonOut == null ? null : mgr.leverageTo(ArrayType.ACTIVATION_GRAD, epsilonOut));
    }

    /** Inverted dropout mask (scaled by 1/keep), or null when not dropping. */
    protected INDArray dropoutMask(boolean training, long... shape) {
        double p = layerConf().getDropout();
        if (!training || p <= 0) return null;
        return Nd4j.rand(dataType, shape).gt(p).castTo(dataType).divi(1.0 - p);
    }

    /**
     * AdamW's weight decay is decoupled from the objective (the score is the loss alone, see LmHead), so DL4J's
     * L2 penalty term, a norm2 of every decayed matrix each step, would be computed only to be ignored.
     */
    @Override public double calcRegularizationScore(boolean backpropParamsOnly) { return 0; }

    @Override public boolean isPretrainLayer() { return false; }

    @Override public Type type() { return Type.RECURRENT; }

    @Override public void clear() {
        super.clear();
        clearCache();
    }

    /** Drop what the forward pass cached for backward. */
    protected abstract void clearCache();
}
