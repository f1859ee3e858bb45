package org.sparkformer.worker.model;

import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.blas.Blas;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.nd4j.Nd4jTuning;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Products replace what their output held (BLAS's beta = 0), wherever its memory comes from. Run with OpenBLAS and,
 * in the module's "mkl" test execution, with MKL (worker/pom.xml).
 */
class GemmTest {
    private static final INDArray A = Nd4j.rand(DataType.DOUBLE, 6, 3), B = Nd4j.rand(DataType.DOUBLE, 3, 5);
    private static final INDArray AB = reference(A, B);

    /** Plain loops: no BLAS in the expected value. */
    private static INDArray reference(INDArray a, INDArray b) {
        INDArray c = Nd4j.zeros(DataType.DOUBLE, a.rows(), b.columns());
        for (int i = 0; i < a.rows(); i++)
            for (int j = 0; j < b.columns(); j++) {
                double s = 0;
                for (int k = 0; k < a.columns(); k++) s += a.getDouble(i, k) * b.getDouble(k, j);
                c.putScalar(i, j, s);
            }
        return c;
    }

    private static void assertClose(INDArray expected, INDArray actual) {
        assertTrue(expected.equalsWithEps(actual, 1e-12), "expected " + expected + " got " + actual);
    }

    /** The BLAS this JVM was asked for is the one computing: else the "mkl" execution would test OpenBLAS twice. */
    @Test void theRequestedBlasRuns() {
        boolean mkl = "mkl_rt".equals(System.getProperty(Nd4jTuning.BLAS));
        assertEquals(mkl ? Blas.Vendor.MKL : Blas.Vendor.OPENBLAS, Nd4j.factory().blas().getBlasVendor());
    }

    @Test void intoReplacesTheOutputsContents() {
        INDArray out = Nd4j.valueArrayOf(new long[]{6, 5}, 7.0, DataType.DOUBLE);
        Gemm.into(out, A, false, B, false);
        assertClose(AB, out);
    }

    /** A training step's arrays come from workspaces, whose memory still holds the previous step's values. */
    @Test void mmIgnoresWhatItsWorkspaceMemoryHeld() {
        WorkspaceConfiguration conf = WorkspaceConfiguration.builder().initialSize(1 << 20).policyAllocation(AllocationPolicy.STRICT).build();
        for (int pass = 0; pass < 2; pass++) {
            try (MemoryWorkspace ws = Nd4j.getWorkspaceManager().getAndActivateWorkspace(conf, "gemm-test")) {
                if (pass == 0) Nd4j.createUninitialized(DataType.DOUBLE, 6, 5).assign(9.0);   // where the next pass allocates
                else assertClose(AB, Gemm.mm(A, false, B, false).detach());
            }
        }
        Nd4j.getWorkspaceManager().destroyWorkspace(Nd4j.getWorkspaceManager().getWorkspaceForCurrentThread("gemm-test"));
    }
}
