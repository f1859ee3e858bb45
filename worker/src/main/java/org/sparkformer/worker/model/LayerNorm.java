package org.sparkformer.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * LayerNorm over the last axis of an [N, C] matrix, forward and backward side by side.
 * Not a DL4J layer: the blocks and the head use it for their pre-norms.
 */
public final class LayerNorm {
    public static final double EPS = 1e-5;

    private LayerNorm() {}

    /** What the backward pass needs from the forward pass. */
    public record Cache(INDArray xhat, INDArray rstd) {}

    /** y = (x - mean) / sqrt(var + eps) * g + b.  x [N,C], g,b [1,C] or [C]; returns y [N,C] and fills cache[0]. */
    public static INDArray forward(INDArray x, INDArray g, INDArray b, Cache[] cache) {
        INDArray mean = Gemm.rowMeans(x, null);                  // [N,1]
        INDArray xc = x.subColumnVector(mean);                   // [N,C]
        INDArray var = Gemm.rowMeans(xc.mul(xc), null);          // [N,1]
        INDArray rstd = Transforms.pow(var.addi(EPS), -0.5, false);
        INDArray xhat = xc.muliColumnVector(rstd);
        if (cache != null) cache[0] = new Cache(xhat, rstd);
        return xhat.mulRowVector(row(g)).addiRowVector(row(b));
    }

    /**
     * dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * g;
     * dg = sum_n dy * xhat; db = sum_n dy. Writes dg, db into the given gradient views.
     * The row means are products with g: mean(dxhat) = dy · gᵀ / C, mean(dxhat * xhat) = (dy * xhat) · gᵀ / C.
     */
    public static INDArray backward(INDArray dy, Cache cache, INDArray g, INDArray dgOut, INDArray dbOut) {
        INDArray xhat = cache.xhat(), gRow = row(g);
        INDArray dyXhat = dy.mul(xhat);
        Gemm.columnSums(dyXhat, dgOut);
        Gemm.columnSums(dy, dbOut);
        INDArray meanDxhat = Gemm.rowMeans(dy, gRow);
        INDArray meanDxhatXhat = Gemm.rowMeans(dyXhat, gRow);
        return dy.mulRowVector(gRow).subiColumnVector(meanDxhat)
                .subi(xhat.mulColumnVector(meanDxhatXhat))
                .muliColumnVector(cache.rstd());
    }

    static INDArray row(INDArray v) {
        return v.rank() == 2 && v.rows() == 1 ? v : v.reshape(1, v.length());
    }
}
