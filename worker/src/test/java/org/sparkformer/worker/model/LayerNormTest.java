package org.sparkformer.worker.model;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.junit.jupiter.api.Assertions.*;

/** LayerNorm's forward is the definition, row by row (its backward: GradientCheckTest). */
class LayerNormTest {
    @Test void forwardIsTheDefinition() {
        Nd4j.getRandom().setSeed(9);
        int n = 5, c = 7;
        INDArray x = Nd4j.randn(DataType.DOUBLE, n, c).muli(3).addi(2), g = Nd4j.randn(DataType.DOUBLE, 1, c), b = Nd4j.randn(DataType.DOUBLE, 1, c);
        LayerNorm.Cache[] cache = new LayerNorm.Cache[1];
        INDArray y = LayerNorm.forward(x, g, b, cache);
        for (int i = 0; i < n; i++) {
            double mean = 0, var = 0;
            for (int j = 0; j < c; j++) mean += x.getDouble(i, j) / c;
            for (int j = 0; j < c; j++) var += Math.pow(x.getDouble(i, j) - mean, 2) / c;
            double rstd = 1 / Math.sqrt(var + LayerNorm.EPS);
            assertEquals(rstd, cache[0].rstd().getDouble(i, 0), 1e-12 * rstd, "rstd row " + i);
            for (int j = 0; j < c; j++)
                assertEquals((x.getDouble(i, j) - mean) * rstd * g.getDouble(0, j) + b.getDouble(0, j), y.getDouble(i, j), 1e-12, "y " + i + "," + j);
        }
    }

    @Test void rowMeansAreWeightedMeansOfEachRow() {
        Nd4j.getRandom().setSeed(4);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 6, 9), w = Nd4j.randn(DataType.DOUBLE, 1, 9);
        INDArray plain = Gemm.rowMeans(x, null), weighted = Gemm.rowMeans(x, w);
        assertArrayEquals(new long[]{6, 1}, weighted.shape());
        assertEquals(0.0, plain.sub(x.mean(true, 1)).amaxNumber().doubleValue(), 1e-12);
        assertEquals(0.0, weighted.sub(x.mulRowVector(w).mean(true, 1)).amaxNumber().doubleValue(), 1e-12);
    }
}
