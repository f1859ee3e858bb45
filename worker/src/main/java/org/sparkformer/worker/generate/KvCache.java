package org.sparkformer.worker.generate;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.sparkformer.worker.model.CausalSelfAttention;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.model.LayerNorm;
import org.sparkformer.worker.model.LmHead;
import org.sparkformer.worker.model.MlpBlock;
import org.sparkformer.worker.model.TokenEmbedding;

import java.util.Arrays;

/**
 * Generation with a key/value cache: each new token runs through the blocks alone, attending to the keys and
 * values that earlier positions left in the cache, so a token costs one position's work instead of the whole
 * context's. One position is a handful of vector-matrix products over weights copied out of the network once,
 * done here in plain Java arrays: at one row, each ND4J op costs more in dispatch (~50 µs) than in arithmetic,
 * and the BLAS gemm repacks the whole weight matrix per call. The math is the training layers' (pre-LN
 * blocks, tanh GELU, LayerNorm eps 1e-5, tied or untied head); {@code SamplerTest} checks the logits equal
 * recomputation's. A context that does not extend the cached one (a new prompt) is fed through from its
 * start; one longer than the block slides its window, shifting every position, so nothing can be reused and
 * it is recomputed.
 *
 * Shapes: C channels, H heads, D = C / H, T block size, V vocabulary.
 */
public final class KvCache implements NextToken {
    private final GptConfig c;
    private final int C, H, D, T, V;
    private final float[] wte, pos, lnfG, lnfB, head;     // head [V, C] (= wte when tied)
    private final float[][] ln1g, ln1b, wqkv, bqkv, wo, bo, ln2g, ln2b, wfc, bfc, wproj, bproj;
    private final float[][] keys, values;                  // per layer [T, C]: position t, head h at t*C + h*D
    private final Recompute window;                        // beyond the block size
    private int[] cached = new int[0];
    // scratch, one position
    private final float[] x, h, qkv, y, att, hidden, proj;

    public KvCache(ComputationGraph graph, GptConfig config) {
        c = config;
        C = c.nEmbd; H = c.nHead; D = C / H; T = c.blockSize; V = c.vocabSize;
        Layer emb = graph.getLayer(Gpt.EMBEDDING);
        wte = floats(emb.getParam(TokenEmbedding.WTE));
        pos = floats(c.positional == GptConfig.Positional.LEARNED ? emb.getParam(TokenEmbedding.WPE)
                : TokenEmbedding.sinusoids(T, C, emb.getParam(TokenEmbedding.WTE).dataType()));
        int L = c.nLayer;
        ln1g = new float[L][]; ln1b = new float[L][]; wqkv = new float[L][]; bqkv = new float[L][]; wo = new float[L][]; bo = new float[L][];
        ln2g = new float[L][]; ln2b = new float[L][]; wfc = new float[L][]; bfc = new float[L][]; wproj = new float[L][]; bproj = new float[L][];
        keys = new float[L][T * C];
        values = new float[L][T * C];
        for (int l = 0; l < L; l++) {
            Layer a = graph.getLayer(Gpt.attention(l)), m = graph.getLayer(Gpt.mlp(l));
            ln1g[l] = floats(a.getParam(CausalSelfAttention.LNG)); ln1b[l] = floats(a.getParam(CausalSelfAttention.LNB));
            wqkv[l] = floats(a.getParam(CausalSelfAttention.WQKV)); bqkv[l] = floats(a.getParam(CausalSelfAttention.BQKV));
            wo[l] = floats(a.getParam(CausalSelfAttention.WO)); bo[l] = floats(a.getParam(CausalSelfAttention.BO));
            ln2g[l] = floats(m.getParam(MlpBlock.LNG)); ln2b[l] = floats(m.getParam(MlpBlock.LNB));
            wfc[l] = floats(m.getParam(MlpBlock.WFC)); bfc[l] = floats(m.getParam(MlpBlock.BFC));
            wproj[l] = floats(m.getParam(MlpBlock.WPROJ)); bproj[l] = floats(m.getParam(MlpBlock.BPROJ));
        }
        Layer hl = graph.getLayer(Gpt.HEAD);
        lnfG = floats(hl.getParam(LmHead.LNG));
        lnfB = floats(hl.getParam(LmHead.LNB));
        head = c.tiedHead ? wte : floats(((LmHead.Impl) hl).weight());
        window = new Recompute(graph, T);
        x = new float[C]; h = new float[C]; qkv = new float[3 * C]; y = new float[C]; att = new float[T]; hidden = new float[4 * C];
        proj = new float[C];
    }

    private static float[] floats(INDArray a) { return a.dup('c').reshape(a.length()).toFloatVector(); }

    @Override public float[] logits(int[] context, int length) {
        if (length > T) {
            cached = new int[0];
            return window.logits(context, length);
        }
        int reuse = cached.length <= length && Arrays.equals(context, 0, cached.length, cached, 0, cached.length) ? cached.length : 0;
        if (reuse == length) reuse--;   // the same context again: recompute its last position for the logits
        for (int p = reuse; p < length; p++) step(context[p], p);
        cached = Arrays.copyOf(context, length);
        float[] out = new float[V];
        layerNorm(x, lnfG, lnfB, h);
        for (int v = 0; v < V; v++) out[v] = dot(h, 0, head, v * C, C);
        return out;
    }

    /** Token tok at position p through every block; leaves the residual stream in x. */
    private void step(int tok, int p) {
        for (int i = 0; i < C; i++) x[i] = wte[tok * C + i] + pos[p * C + i];
        float scale = (float) (1.0 / Math.sqrt(D));
        for (int l = 0; l < c.nLayer; l++) {
            layerNorm(x, ln1g[l], ln1b[l], h);
            affine(h, C, wqkv[l], bqkv[l], 3 * C, qkv);                    // [q | k | v], heads contiguous
            System.arraycopy(qkv, C, keys[l], p * C, C);
            System.arraycopy(qkv, 2 * C, values[l], p * C, C);
            float[] k = keys[l], v = values[l];
            for (int hd = 0; hd < H; hd++) {
                int o = hd * D;
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t <= p; t++) {
                    att[t] = dot(qkv, o, k, t * C + o, D) * scale;
                    max = Math.max(max, att[t]);
                }
                float sum = 0;
                for (int t = 0; t <= p; t++) sum += att[t] = (float) Math.exp(att[t] - max);
                Arrays.fill(y, o, o + D, 0f);
                for (int t = 0; t <= p; t++) {
                    float w = att[t] / sum;
                    for (int j = 0; j < D; j++) y[o + j] += w * v[t * C + o + j];
                }
            }
            affineAdd(y, C, wo[l], bo[l], C, x);
            layerNorm(x, ln2g[l], ln2b[l], h);
            affine(h, C, wfc[l], bfc[l], 4 * C, hidden);
            for (int i = 0; i < 4 * C; i++) hidden[i] = gelu(hidden[i]);
            affineAdd(hidden, 4 * C, wproj[l], bproj[l], C, x);
        }
    }

    /** out = in · W + b, W [n, m] row-major: rows of W scaled and summed (contiguous, vectorisable). */
    private static void affine(float[] in, int n, float[] w, float[] b, int m, float[] out) {
        System.arraycopy(b, 0, out, 0, m);
        for (int i = 0; i < n; i++) {
            float a = in[i];
            int row = i * m;
            for (int j = 0; j < m; j++) out[j] += a * w[row + j];
        }
    }

    /** acc += in · W + b, for the two residual projections (m = C). */
    private void affineAdd(float[] in, int n, float[] w, float[] b, int m, float[] acc) {
        affine(in, n, w, b, m, proj);
        for (int j = 0; j < m; j++) acc[j] += proj[j];
    }

    private static float dot(float[] a, int ao, float[] b, int bo, int n) {
        float s = 0;
        for (int i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
        return s;
    }

    private void layerNorm(float[] in, float[] g, float[] b, float[] out) {
        double mean = 0, var = 0;
        for (int i = 0; i < C; i++) mean += in[i];
        mean /= C;
        for (int i = 0; i < C; i++) var += (in[i] - mean) * (in[i] - mean);
        double rstd = 1.0 / Math.sqrt(var / C + LayerNorm.EPS);
        for (int i = 0; i < C; i++) out[i] = (float) ((in[i] - mean) * rstd) * g[i] + b[i];
    }

    /** GPT-2's GELU, tanh approximation: a·sigmoid(2u), u = √(2/π)(a + 0.044715 a³). */
    private static float gelu(float a) {
        double u = Math.sqrt(2.0 / Math.PI) * (a + 0.044715 * a * a * a);
        return (float) (a / (1.0 + Math.exp(-2.0 * u)));
    }
}
