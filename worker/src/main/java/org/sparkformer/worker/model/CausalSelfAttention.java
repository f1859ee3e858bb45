package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.List;

/**
 * First half of a pre-LN block: x + Wo · attn(LN1(x)), where attn is causal multi-head attention
 * softmax(Q Kᵀ / √D + causal mask) · V with Q, K, V from one [C, 3C] projection.
 * Dropout on the attention weights and on the residual branch. In/out [B, T, C].
 */
public class CausalSelfAttention extends GptLayerConf {
    public static final String LNG = "lng", LNB = "lnb", WQKV = "wqkv", BQKV = "bqkv", WO = "wo", BO = "bo";

    private int nHead;
    private int nLayer;

    protected CausalSelfAttention() {}

    public CausalSelfAttention(String name, GptConfig c) {
        super(name, c.nEmbd, c.blockSize, c.dropout);
        this.nHead = c.nHead;
        this.nLayer = c.nLayer;
    }

    public int getNHead() { return nHead; }
    public int getNLayer() { return nLayer; }

    @Override public List<ParamSpec> paramSpecs() {
        return List.of(
                ParamSpec.ones(LNG, nEmbd), ParamSpec.zeros(LNB, nEmbd),
                ParamSpec.matrix(WQKV, nEmbd, 3L * nEmbd, 0.02), ParamSpec.zeros(BQKV, 3L * nEmbd),
                // GPT-2: residual projections scaled by 1/sqrt(2 L)
                ParamSpec.matrix(WO, nEmbd, nEmbd, 0.02 / Math.sqrt(2.0 * nLayer)), ParamSpec.zeros(BO, nEmbd));
    }

    @Override protected GptLayer<?> newLayer(NeuralNetConfiguration conf, DataType dataType) {
        return new Impl(conf, dataType);
    }

    /**
     * [T, T] additive mask: 0 on and below the diagonal, -inf above it (exp(-inf) is 0 at once; a large finite negative
     * number sent every masked entry through libm's underflow path, which sets errno: 2-3% of a step in perf).
     */
    static INDArray causalMask(long t, DataType dataType) {
        INDArray m = Nd4j.zeros(dataType, t, t);
        for (int i = 0; i < t; i++)
            if (i + 1 < t) m.get(NDArrayIndex.point(i), NDArrayIndex.interval(i + 1, t)).assign(Double.NEGATIVE_INFINITY);
        return m;
    }

    public static final class Impl extends GptLayer<CausalSelfAttention> {
        private long b, t;
        private LayerNorm.Cache ln;
        private INDArray h, q, k, v, p, pDropped, attnMask, residMask, y, causal;
        private long causalT = -1;

        Impl(NeuralNetConfiguration conf, DataType dataType) { super(conf, dataType); }

        @Override
        protected INDArray forward(boolean training) {
            CausalSelfAttention cfg = layerConf();
            INDArray x = input3d();
            b = x.size(0);
            t = x.size(1);
            long c = cfg.nEmbd, nh = cfg.nHead, d = c / nh, n = b * t;
            INDArray x2 = x.reshape(n, c);

            LayerNorm.Cache[] lnCache = new LayerNorm.Cache[1];
            h = LayerNorm.forward(x2, param(LNG), param(LNB), lnCache);
            ln = lnCache[0];
            INDArray qkv = Gemm.mm(h, false, param(WQKV), false, ct()).addiRowVector(param(BQKV));        // [N, 3C]
            // [B,T,3,H,D] -> [3,B,H,T,D]: one copy gives q, k, v laid out per head
            INDArray heads = qkv.reshape(b, t, 3, nh, d).permute(2, 0, 3, 1, 4).dup('c');
            // q carries the 1/sqrt(D) scale: [B,H,T,D], T/D times fewer elements than the scores (and their gradient)
            q = heads.get(NDArrayIndex.point(0)).muli(scale(d));
            k = heads.get(NDArrayIndex.point(1));
            v = heads.get(NDArrayIndex.point(2));

            INDArray att = Gemm.mm(q, false, k, true, ct());                            // [B,H,T,T]
            if (causalT != t) {
                final long len = t;
                causal = detached(() -> causalMask(len, dataType).reshape(1, len * len));
                causalT = t;
            }
            att.reshape(b * nh, t * t).addiRowVector(causal);
            p = Nd4j.exec(new SoftMax(att, att, 3))[0];   // in place: out of place is 2 ms faster here but keeps B·H·T² more floats per layer
            attnMask = dropoutMask(training, b, nh, t, t);
            pDropped = attnMask == null ? p : p.mul(attnMask);
            INDArray yh = Gemm.mm(pDropped, false, v, false, ct());                                    // [B,H,T,D]
            y = yh.permute(0, 2, 1, 3).dup('c').reshape(n, c);                        // [N, C]

            INDArray out = Gemm.mm(y, false, param(WO), false, ct()).addiRowVector(param(BO));
            residMask = dropoutMask(training, n, c);
            if (residMask != null) out.muli(residMask);
            return (out.addi(x2).reshape(b, t, c));
        }

        @Override
        protected INDArray backward(INDArray epsilon) {
            CausalSelfAttention cfg = layerConf();
            long c = cfg.nEmbd, nh = cfg.nHead, d = c / nh, n = b * t;
            INDArray dOut = epsilon.castTo(dataType).reshape(n, c);
            INDArray dBranch = residMask == null ? dOut : dOut.mul(residMask);

            Gemm.weightGradient(grad(WO), y, dBranch, ct());
            Gemm.columnSums(dBranch, grad(BO));
            INDArray dyRows = Gemm.mm(dBranch, false, param(WO), true, ct());            // [N, C], as y: [B,T,H,D]
            INDArray dy = dyRows.reshape(b, t, nh, d).permute(0, 2, 1, 3).dup('c');      // [B,H,T,D]
            // softmax backward's row sums, sum_j dp_ij p_ij, are dy_i . y_i (y = dropped p times v): D products per row
            // instead of T (FlashAttention's D_i), taken in y's [B,T,H] order and laid out as the score rows [B,H,T]
            INDArray rowDots = Gemm.rowSums(dyRows.mul(y).reshape(n * nh, d))
                    .reshape(b, t, nh).permute(0, 2, 1).dup('c').reshape(b * nh * t, 1);

            INDArray dpd = Gemm.mm(dy, false, v, true, ct());                   // [B,H,T,T]
            INDArray dp = attnMask == null ? dpd : dpd.muli(attnMask);
            // softmax backward, row-wise and in place (dp is ours): datt = p * (dp - sum(dp * p))
            INDArray p2 = p.reshape(b * nh * t, t), dp2 = dp.reshape(b * nh * t, t);
            INDArray datt = dp2.subiColumnVector(rowDots).muli(p2).reshape(b, nh, t, t);

            // dq, dk, dv straight into their places in [3,B,H,T,D] (each slice is contiguous), then one copy to [N, 3C];
            // q was scaled by 1/sqrt(D): its gradient is too (k's is against the scaled q already)
            INDArray dheads = Nd4j.createUninitialized(dataType, 3, b, nh, t, d);
            Gemm.into(dheads.get(NDArrayIndex.point(0)), datt, false, k, false, ct());
            dheads.get(NDArrayIndex.point(0)).muli(scale(d));
            Gemm.into(dheads.get(NDArrayIndex.point(1)), datt, true, q, false, ct());
            Gemm.into(dheads.get(NDArrayIndex.point(2)), pDropped, true, dy, false, ct());
            INDArray dqkv = dheads.permute(1, 3, 0, 2, 4).dup('c').reshape(n, 3 * c);   // [N, 3C]

            Gemm.weightGradient(grad(WQKV), h, dqkv, ct());
            Gemm.columnSums(dqkv, grad(BQKV));
            INDArray dh = Gemm.mm(dqkv, false, param(WQKV), true, ct());
            INDArray dx = LayerNorm.backward(dh, ln, param(LNG), grad(LNG), grad(LNB)).addi(dOut);
            return dx.reshape(b, t, c);
        }

        /** Attention's score scale, 1/sqrt(D). */
        private static double scale(long d) { return 1.0 / Math.sqrt(d); }

        @Override protected void clearCache() { ln = null; h = q = k = v = p = pDropped = attnMask = residMask = y = null; }
    }
}
