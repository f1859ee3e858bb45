package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.layers.IOutputLayer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.workspace.LayerWorkspaceMgr;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.DataSet;
import org.nd4j.linalg.dataset.api.iterator.DataSetIterator;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.ops.transforms.Transforms;

import java.util.ArrayList;
import java.util.List;

/**
 * Final LayerNorm, LM head and softmax cross-entropy at every position: the graph's output layer.
 * Input [B, T, C]; labels [B, T] next-token ids; {@code activate} gives logits [B, T, V]; the score is
 * the mean cross-entropy over all B*T positions (its gradient is exact: the graph runs with
 * miniBatch(false), so DL4J does not divide it again). Weight decay is decoupled (AdamW) and so is not
 * part of the score.
 *
 * <p>Tied head: the weight is the embedding's wte [V, C]. DL4J gives each layer only its own slice of
 * the flattened parameter and gradient vectors, so the head reaches wte through the same buffer at the
 * known offset {@code wteOffset} (negative: wte lies before the head). Backward overwrites wte's
 * gradient; TokenEmbedding, which runs after it in backprop, adds its own part.
 *
 * <p>Distillation: labels [B, T, 1 + V] carry the next-token id in channel 0 and a teacher's logits after
 * it; the loss is then α·CE + (1−α)·τ²·KL(softmax(teacher/τ) ‖ softmax(student/τ)), whose gradient with
 * respect to the student's logits is α(p − onehot) + (1−α)·τ·(softmax(student/τ) − softmax(teacher/τ)),
 * each over N. Plain [B, T] labels (evaluation) give the cross-entropy alone.
 */
public class LmHead extends GptLayerConf {
    public static final String LNG = "lng", LNB = "lnb", WLM = "wlm";

    private int vocabSize;
    private boolean tied;
    private long wteOffset;
    private double distillAlpha = 1.0, distillTemperature = 1.0;

    protected LmHead() {}

    /** @param wteOffset position of wte's first element relative to this layer's first parameter (tied only). */
    public LmHead(String name, GptConfig c, long wteOffset) {
        super(name, c.nEmbd, c.blockSize, 0.0);
        this.vocabSize = c.vocabSize;
        this.tied = c.tiedHead;
        this.wteOffset = wteOffset;
        this.distillAlpha = c.distillAlpha;
        this.distillTemperature = c.distillTemperature;
    }

    public int getVocabSize() { return vocabSize; }
    public double getDistillAlpha() { return distillAlpha; }
    public double getDistillTemperature() { return distillTemperature; }
    public boolean isTied() { return tied; }
    public long getWteOffset() { return wteOffset; }

    @Override protected long outputSize() { return vocabSize; }

    @Override public List<ParamSpec> paramSpecs() {
        List<ParamSpec> p = new ArrayList<>(List.of(ParamSpec.ones(LNG, nEmbd), ParamSpec.zeros(LNB, nEmbd)));
        if (!tied) p.add(ParamSpec.matrix(WLM, vocabSize, nEmbd, 0.02));
        return p;
    }

    @Override protected GptLayer<?> newLayer(NeuralNetConfiguration conf, DataType dataType) {
        return new Impl(conf, dataType);
    }

    public static final class Impl extends GptLayer<LmHead> implements IOutputLayer {
        private INDArray labels;
        private INDArray tiedW, tiedGrad;
        private long b, t;
        // cache of the last loss evaluation, reused by computeScore after backprop on the same arrays
        private INDArray cachedInput, cachedLabels;
        private double cachedLoss;
        private LayerNorm.Cache ln;
        private INDArray h, dlogits;

        Impl(NeuralNetConfiguration conf, DataType dataType) { super(conf, dataType); }

        @Override public void setParamsViewArray(INDArray view) {
            super.setParamsViewArray(view);
            if (layerConf().tied) tiedW = viewAt(view, layerConf().wteOffset);
        }

        @Override public void setBackpropGradientsViewArray(INDArray view) {
            super.setBackpropGradientsViewArray(view);
            LmHead cfg = layerConf();
            if (cfg.tied) tiedGrad = ownGradients ? detached(() -> Nd4j.create(dataType, cfg.vocabSize, cfg.nEmbd)) : viewAt(view, cfg.wteOffset);
        }

        private INDArray viewAt(INDArray ownSlice, long relative) {
            LmHead cfg = layerConf();
            // a view's offset() counts from the start of the original buffer, not of the view's own buffer
            DataBuffer base = ownSlice.data().originalDataBuffer() != null ? ownSlice.data().originalDataBuffer() : ownSlice.data();
            return Nd4j.create(base, new long[]{cfg.vocabSize, cfg.nEmbd}, new long[]{cfg.nEmbd, 1},
                    ownSlice.offset() + relative, 'c', ownSlice.dataType());
        }

        /** The head's weight [V, C]: the embedding table when tied. */
        public INDArray weight() { return layerConf().tied ? tiedW : param(WLM); }

        private INDArray weightGrad() { return layerConf().tied ? tiedGrad : grad(WLM); }

        /** logits = LN_f(x) · Wᵀ, [N, V]; keeps LN cache and h for backward. */
        private INDArray logits2d(INDArray x) {
            long c = layerConf().nEmbd;
            b = x.size(0);
            t = x.size(1);
            LayerNorm.Cache[] lnCache = new LayerNorm.Cache[1];
            h = LayerNorm.forward(x.reshape(b * t, c), param(LNG), param(LNB), lnCache);
            ln = lnCache[0];
            return Gemm.mm(h, false, weight(), true, ct());
        }

        @Override
        protected INDArray forward(boolean training) {
            INDArray logits = logits2d(input3d());
            return logits.reshape(b, t, layerConf().vocabSize);
        }

        /** Positions the loss is averaged over: the whole batch's when this is one shard of it (0: this input's). */
        private long lossRows;

        /**
         * Mean cross-entropy (or the distillation loss); also leaves dlogits = dLoss/dlogits for backward. A shard
         * divides by the whole batch's positions, so that the shards' losses and gradients add up to the batch's.
         */
        private double lossAndDlogits() {
            INDArray x = input3d();
            INDArray logits = logits2d(x);
            long n = b * t, mean = lossRows > 0 ? lossRows : n;
            boolean distill = labels.rank() == 3;
            INDArray hard = distill ? labels.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.point(0)) : labels;
            int[] y = hard.castTo(DataType.INT32).reshape(n).toIntVector();
            INDArray z = dense(logits.subColumnVector(logits.max(true, 1)));
            INDArray e = Transforms.exp(z, true);
            INDArray sum = e.sum(true, 1);
            INDArray logSum = dense(Transforms.log(sum, true));
            // per position through the buffers: getDouble(i, j) and putScalar build index arrays on every call
            DataBuffer zs = z.data(), logSums = logSum.data();
            long v = layerConf().vocabSize;
            double total = 0;
            for (int i = 0; i < n; i++) {
                if (y[i] < 0 || y[i] >= v) throw new IllegalArgumentException("label " + y[i] + " outside vocabulary");
                total += logSums.getDouble(i) - zs.getDouble(i * v + y[i]);
            }
            INDArray probs = e.diviColumnVector(sum);
            DataBuffer ps = probs.data();
            for (int i = 0; i < n; i++) ps.put(i * v + y[i], ps.getDouble(i * v + y[i]) - 1.0);
            dlogits = probs.divi(mean);
            double loss = total / mean;
            if (distill) {
                LmHead cfg = layerConf();
                double alpha = cfg.distillAlpha, tau = cfg.distillTemperature;
                INDArray teacher = labels.get(NDArrayIndex.all(), NDArrayIndex.all(), NDArrayIndex.interval(1, 1 + cfg.vocabSize))
                        .dup('c').reshape(n, cfg.vocabSize).castTo(dataType);
                INDArray logPt = logSoftmax(teacher.div(tau)), logPs = logSoftmax(logits.div(tau));
                INDArray pt = Transforms.exp(logPt, true);
                double kl = pt.mul(logPt.sub(logPs)).sumNumber().doubleValue() / mean;
                INDArray dKl = Transforms.exp(logPs, true).subi(pt).muli(tau * (1 - alpha) / mean);   // τ²·(1/τ)·(ps − pt)
                dlogits.muli(alpha).addi(dKl);
                loss = alpha * loss + (1 - alpha) * tau * tau * kl;
            }
            cachedInput = input;
            cachedLabels = labels;
            cachedLoss = loss;
            return cachedLoss;
        }

        /** a, or a row-major copy when a is a view: element [i, j] of the result is its buffer's i * columns + j. */
        private static INDArray dense(INDArray a) {
            return a.isView() || a.ordering() != 'c' || a.offset() != 0 ? a.dup('c') : a;
        }

        private static INDArray logSoftmax(INDArray z) {
            INDArray shifted = z.subColumnVector(z.max(true, 1));
            return shifted.subiColumnVector(Transforms.log(Transforms.exp(shifted, true).sum(true, 1), true));
        }

        /** The loss scale the last backward pass multiplied every gradient by (float16: {@link LossScaler}). */
        private double usedLossScale = 1;

        public double usedLossScale() { return usedLossScale; }

        @Override
        protected INDArray backward(INDArray epsilon) {
            lossAndDlogits();
            // float16 products: scale the loss so that small gradients survive the cast to 16 bits (unscaled by LossScaler)
            usedLossScale = ct() == DataType.HALF ? LossScaler.current() : 1;
            if (usedLossScale != 1) dlogits.muli(usedLossScale);
            Gemm.into(weightGrad(), dlogits, true, h, false, ct());                  // [V, C]
            INDArray dh = Gemm.mm(dlogits, false, weight(), false, ct());             // [N, C]
            INDArray dx = LayerNorm.backward(dh, ln, param(LNG), grad(LNG), grad(LNB));
            dlogits = null;
            return dx.reshape(b, t, layerConf().nEmbd);
        }

        @Override
        protected void prepareShard(GptLayer<?> shard, long from, long to) {
            Impl head = (Impl) shard;
            head.labels = rows(labels, from, to);
            head.lossRows = labels.size(0) * labels.size(1);
        }

        @Override
        protected void mergeShards(GptLayer<?>[] shards) {
            super.mergeShards(shards);
            double loss = 0;
            for (GptLayer<?> s : shards) {
                Impl head = (Impl) s;
                if (head != shards[0] && layerConf().tied) tiedGrad.addi(head.tiedGrad);
                loss += head.cachedLoss;
            }
            usedLossScale = ((Impl) shards[0]).usedLossScale;
            cachedInput = input;
            cachedLabels = labels;
            cachedLoss = loss;
        }

        @Override
        public double computeScore(double fullNetRegTerm, boolean training, LayerWorkspaceMgr mgr) {
            Shards.awaitPending();     // a training forward without backward: the input's helper rows
            // AdamW's weight decay is decoupled from the objective: the score is the cross-entropy alone
            double loss = (cachedInput == input && cachedLabels == labels) ? cachedLoss : lossAndDlogits();
            dlogits = null;
            this.score = loss;
            return score;
        }

        @Override
        public INDArray computeScoreForExamples(double fullNetRegTerm, LayerWorkspaceMgr mgr) {
            Shards.awaitPending();
            INDArray x = input3d();
            INDArray logits = logits2d(x);
            long n = b * t;
            int[] y = labels.castTo(DataType.INT32).reshape(n).toIntVector();
            INDArray z = logits.subColumnVector(logits.max(true, 1));
            INDArray logSum = Transforms.log(Transforms.exp(z, true).sum(true, 1), true);
            double[] perExample = new double[(int) b];
            for (int i = 0; i < n; i++) perExample[(int) (i / t)] += (logSum.getDouble(i, 0) - z.getDouble(i, y[i])) / t;
            return Nd4j.create(perExample, new long[]{b, 1}, dataType);
        }

        /** This pass's labels, given before its forward pass ({@link GptGraph}); null outside such a pass. */
        private INDArray passLabels;

        void labelsBeforeForward(INDArray labels) {
            passLabels = labels;
            if (labels != null) this.labels = labels;
        }

        @Override protected boolean labelsForPass(INDArray lastActivations) {
            return passLabels != null && labels == passLabels && passLabels.size(0) == lastActivations.size(0);
        }

        @Override public boolean needsLabels() { return true; }
        @Override public void setLabels(INDArray labels) { this.labels = labels; }
        @Override public INDArray getLabels() { return labels; }

        @Override protected void clearCache() {
            ln = null; h = dlogits = null; cachedInput = cachedLabels = null;
        }

        // Classifier API: not meaningful for a language model.
        @Override public double f1Score(org.nd4j.linalg.dataset.api.DataSet data) { throw unsupported(); }
        @Override public double f1Score(INDArray examples, INDArray labels) { throw unsupported(); }
        @Override public int numLabels() { return layerConf().vocabSize; }
        @Override public void fit(DataSetIterator iter) { throw unsupported(); }
        @Override public int[] predict(INDArray examples) { throw unsupported(); }
        @Override public List<String> predict(DataSet dataSet) { throw unsupported(); }
        @Override public void fit(INDArray examples, INDArray labels) { throw unsupported(); }
        @Override public void fit(DataSet data) { throw unsupported(); }
        @Override public void fit(INDArray examples, int[] labels) { throw unsupported(); }

        private static UnsupportedOperationException unsupported() {
            return new UnsupportedOperationException("LmHead is trained through the ComputationGraph");
        }
    }
}
