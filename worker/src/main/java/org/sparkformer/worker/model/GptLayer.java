package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.layers.IOutputLayer;
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
import org.nd4j.linalg.indexing.INDArrayIndex;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.common.primitives.Pair;

import java.util.Map;
import java.util.concurrent.atomic.AtomicLong;

/**
 * Runtime side of our layers: each subclass writes {@code forward} (caching what backward needs) and
 * {@code backward} (writing into DL4J's gradient views) side by side. In training with {@link Shards} the batch
 * is split by sequences over shard copies of the layer that share its parameters; their gradients are summed.
 */
public abstract class GptLayer<C extends GptLayerConf> extends BaseLayer<C> {

    protected GptLayer(NeuralNetConfiguration conf, DataType dataType) {
        super(conf, dataType);
    }

    /** This layer's forward on its input; caches what backward needs. Allocates in the current workspace. */
    protected abstract INDArray forward(boolean training);

    /** This layer's backward: writes its parameter gradients into its views; returns the input's gradient, or null. */
    protected abstract INDArray backward(INDArray epsilon);

    @Override
    public INDArray activate(boolean training, LayerWorkspaceMgr mgr) {
        try (MemoryWorkspace ws = forwardScope(mgr)) {
            assertInputSet(false);
            shardedPass = training && shardable();
            if (shardedPass) return shardedForward(training);
            Shards.awaitPending();      // the input may be a sharded layer's output whose helper rows are still coming
            return forward(training);
        }
    }

    @Override
    public Pair<Gradient, INDArray> backpropGradient(INDArray epsilon, LayerWorkspaceMgr mgr) {
        // an output layer's forward runs inside its backward
        if (this instanceof IOutputLayer) {
            assertInputSet(true);
            shardedPass = shardable();
        }
        if (shardedPass) return result(shardedBackward(epsilon), mgr);
        Shards.awaitPending();
        return result(backward(epsilon), mgr);
    }

    /* ---- shards: copies of this layer sharing its parameters, each given whole sequences of the batch ---- */

    /** Training in shards, and more than one sequence to share out. */
    private boolean shardable() { return Shards.count() > 1 && input.size(0) > 1; }

    private static final AtomicLong SHARD_IDS = new AtomicLong();
    private GptLayer<?>[] shards;
    private boolean shardedPass;
    /** On shards 1..K-1: gradients go to views of their own, summed into the layer's after each backward. */
    protected boolean ownGradients;
    private String workspaceId;

    private GptLayer<?>[] shards() {
        int k = Shards.count();
        if (shards == null || shards.length != k) {
            shards = new GptLayer<?>[k];
            for (int i = 0; i < k; i++) shards[i] = newShard(i > 0);
        }
        return shards;
    }

    private GptLayer<?> newShard(boolean ownGradients) {
        GptLayer<?> s = layerConf().newLayer(conf, dataType);
        s.ownGradients = ownGradients;
        s.workspaceId = "sparkformer-shard-" + SHARD_IDS.incrementAndGet();
        s.setIndex(index);
        connect(s);
        return s;
    }

    /** A shard reads this layer's parameters; shard 0 writes this layer's gradient views, the others their own. */
    private void connect(GptLayer<?> s) {
        s.params = params;
        if (paramsFlattened != null) s.setParamsViewArray(paramsFlattened);
        if (gradientsFlattened == null) return;     // DL4J makes the gradient views at the first backward
        if (!s.ownGradients) s.setBackpropGradientsViewArray(gradientsFlattened);
        else if (s.gradientsFlattened == null) s.setBackpropGradientsViewArray(detached(() -> Nd4j.create(dataType, gradientsFlattened.shape())));
    }

    /** The shape {@code forward} returns for this layer's input. */
    protected long[] outputShape() { return new long[]{input.size(0), input.size(1), layerConf().outputSize()}; }

    /** Whether {@code backward} returns an input gradient (the embedding's input is token ids). */
    protected boolean hasInputGradient() { return true; }

    /** Gives a shard what else its rows need (the head: their labels). */
    protected void prepareShard(GptLayer<?> shard, long from, long to) {}

    /** After a sharded backward: sums shards 1..K-1's gradients into this layer's. */
    protected void mergeShards(GptLayer<?>[] shards) {
        for (int k = 1; k < shards.length; k++) gradientsFlattened.addi(shards[k].gradientsFlattened);
    }

    /**
     * Shard 0 here, the others on the helpers, without waiting for them: their rows of the output are read next by
     * the same helper (the next layer's shard) and by nothing else before a backward or an {@code awaitPending}.
     * Every activation stays in DL4J's activations workspace until the iteration ends, so the rows stay valid.
     */
    private INDArray shardedForward(boolean training) {
        GptLayer<?>[] s = shards();
        long[] at = Shards.bounds(input.size(0), s.length);
        INDArray out = Nd4j.createUninitialized(dataType, outputShape());
        boolean dropout = layerConf().getDropout() > 0;
        long seed = dropout ? Nd4j.getRandom().nextLong() : 0;   // each shard's masks follow the caller's seed
        Shards.start(s.length, k -> {
            GptLayer<?> shard = s[k];
            shard.input = rows(input, at[k], at[k + 1]);
            prepareShard(shard, at[k], at[k + 1]);
            if (dropout) Nd4j.getRandom().setSeed(seed + k);
            Runnable body = () -> rows(out, at[k], at[k + 1]).assign(shard.forward(training));
            if (k == 0) body.run();
            else Shards.forwardIn(shard, shard.workspaceId, body);
        });
        return out;
    }

    /**
     * All shards at once. The input gradient goes to an array of this layer's own, kept from step to step: when the
     * epsilon is such an array too (the layer above was sharded), nothing here is reused by DL4J before the step ends,
     * so the helpers are not waited for: each helper's next task (the layer below's shard) is the only reader of its
     * rows, and the gradients are merged at the next {@link Shards#awaitPending} (the head's score, or {@link #clear}).
     * An epsilon in one of DL4J's workspaces, which DL4J recycles once this returns, is waited for.
     */
    private INDArray shardedBackward(INDArray epsilon) {
        GptLayer<?>[] s = shards();
        long[] at = Shards.bounds(input.size(0), s.length);
        INDArray dx = hasInputGradient() ? inputGradientArray() : null;
        Shards.start(s.length, k -> {
            GptLayer<?> shard = s[k];
            if (this instanceof IOutputLayer) {
                shard.input = rows(input, at[k], at[k + 1]);
                prepareShard(shard, at[k], at[k + 1]);
            }
            INDArray eps = epsilon == null ? null : rows(epsilon, at[k], at[k + 1]);
            Runnable body = () -> {
                INDArray d = shard.backward(eps);
                if (dx != null) rows(dx, at[k], at[k + 1]).assign(d);
            };
            if (k == 0) body.run();
            else Shards.backwardIn(shard, shard.workspaceId, body);
        });
        Shards.whenDone(() -> mergeShards(s));
        if (epsilon != null && epsilon.isAttached()) Shards.awaitPending();
        return dx;
    }

    private INDArray inputGradient;

    /** This layer's input-gradient array for the current input's shape, outside every workspace (DL4J passes it on as is). */
    private INDArray inputGradientArray() {
        if (inputGradient == null || !java.util.Arrays.equals(inputGradient.shape(), input.shape()) || inputGradient.dataType() != dataType)
            inputGradient = detached(() -> Nd4j.createUninitialized(dataType, input.shape(), 'c'));
        return inputGradient;
    }

    /** Rows [from, to) of the first axis, as a view. */
    static INDArray rows(INDArray a, long from, long to) {
        INDArrayIndex[] ix = new INDArrayIndex[a.rank()];
        ix[0] = NDArrayIndex.interval(from, to);
        for (int i = 1; i < ix.length; i++) ix[i] = NDArrayIndex.all();
        return a.get(ix);
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
        Shards.awaitPending();
        super.clear();
        clearCache();
        if (shards != null) for (GptLayer<?> s : shards) { s.input = null; s.clearCache(); }
    }

    // new parameter or gradient arrays: the shards follow
    @Override public void setParamsViewArray(INDArray view) {
        super.setParamsViewArray(view);
        if (shards != null) for (GptLayer<?> s : shards) connect(s);
    }

    @Override public void setBackpropGradientsViewArray(INDArray view) {
        super.setBackpropGradientsViewArray(view);
        if (shards != null) for (GptLayer<?> s : shards) connect(s);
    }

    @Override public void setParamTable(Map<String, INDArray> table) {
        super.setParamTable(table);
        if (shards != null) for (GptLayer<?> s : shards) connect(s);
    }

    /** Drop what the forward pass cached for backward. */
    protected abstract void clearCache();
}
