package org.sparkformer.worker.model;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.OpContext;
import org.nd4j.linalg.api.ops.impl.reduce.Mmul;
import org.nd4j.linalg.factory.Nd4j;

import java.util.HashMap;
import java.util.Map;

/**
 * Matrix products through BLAS gemm straight into row-major results. Measured here: ND4J's
 * {@code mmul} into a 'c'-order result runs at a third of the speed of {@code Nd4j.gemm} for our shapes
 * (25 vs 76 GFLOP/s on [1536,512]x[512,128], 2 threads), and transposes are flags, not copies.
 */
public final class Gemm {
    private Gemm() {}

    /** op(a) · op(b) as a new row-major array: [m, n], or batched over leading axes (attention's heads). */
    public static INDArray mm(INDArray a, boolean transA, INDArray b, boolean transB) {
        return product(a, transA, b, transB, Nd4j.createUninitialized(a.dataType(), productShape(a, transA, b, transB), 'c'));
    }

    /** out = op(a) · op(b), written into an existing contiguous array (e.g. a gradient view). */
    static void into(INDArray out, INDArray a, boolean transA, INDArray b, boolean transB) {
        product(a, transA, b, transB, out);
    }

    /**
     * ND4J's matmul op (what {@code Nd4j.gemm} and {@code Nd4j.matmul} run), out = op(a) · op(b), batched over leading
     * axes, through an op context this thread keeps per transpose pair. {@code Nd4j.exec} makes a new native context
     * per call, with pointers for its arguments, each tracked by ND4J's or JavaCPP's deallocator until a collection finds
     * it dead: ~70 products per thread and tiny step made a third of the references every young collection copies and
     * the deallocator threads then free. Reused (as SameDiff's executor reuses its contexts): tiny's total time -5.5%
     * and -6.9% in two interleaved A/B runs (median step -1%).
     */
    private static INDArray product(INDArray a, boolean transA, INDArray b, boolean transB, INDArray out) {
        OpContext[] contexts = CONTEXTS.get();
        int i = (transA ? 2 : 0) + (transB ? 1 : 0);
        OpContext ctx = contexts[i];
        if (ctx == null) {
            ctx = contexts[i] = Nd4j.getExecutioner().buildContext();
            ctx.setIArguments(transA ? 1 : 0, transB ? 1 : 0, 0);
            ctx.setTArguments(1.0, 0.0);
        }
        try {
            ctx.setInputArray(0, a);
            ctx.setInputArray(1, b);
            ctx.setOutputArray(0, out);
            Nd4j.getExecutioner().exec(MMUL, ctx);
        } finally {
            ctx.purge();
        }
        return out;
    }

    /** Names the op for {@code exec}; its arrays and arguments come from the context. */
    private static final Mmul MMUL = new Mmul();
    private static final ThreadLocal<OpContext[]> CONTEXTS = ThreadLocal.withInitial(() -> new OpContext[4]);

    /*
     * Mixed precision: with a 16-bit compute type the operands are cast down, multiplied in that type (tensor cores
     * on CUDA) and the product cast back to the network's type; everything between products stays float32.
     * A null compute type, or one no narrower than the operands (double in gradient checks), means no cast.
     */

    /** op(a) · op(b) with the product in {@code compute} precision; result in a's type. */
    public static INDArray mm(INDArray a, boolean transA, INDArray b, boolean transB, DataType compute) {
        if (!narrows(compute, a)) return mm(a, transA, b, transB);
        return mm(a.castTo(compute), transA, b.castTo(compute), transB).castTo(a.dataType());
    }

    /** out = op(a) · op(b) with the product in {@code compute} precision. */
    static void into(INDArray out, INDArray a, boolean transA, INDArray b, boolean transB, DataType compute) {
        if (!narrows(compute, a)) into(out, a, transA, b, transB);
        else out.assign(mm(a.castTo(compute), transA, b.castTo(compute), transB));
    }

    /**
     * A weight's gradient in a layer's backward, out = xᵀ · dy: here, or on another thread of the replica that has
     * finished its share of the pass ({@link Shards#assistable}; the layer's backward waits for it at its end).
     */
    static void weightGradient(INDArray out, INDArray x, INDArray dy, DataType compute) {
        if (narrows(compute, x)) into(out, x, true, dy, false, compute);    // its casts allocate in this thread's workspace
        else Shards.assistable(() -> product(x, true, dy, false, out));
    }

    /** The shape of op(a) · op(b): a's leading (batch) axes, then rows of op(a) by columns of op(b). */
    private static long[] productShape(INDArray a, boolean transA, INDArray b, boolean transB) {
        int r = a.rank();
        long[] s = a.shape().clone();
        s[r - 2] = transA ? a.size(r - 1) : a.size(r - 2);
        s[r - 1] = transB ? b.size(r - 2) : b.size(r - 1);
        return s;
    }

    private static boolean narrows(DataType compute, INDArray a) {
        return compute != null && compute.width() < a.dataType().width();
    }

    /** Column sums of x [N, C] into out [1, C], as ones[1, N] · x (faster than a reduction along rows). */
    static void columnSums(INDArray x, INDArray out) {
        product(ones(x.dataType(), x.size(0)), false, x, false, out);
    }

    /**
     * Row means of x [N, C] weighted by w [1, C] (null: ones) as a new [N, 1]: x · wᵀ / C, a matrix-vector product
     * instead of ND4J's mean along rows (tiny's step 2% faster, small's the same: interleaved in one process).
     */
    static INDArray rowMeans(INDArray x, INDArray w) {
        return weightedRowSums(x, w != null ? w : ones(x.dataType(), x.size(1))).muli(1.0 / x.size(1));
    }

    /** Row sums of x [N, C] as a new [N, 1]: x · onesᵀ. */
    static INDArray rowSums(INDArray x) {
        return weightedRowSums(x, ones(x.dataType(), x.size(1)));
    }

    /** x [N, C] · wᵀ (w [1, C]) as a new [N, 1]. */
    private static INDArray weightedRowSums(INDArray x, INDArray w) {
        return product(x, false, w, true, Nd4j.createUninitialized(x.dataType(), x.size(0), 1));
    }

    /** Rows of ones each thread used, by type and length (replicas train on their own threads; a few lengths per model). */
    private static final ThreadLocal<Map<Long, INDArray>> ONES = ThreadLocal.withInitial(HashMap::new);

    private static INDArray ones(DataType type, long n) {
        Map<Long, INDArray> ones = ONES.get();
        if (ones.size() > 16) ones.clear();     // shapes keep changing (tests): start again
        long key = n * 64 + type.ordinal();     // fewer than 64 data types
        return ones.computeIfAbsent(key, k -> GptLayer.detached(() -> Nd4j.ones(type, 1, n)));
    }
}
