package org.sparkformer.worker.generate;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.transforms.custom.SoftMax;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.sparkformer.worker.model.CausalSelfAttention;
import org.sparkformer.worker.model.Gelu;
import org.sparkformer.worker.model.Gemm;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.model.LayerNorm;
import org.sparkformer.worker.model.LmHead;
import org.sparkformer.worker.model.MlpBlock;
import org.sparkformer.worker.model.TokenEmbedding;

/**
 * Inference with a key/value cache: the same forward pass as the training layers, over the new tokens
 * only, attending to the keys and values of earlier positions kept per layer ([H, T, D] each). A context
 * that extends the cached one by a token costs one position's work. A context that does not (a new
 * prompt, or one longer than the block, whose window then slides so every position shifts) is
 * prefilled again in one batched pass, which is exactly what recomputation does.
 *
 * Shapes: n new tokens, L = cached + n positions, C channels, H heads, D = C / H.
 */
public final class KvCache implements NextToken {
    private final GptConfig c;
    private final INDArray wte, pos, lnfG, lnfB, head;
    private final INDArray[][] attn, mlp;                 // per layer: lng, lnb, w, b, wo, bo  /  lng, lnb, wfc, bfc, wproj, bproj
    private final INDArray[] keys, values;                // per layer [H, T, D]
    private int[] cached = new int[0];                    // the tokens whose keys/values are in the cache
    private int cachedLength;

    public KvCache(ComputationGraph graph, GptConfig config) {
        this.c = config;
        Layer emb = graph.getLayer(Gpt.EMBEDDING);
        wte = emb.getParam(TokenEmbedding.WTE);
        pos = config.positional == GptConfig.Positional.LEARNED ? emb.getParam(TokenEmbedding.WPE)
                : TokenEmbedding.sinusoids(config.blockSize, config.nEmbd, wte.dataType());
        attn = new INDArray[c.nLayer][];
        mlp = new INDArray[c.nLayer][];
        keys = new INDArray[c.nLayer];
        values = new INDArray[c.nLayer];
        long d = c.nEmbd / c.nHead;
        for (int i = 0; i < c.nLayer; i++) {
            Layer a = graph.getLayer(Gpt.attention(i)), m = graph.getLayer(Gpt.mlp(i));
            attn[i] = new INDArray[]{a.getParam(CausalSelfAttention.LNG), a.getParam(CausalSelfAttention.LNB), a.getParam(CausalSelfAttention.WQKV),
                    a.getParam(CausalSelfAttention.BQKV), a.getParam(CausalSelfAttention.WO), a.getParam(CausalSelfAttention.BO)};
            mlp[i] = new INDArray[]{m.getParam(MlpBlock.LNG), m.getParam(MlpBlock.LNB), m.getParam(MlpBlock.WFC), m.getParam(MlpBlock.BFC),
                    m.getParam(MlpBlock.WPROJ), m.getParam(MlpBlock.BPROJ)};
            keys[i] = Nd4j.create(wte.dataType(), c.nHead, c.blockSize, d);
            values[i] = Nd4j.create(wte.dataType(), c.nHead, c.blockSize, d);
        }
        Layer h = graph.getLayer(Gpt.HEAD);
        lnfG = h.getParam(LmHead.LNG);
        lnfB = h.getParam(LmHead.LNB);
        head = ((LmHead.Impl) h).weight();
    }

    @Override public float[] logits(int[] context, int length) {
        int start = Math.max(0, length - c.blockSize);
        boolean extends1 = start == 0 && length == cachedLength + 1 && cachedLength < c.blockSize
                && java.util.Arrays.equals(context, 0, cachedLength, cached, 0, cachedLength);
        INDArray x;
        if (extends1) {
            x = forward(new int[]{context[length - 1]}, cachedLength);
        } else {
            x = forward(java.util.Arrays.copyOfRange(context, start, length), 0);
        }
        cached = java.util.Arrays.copyOfRange(context, start, length);
        cachedLength = cached.length;
        INDArray last = x.get(NDArrayIndex.interval(x.rows() - 1, x.rows()), NDArrayIndex.all());
        INDArray h = LayerNorm.forward(last, lnfG, lnfB, null);
        return Gemm.mm(h, false, head, true).toFloatVector();
    }

    /** Runs tokens at positions from .. from+n-1 through every block, filling the cache; returns x [n, C]. */
    private INDArray forward(int[] tokens, int from) {
        int n = tokens.length, len = from + n;
        long ch = c.nEmbd, nh = c.nHead, d = ch / nh;
        int[] positions = new int[n];
        for (int i = 0; i < n; i++) positions[i] = from + i;
        INDArray x = Nd4j.pullRows(wte, 1, tokens).addi(Nd4j.pullRows(pos, 1, positions));
        INDArray mask = null;
        if (n > 1) {   // causal within the new tokens: row i sees keys 0 .. from+i
            mask = Nd4j.zeros(x.dataType(), n, len);
            for (int i = 0; i + 1 < n; i++) mask.get(NDArrayIndex.point(i), NDArrayIndex.interval(from + i + 1, len)).assign(-1e9);
        }
        for (int l = 0; l < c.nLayer; l++) {
            INDArray[] a = attn[l];
            INDArray h = LayerNorm.forward(x, a[0], a[1], null);
            INDArray qkv = Gemm.mm(h, false, a[2], false).addiRowVector(a[3]);                      // [n, 3C]
            INDArray heads = qkv.reshape(n, 3, nh, d).permute(1, 2, 0, 3).dup('c');                // [3, H, n, D]
            INDArray q = heads.get(NDArrayIndex.point(0));
            keys[l].get(NDArrayIndex.all(), NDArrayIndex.interval(from, len), NDArrayIndex.all()).assign(heads.get(NDArrayIndex.point(1)));
            values[l].get(NDArrayIndex.all(), NDArrayIndex.interval(from, len), NDArrayIndex.all()).assign(heads.get(NDArrayIndex.point(2)));
            INDArray k = keys[l].get(NDArrayIndex.all(), NDArrayIndex.interval(0, len), NDArrayIndex.all());
            INDArray v = values[l].get(NDArrayIndex.all(), NDArrayIndex.interval(0, len), NDArrayIndex.all());
            INDArray att = Nd4j.matmul(q, k, false, true, false).muli(1.0 / Math.sqrt(d));       // [H, n, L]
            if (mask != null) att.reshape(nh, (long) n * len).addiRowVector(mask.reshape(1, (long) n * len));
            INDArray p = Nd4j.exec(new SoftMax(att, att, 2))[0];
            INDArray y = Nd4j.matmul(p, v).permute(1, 0, 2).dup('c').reshape(n, ch);              // [n, C]
            x.addi(Gemm.mm(y, false, a[4], false).addiRowVector(a[5]));
            INDArray[] m = mlp[l];
            INDArray h2 = LayerNorm.forward(x, m[0], m[1], null);
            INDArray pre = Gemm.mm(h2, false, m[2], false).addiRowVector(m[3]);                     // [n, 4C]
            INDArray g = Gelu.forward(pre, Gelu.sigmoidPart(pre));
            x.addi(Gemm.mm(g, false, m[4], false).addiRowVector(m[5]));
        }
        return x;
    }

    DataType dataType() { return wte.dataType(); }
}
