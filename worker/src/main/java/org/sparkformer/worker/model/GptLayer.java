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

import java.util.ArrayDeque;
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

    /** The shape {@code forward} returns for an input of shape {@code in}. */
    protected long[] outputShape(long[] in) { return new long[]{in[0], in[1], layerConf().outputSize()}; }

    /** Whether {@code backward} returns an input gradient (the embedding's input is token ids). */
    protected boolean hasInputGradient() { return true; }

    /** Gives a shard what else its rows need (the head: their labels). */
    protected void prepareShard(GptLayer<?> shard, long from, long to) {}

    /** After a sharded backward: sums shards 1..K-1's gradients into this layer's, in ranges split over the helpers. */
    protected void mergeShards(GptLayer<?>[] shards) {
        for (int k = 1; k < shards.length; k++) Shards.splitPair(gradientsFlattened, shards[k].gradientsFlattened, INDArray::addi);
    }

    /*
     * A chain: layers that each read the previous one's output as is and hand their input gradient back to it as is
     * (the embedding, the blocks, the head). Once a pass has shown the links, the next pass hands the helpers every
     * layer's forward at the chain's first layer, and every backward from the head down either with them (when the
     * head has its labels before the forward: GptGraph) or when the caller reaches the head. A helper then runs its
     * rows through the whole stack without waiting for the caller to reach each layer: layer by layer, a helper that
     * finished a layer first waited for the caller (which also does DL4J's bookkeeping between layers) and for its own
     * wake-up, 2.5 of tiny's 41 ms per step. Outputs and input gradients are arrays of the layer's own, kept from step
     * to step, so that a helper can write its rows of a layer before the caller gets there.
     */
    private GptLayer<?> prev, next;     // the sharded layer whose output this one read last, and the one that read this one's
    private boolean nextLinked;         // next's input gradient came back to this layer as its epsilon, as is
    private INDArray output;            // this layer's sharded output, written by every shard
    private INDArray chainInput;        // the input this pass's shards were given
    private long seed;                  // this pass's dropout seed; shard k draws its masks from seed + k

    private record Ahead(GptLayer<?> layer, boolean forward) {}

    /** On a calling thread: layers whose helper tasks were queued ahead, in the order the caller reaches them. */
    private static final ThreadLocal<ArrayDeque<Ahead>> AHEAD = ThreadLocal.withInitial(ArrayDeque::new);
    /** On a calling thread: the layer whose sharded forward ran last in this pass. */
    private static final ThreadLocal<GptLayer<?>[]> LAST = ThreadLocal.withInitial(() -> new GptLayer<?>[1]);

    /** Shard 0 here; the helpers' rows were queued with the chain, or are queued now (with this layer's linked successors). */
    private INDArray shardedForward(boolean training) {
        GptLayer<?>[] last = LAST.get();
        if (!(reached(true) && input == chainInput)) {
            dropAhead();
            link(last[0]);
            queueForwards(training);
        }
        last[0] = this;
        GptLayer<?>[] s = shards();
        long[] at = Shards.bounds(input.size(0), s.length);
        INDArray in = input, out = output;
        Shards.here(() -> forwardShard(s[0], at, 0, in, out, training));
        return out;
    }

    /**
     * Queues the helpers' rows of this layer's forward and of every linked layer after it up to the head; then the
     * backwards from the head down too, if the head already has this pass's labels.
     */
    private void queueForwards(boolean training) {
        long[] at = Shards.bounds(input.size(0), Shards.count());
        INDArray in = input;
        for (GptLayer<?> l = this; ; l = l.next) {
            l.chainInput = in;
            l.seed = l.layerConf().getDropout() > 0 ? Nd4j.getRandom().nextLong() : 0;
            l.output = l.ownArray(l.output, l.outputShape(in.shape()));
            GptLayer<?> layer = l;
            GptLayer<?>[] s = l.shards();
            INDArray lin = in, out = l.output;
            Shards.queue(s.length, k -> layer.forwardShard(s[k], at, k, lin, out, training));
            if (l != this) AHEAD.get().add(new Ahead(l, true));
            in = l.output;
            if (!(l.nextLinked && l.next.prev == l)) return;
            if (l.next instanceof IOutputLayer) {
                if (l.next.labelsForPass(in)) {
                    l.next.chainInput = in;
                    l.next.queueBackwards(null, true);
                }
                return;
            }
        }
    }

    private void forwardShard(GptLayer<?> shard, long[] at, int k, INDArray in, INDArray out, boolean training) {
        shard.input = rows(in, at[k], at[k + 1]);
        prepareShard(shard, at[k], at[k + 1]);
        if (layerConf().getDropout() > 0) Nd4j.getRandom().setSeed(seed + k);
        Runnable body = () -> rows(out, at[k], at[k + 1]).assign(shard.forward(training));
        if (k == 0) body.run();
        else Shards.forwardIn(shard, shard.workspaceId, body);
    }

    /**
     * An output layer given its labels before the forward pass, for activations {@code lastActivations}: its
     * backward (and the layers' below) can be queued with the forwards.
     */
    protected boolean labelsForPass(INDArray lastActivations) { return false; }

    /**
     * Shard 0 here; the helpers' rows were queued ahead, or are queued now (with this layer's linked
     * predecessors). Not waited for when the epsilon is a layer's own input-gradient array: each helper's next task
     * (the layer below's shard) is the only reader of its rows, and the gradients are merged at the next
     * {@link Shards#awaitPending} (the head's score, or {@link #clear}). An epsilon in one of DL4J's workspaces, which
     * DL4J recycles once this returns, is waited for.
     */
    private INDArray shardedBackward(INDArray epsilon) {
        boolean head = this instanceof IOutputLayer;
        if (head) {     // its forward runs here, on the last layer's output; the pass's forwards are over
            GptLayer<?>[] last = LAST.get();
            link(last[0]);
            last[0] = null;     // a thread keeps no layer of a network it no longer trains
        }
        Ahead first = AHEAD.get().peekFirst();
        if (reached(false)) {
            if (epsilon != (next == null ? null : next.inputGradient) || head && (input != chainInput || !labelsForPass(input)))
                throw new IllegalStateException(layerId() + ": not the input, labels or gradient from above that the "
                        + "helpers were given: the layers' order changed within a pass");
        } else {
            if (first != null && !first.forward())
                throw new IllegalStateException(layerId() + ": backward reached before " + first.layer().layerId()
                        + "'s, whose helper rows already ran: the layers' order changed within a pass");
            dropAhead();
            if (head) chainInput = input;
            if (next != null) nextLinked = epsilon != null && epsilon == next.inputGradient;
            queueBackwards(epsilon, false);
        }
        GptLayer<?>[] s = shards();
        long[] at = Shards.bounds(input.size(0), s.length);
        INDArray dx = hasInputGradient() ? inputGradient : null, in = input;
        Shards.here(() -> backwardShard(s[0], at, 0, in, epsilon, dx));
        Shards.whenDone(() -> mergeShards(s));
        if (epsilon != null && epsilon.isAttached()) Shards.awaitPending();
        return dx;
    }

    /** Queues the helpers' rows of this layer's backward and of every linked layer before it (all ahead of the caller, or after this one). */
    private void queueBackwards(INDArray epsilon, boolean ahead) {
        long[] at = Shards.bounds(chainInput.size(0), Shards.count());
        INDArray eps = epsilon;
        for (GptLayer<?> l = this; ; l = l.prev) {
            INDArray dx = l.hasInputGradient() ? l.inputGradient = l.ownArray(l.inputGradient, l.chainInput.shape()) : null;
            GptLayer<?> layer = l;
            GptLayer<?>[] s = l.shards();
            INDArray in = l.chainInput, e = eps;
            Shards.queue(s.length, k -> layer.backwardShard(s[k], at, k, in, e, dx));
            if (ahead || l != this) AHEAD.get().add(new Ahead(l, false));
            eps = dx;
            if (l.prev == null || !l.prev.nextLinked || l.prev.next != l) return;
        }
    }

    private void backwardShard(GptLayer<?> shard, long[] at, int k, INDArray in, INDArray epsilon, INDArray dx) {
        if (this instanceof IOutputLayer) {     // its forward runs in its backward
            shard.input = rows(in, at[k], at[k + 1]);
            prepareShard(shard, at[k], at[k + 1]);
        }
        INDArray eps = epsilon == null ? null : rows(epsilon, at[k], at[k + 1]);
        Runnable body = () -> {
            INDArray d;
            try {
                d = shard.backward(eps);
            } finally {
                Shards.awaitHanded();   // products handed to another thread read this backward's arrays
            }
            if (dx != null) rows(dx, at[k], at[k + 1]).assign(d);
        };
        if (k == 0) body.run();
        else Shards.backwardIn(shard, shard.workspaceId, body);
    }

    /** Whether the next layer queued ahead is this one, in this direction (then it is taken off the queue). */
    private boolean reached(boolean forward) {
        Ahead a = AHEAD.get().peekFirst();
        if (a == null || a.layer() != this || a.forward() != forward) return false;
        AHEAD.get().removeFirst();
        return true;
    }

    /** Layers queued ahead that the caller did not reach in order (a pass cut short): waits for their helper rows, forgets them. */
    private static void dropAhead() {
        ArrayDeque<Ahead> ahead = AHEAD.get();
        if (ahead.isEmpty()) return;
        ahead.clear();
        Shards.awaitPending();
    }

    /** This layer reads {@code last}'s output as is: they are linked (confirmed by the backward, see nextLinked). */
    private void link(GptLayer<?> last) {
        GptLayer<?> p = last != null && last != this && last.output != null && input == last.output ? last : null;
        if (prev != null && prev != p && prev.next == this) {
            prev.next = null;
            prev.nextLinked = false;
        }
        prev = p;
        if (p != null && p.next != this) {
            p.next = this;
            p.nextLinked = false;
        }
    }

    private INDArray inputGradient;

    /** {@code current} if it has this shape and the layer's type, else a new array outside every workspace (DL4J passes it on as is). */
    private INDArray ownArray(INDArray current, long[] shape) {
        if (current != null && java.util.Arrays.equals(current.shape(), shape) && current.dataType() == dataType) return current;
        return detached(() -> Nd4j.createUninitialized(dataType, shape, 'c'));
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
