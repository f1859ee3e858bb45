package org.sparkformer.worker.nd4j;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.bytedeco.javacpp.DoublePointer;
import org.bytedeco.javacpp.FloatPointer;
import org.bytedeco.javacpp.Loader;
import org.bytedeco.mkl.global.mkl_rt;
import org.nd4j.linalg.api.blas.Blas;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import static org.bytedeco.mkl.global.mkl_rt.*;

/**
 * MKL's vector math (VML) on ND4J arrays, where MKL is the BLAS this process loaded (Nd4jTuning). ND4J's transcendental
 * ops call the C library's scalar expf per element: its sigmoid over [512, 512] takes ~1 ms on one core, VML's tanh
 * ~0.09 ms. Callers keep an ND4J form for every other case (OpenBLAS, the CUDA backend, 16-bit arrays, views).
 */
public final class Vml {
    private static final Logger log = LogManager.getLogger(Vml.class);
    private static final boolean LOADED = load();

    private Vml() {}

    private static boolean load() {
        try {
            Blas.Vendor vendor = Nd4j.factory().blas().getBlasVendor();
            if (vendor != Blas.Vendor.MKL) {
                // JavaCPP skips a library it cannot preload without a word: say so where MKL was asked for
                if (Nd4jTuning.MKL.equals(System.getProperty(Nd4jTuning.BLAS)))
                    log.warn("-D{}={} asked for MKL, but ND4J's products run on {}: JavaCPP did not load {} "
                            + "(-Dorg.bytedeco.javacpp.logger.debug=true says why); training runs slower", Nd4jTuning.BLAS,
                            Nd4jTuning.MKL, vendor, Nd4jTuning.MKL);
                return false;
            }
            Loader.load(mkl_rt.class);
            return true;
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** Whether {@link #sigmoidOfTwiceInPlace} takes {@code x}: MKL loaded, 32 or 64 bits, one dense row-major block. */
    public static boolean takes(INDArray x) {
        return LOADED && (x.dataType() == DataType.FLOAT || x.dataType() == DataType.DOUBLE) && x.ordering() == 'c'
                && x.elementWiseStride() == 1 && x.length() == x.data().length() - x.offset() && x.length() <= Integer.MAX_VALUE;
    }

    /** x <- sigmoid(2x) = 0.5 + 0.5 tanh(x), in two VML passes (tanh to 1 ulp, then a linear map). */
    public static void sigmoidOfTwiceInPlace(INDArray x) {
        if (!takes(x)) throw new IllegalArgumentException("VML cannot take this array: " + x.shapeInfoToString());
        int n = (int) x.length();
        if (x.dataType() == DataType.FLOAT) {
            FloatPointer p = new FloatPointer(x.data().addressPointer()).position(x.offset());
            vmsTanh(n, p, p, VML_HA);
            vsLinearFrac(n, p, p, 0.5f, 0.5f, 0f, 1f, p);
        } else {
            DoublePointer p = new DoublePointer(x.data().addressPointer()).position(x.offset());
            vmdTanh(n, p, p, VML_HA);
            vdLinearFrac(n, p, p, 0.5, 0.5, 0, 1, p);
        }
    }
}
