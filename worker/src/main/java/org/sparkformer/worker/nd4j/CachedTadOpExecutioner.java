package org.sparkformer.worker.nd4j;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.TadPack;
import org.nd4j.linalg.cpu.nativecpu.ops.NativeOpExecutioner;

import java.util.Arrays;

/**
 * ND4J's CPU op executioner with the tensor-along-dimension packs that row- and column-wise ops need kept per
 * shape. libnd4j caches each pack natively and for good, but ND4J wrapped it in two new tracked buffers on every
 * broadcast and reduction (a native call and a pointer each, then work for the collector and the deallocator thread).
 * Chosen with {@code -Dopexec=org.sparkformer.worker.nd4j.CachedTadOpExecutioner} ({@link Nd4jTuning} sets it).
 */
public class CachedTadOpExecutioner extends NativeOpExecutioner {
    /** Distinct (shape, dimensions) pairs kept (then the cache starts again). */
    static final int MAX_PACKS = 4096;

    private final RestartingCache<Key, TadPack> packs = new RestartingCache<>(MAX_PACKS);

    @Override
    public TadPack tadShapeInfoAndOffsets(INDArray array, int[] dimension) {
        long[] shapeInfo = array.shapeInfoJava();
        TadPack hit = packs.get(new Key(shapeInfo, dimension));
        if (hit != null) return hit;
        TadPack made = super.tadShapeInfoAndOffsets(array, dimension);
        packs.put(new Key(shapeInfo.clone(), dimension.clone()), made);
        return made;
    }

    /** Packs cached now. */
    int cachedPacks() { return packs.size(); }

    /** An array's whole shape info (shape, strides, type, order) and the dimensions, compared by content. */
    private record Key(long[] shapeInfo, int[] dimension) {
        @Override public int hashCode() { return Arrays.hashCode(shapeInfo) * 31 + Arrays.hashCode(dimension); }

        @Override public boolean equals(Object o) {
            return o instanceof Key k && Arrays.equals(k.shapeInfo, shapeInfo) && Arrays.equals(k.dimension, dimension);
        }
    }
}
