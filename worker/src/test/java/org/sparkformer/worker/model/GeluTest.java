package org.sparkformer.worker.model;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.blas.Blas;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.nd4j.Vml;

import static org.junit.jupiter.api.Assertions.assertEquals;

/** GELU's values against GPT-2's formula in plain Java, with MKL's vector math (the "mkl" test execution) and without. */
class GeluTest {
    private static double gpt2Gelu(double x) {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    private static void check(DataType type, double tolerance) {
        INDArray a = Nd4j.linspace(-6, 6, 97, DataType.DOUBLE).reshape(1, 97).castTo(type);
        INDArray g = Gelu.forward(a, Gelu.sigmoidPart(a));
        for (int i = 0; i < a.length(); i++) {
            double x = a.getDouble(i);
            assertEquals(gpt2Gelu(x), g.getDouble(i), tolerance * Math.max(1, Math.abs(x)), "gelu(" + x + ") in " + type);
        }
    }

    @Test void matchesGpt2sFormulaInDouble() { check(DataType.DOUBLE, 1e-14); }

    @Test void matchesGpt2sFormulaInFloat() { check(DataType.FLOAT, 1e-6); }

    /** MKL's path where MKL is the BLAS, else ND4J's: so both executions test a different path. */
    @Test void usesMklsVectorMathExactlyWhereMklIsLoaded() {
        boolean mkl = Nd4j.factory().blas().getBlasVendor() == Blas.Vendor.MKL;
        assertEquals(mkl, Vml.takes(Nd4j.rand(DataType.FLOAT, 4, 8)));
        assertEquals(false, Vml.takes(Nd4j.rand(DataType.FLOAT, 4, 8).transpose()));
        assertEquals(false, Vml.takes(Nd4j.rand(DataType.HALF, 4, 8)));
    }
}
