package org.sparkformer.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.BaseScalarOp;
import org.nd4j.linalg.api.ops.impl.broadcast.BroadcastMulOp;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarMultiplication;
import org.nd4j.linalg.api.ops.impl.scalar.ScalarSubtraction;
import org.nd4j.linalg.factory.Nd4j;
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
        INDArray xc = minusColumn(x, mean);                      // [N,C]
        INDArray var = Gemm.rowMeans(xc.mul(xc), null);          // [N,1]
        INDArray rstd = Transforms.pow(var.addi(EPS), -0.5, false);
        INDArray xhat = xc.muliColumnVector(rstd);
        if (cache != null) cache[0] = new Cache(xhat, rstd);
        return timesRow(xhat, row(g)).addiRowVector(row(b));
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
        return timesRow(dy, gRow).subiColumnVector(meanDxhat)
                .subi(timesColumn(xhat, meanDxhatXhat))
                .muliColumnVector(cache.rstd());
    }

    /*
     * Broadcasts into a new array in one pass: ND4J's non-in-place forms (subColumnVector, mulRowVector, ...) copy x
     * first and then apply the in-place form to the copy, two passes over [N,C]. The ops are the ones the in-place forms
     * run on a row-major matrix: a scalar per row along dimension 1, a row vector broadcast along dimension 1.
     */

    /** x - col, each row minus its scalar. x [N,C] row-major, col [N,1]. */
    static INDArray minusColumn(INDArray x, INDArray col) {
        if (!rowMajor(x)) return x.subColumnVector(col);
        return perRow(new ScalarSubtraction(x, col, like(x), 0.0));
    }

    /** x * col, each row times its scalar. */
    static INDArray timesColumn(INDArray x, INDArray col) {
        if (!rowMajor(x)) return x.mulColumnVector(col);
        return perRow(new ScalarMultiplication(x, col, like(x), 0.0));
    }

    /** x * row, each row times the row vector [1,C]. */
    static INDArray timesRow(INDArray x, INDArray row) {
        if (!rowMajor(x)) return x.mulRowVector(row);
        INDArray out = like(x);
        Nd4j.getExecutioner().exec(new BroadcastMulOp(x, row, out, 1));
        return out;
    }

    private static INDArray perRow(BaseScalarOp op) {
        op.setDimension(1);
        Nd4j.getExecutioner().exec(op);
        return op.z();
    }

    /** A contiguous row-major matrix, as the ops above need (any other layout takes ND4J's copying form). */
    private static boolean rowMajor(INDArray x) {
        return x.rank() == 2 && x.ordering() == 'c' && x.elementWiseStride() == 1;
    }

    private static INDArray like(INDArray x) {
        return Nd4j.createUninitialized(x.dataType(), x.shape(), 'c');
    }

    static INDArray row(INDArray v) {
        return v.rank() == 2 && v.rows() == 1 ? v : v.reshape(1, v.length());
    }
}
