package org.sparkformer.worker.nd4j;

import org.junit.jupiter.api.Test;
import org.nd4j.common.primitives.Pair;
import org.nd4j.linalg.api.buffer.DataBuffer;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.*;

class CachedShapeInfoProviderTest {

    @Test
    void theTestsRunOnTheCachingProvider() {
        assertInstanceOf(CachedShapeInfoProvider.class, Nd4j.getShapeInfoProvider(), "surefire's argLine installs it, as the CLI does");
    }

    @Test
    void arraysOfOneShapeShareOneShapeInfo() {
        INDArray a = Nd4j.rand(DataType.FLOAT, 7, 5), b = Nd4j.createUninitialized(DataType.FLOAT, 7, 5);
        assertSame(a.shapeInfoDataBuffer(), b.shapeInfoDataBuffer());
        assertNotSame(a.shapeInfoDataBuffer(), Nd4j.create(DataType.DOUBLE, 7, 5).shapeInfoDataBuffer(), "type");
        assertNotSame(a.shapeInfoDataBuffer(), Nd4j.create(DataType.FLOAT, new long[]{7, 5}, 'f').shapeInfoDataBuffer(), "order");
        assertNotSame(a.shapeInfoDataBuffer(), Nd4j.create(DataType.FLOAT, 5, 7).shapeInfoDataBuffer(), "shape");
        INDArray t = a.transpose();      // same shape as a 5x7 array, other strides
        assertNotSame(t.shapeInfoDataBuffer(), Nd4j.create(DataType.FLOAT, 5, 7).shapeInfoDataBuffer(), "strides");
        assertArrayEquals(new long[]{1, 5}, t.stride());
    }

    @Test
    void cachedShapeInfosEncodeWhatUncachedOnesDo() {
        CachedShapeInfoProvider p = new CachedShapeInfoProvider();
        long[][] shapes = {{3, 4}, {2, 3, 4}, {6}, {1, 1}, {0, 4}};
        for (long[] shape : shapes) for (char order : new char[]{'c', 'f'}) for (DataType type : new DataType[]{DataType.FLOAT, DataType.INT64}) {
            long[] stride = Nd4j.getStrides(shape, order);
            boolean empty = shape.length > 0 && shape[0] == 0;
            Pair<DataBuffer, long[]> first = p.createShapeInformation(shape, stride, 1, order, type, empty);
            Pair<DataBuffer, long[]> again = p.createShapeInformation(shape.clone(), stride.clone(), 1, order, type, empty);
            assertSame(first, again);
            DataBuffer plain = Shape.createShapeInformation(shape, stride, 1, order, type, empty);
            assertArrayEquals(plain.asLong(), first.getFirst().asLong());
            assertArrayEquals(plain.asLong(), first.getSecond());
        }
    }

    @Test
    void aFullCacheStartsAgainInsteadOfGrowing() {
        CachedShapeInfoProvider p = new CachedShapeInfoProvider();
        Pair<DataBuffer, long[]> first = p.createShapeInformation(new long[]{1, 1}, new long[]{1, 1}, 1, 'c', DataType.FLOAT, false);
        for (int i = 2; i <= CachedShapeInfoProvider.MAX_SHAPES; i++)
            p.createShapeInformation(new long[]{i, 1}, new long[]{1, 1}, 1, 'c', DataType.FLOAT, false);
        assertEquals(CachedShapeInfoProvider.MAX_SHAPES, p.cachedShapes());
        assertSame(first, p.createShapeInformation(new long[]{1, 1}, new long[]{1, 1}, 1, 'c', DataType.FLOAT, false));
        p.createShapeInformation(new long[]{1, 2}, new long[]{2, 1}, 1, 'c', DataType.FLOAT, false);
        assertEquals(1, p.cachedShapes());
        Pair<DataBuffer, long[]> remade = p.createShapeInformation(new long[]{1, 1}, new long[]{1, 1}, 1, 'c', DataType.FLOAT, false);
        assertNotSame(first, remade);
        assertArrayEquals(first.getSecond(), remade.getSecond());
    }
}
