package org.sparkformer.worker.nd4j;

import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.cpu.nativecpu.DirectShapeInfoProvider;

import java.util.Arrays;

/**
 * ND4J's CPU shape-info provider with a cache on the path every new array takes. ND4J caches shape descriptors only
 * through an overload that {@code BaseNDArray}'s constructors do not call, so each array (result, view, reshape) made
 * a native call, two native pointers and a buffer that its deallocator thread tracks until a collection frees it.
 * Shape infos are immutable constants (ND4J shares them through its own cache), so arrays of one shape share one.
 * Chosen with {@code -Dshapeinfoprovider=org.sparkformer.worker.nd4j.CachedShapeInfoProvider} (ND4J reads its
 * classes from system properties at start-up; {@link Nd4jTuning} sets them).
 */
public class CachedShapeInfoProvider extends DirectShapeInfoProvider {
    /** Distinct shapes kept (then the cache starts again). */
    static final int MAX_SHAPES = 4096;

    private final RestartingCache<Key, Pair<DataBuffer, long[]>> cache = new RestartingCache<>(MAX_SHAPES);

    @Override
    public Pair<DataBuffer, long[]> createShapeInformation(long[] shape, long[] stride, long elementWiseStride, char order,
                                                           DataType dataType, boolean empty) {
        Pair<DataBuffer, long[]> hit = cache.get(new Key(shape, stride, elementWiseStride, order, dataType, empty));
        if (hit != null) return hit;
        Pair<DataBuffer, long[]> made = super.createShapeInformation(shape, stride, elementWiseStride, order, dataType, empty);
        cache.put(new Key(shape.clone(), stride.clone(), elementWiseStride, order, dataType, empty), made);
        return made;
    }

    /** Shapes cached now. */
    int cachedShapes() { return cache.size(); }

    @Override
    public void purgeCache() {
        super.purgeCache();
        cache.clear();
    }

    /** Everything a shape info encodes; the arrays compared by content. */
    private record Key(long[] shape, long[] stride, long ews, char order, DataType type, boolean empty) {
        @Override public int hashCode() {
            return ((Arrays.hashCode(shape) * 31 + Arrays.hashCode(stride)) * 31 + Long.hashCode(ews)) * 31
                    + order * 7 + type.ordinal() * 2 + (empty ? 1 : 0);
        }

        @Override public boolean equals(Object o) {
            return o instanceof Key k && k.ews == ews && k.order == order && k.type == type && k.empty == empty
                    && Arrays.equals(k.shape, shape) && Arrays.equals(k.stride, stride);
        }
    }
}
