package org.sparkformer.worker.nd4j;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.TadPack;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import static org.junit.jupiter.api.Assertions.*;

class CachedTadOpExecutionerTest {

    @Test
    void theTestsRunOnTheCachingExecutioner() {
        assertInstanceOf(CachedTadOpExecutioner.class, Nd4j.getExecutioner(), "surefire's argLine installs it, as the CLI does");
    }

    @Test
    void oneShapeAndDimensionGiveOnePack() {
        CachedTadOpExecutioner ex = (CachedTadOpExecutioner) Nd4j.getExecutioner();
        INDArray a = Nd4j.rand(DataType.FLOAT, 6, 4), b = Nd4j.rand(DataType.FLOAT, 6, 4);
        TadPack rows = ex.tadShapeInfoAndOffsets(a, new int[]{1});
        assertSame(rows, ex.tadShapeInfoAndOffsets(b, new int[]{1}));
        TadPack columns = ex.tadShapeInfoAndOffsets(a, new int[]{0});
        assertNotSame(rows, columns);
        assertArrayEquals(new long[]{0, 4, 8, 12, 16, 20}, rows.getTadOffsets().asLong());
        assertArrayEquals(new long[]{0, 1, 2, 3}, columns.getTadOffsets().asLong());
    }

    /** Row and column broadcasts and reductions on arrays and views that share packs, against plain loops. */
    @Test
    void sharedPacksGiveEachArrayItsOwnAnswer() {
        INDArray whole = Nd4j.rand(DataType.DOUBLE, 9, 5);
        INDArray[] xs = {Nd4j.rand(DataType.DOUBLE, 4, 5), Nd4j.rand(DataType.DOUBLE, 4, 5),
                whole.get(NDArrayIndex.interval(2, 6), NDArrayIndex.all()),       // a view at an offset, same shape info
                whole.get(NDArrayIndex.interval(5, 9), NDArrayIndex.all())};
        for (INDArray x : xs) {
            INDArray rowMeans = x.mean(true, 1), columnSums = x.sum(true, 0);
            INDArray centred = x.subColumnVector(rowMeans), scaled = x.mulRowVector(columnSums);
            for (int i = 0; i < 4; i++) {
                double mean = 0;
                for (int j = 0; j < 5; j++) mean += x.getDouble(i, j) / 5;
                assertEquals(mean, rowMeans.getDouble(i, 0), 1e-12);
                for (int j = 0; j < 5; j++) {
                    double column = 0;
                    for (int k = 0; k < 4; k++) column += x.getDouble(k, j);
                    assertEquals(column, columnSums.getDouble(0, j), 1e-12);
                    assertEquals(x.getDouble(i, j) - mean, centred.getDouble(i, j), 1e-12);
                    assertEquals(x.getDouble(i, j) * column, scaled.getDouble(i, j), 1e-12);
                }
            }
        }
    }

    @Test
    void aFullCacheStartsAgainInsteadOfGrowing() {
        CachedTadOpExecutioner ex = (CachedTadOpExecutioner) Nd4j.getExecutioner();
        for (int i = 1; i <= CachedTadOpExecutioner.MAX_PACKS + 1; i++)
            ex.tadShapeInfoAndOffsets(Nd4j.create(DataType.FLOAT, 1, i), new int[]{1});
        assertTrue(ex.cachedPacks() <= CachedTadOpExecutioner.MAX_PACKS);
    }
}
