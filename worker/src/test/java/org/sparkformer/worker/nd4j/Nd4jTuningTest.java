package org.sparkformer.worker.nd4j;

import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** On the CPU build (the CUDA build leaves both classes out, and compiles this test without running it). */
class Nd4jTuningTest {
    static final String PROVIDER = "org.sparkformer.worker.nd4j.CachedShapeInfoProvider", EXECUTIONER = "org.sparkformer.worker.nd4j.CachedTadOpExecutioner";

    @Test
    void namesBothClassesOfThisCpuBuildAndMklOnIntel() {
        Map<String, String> expected = new LinkedHashMap<>(Map.of("shapeinfoprovider", PROVIDER, "opexec", EXECUTIONER));
        if (Nd4jTuning.cpuVendor().equals("GenuineIntel")) expected.put(Nd4jTuning.BLAS, "mkl_rt");   // MKL's jar is a dependency
        assertEquals(expected, Nd4jTuning.properties());
    }

    @Test
    void mklOnlyOnIntelCpusAndOnlyWhereItsLibrariesAre() {
        assertFalse(Nd4jTuning.cpuVendor().isEmpty(), "no vendor_id in /proc/cpuinfo");
        assertTrue(Nd4jTuning.useMkl("GenuineIntel", true));
        assertFalse(Nd4jTuning.useMkl("GenuineIntel", false));
        assertFalse(Nd4jTuning.useMkl("AuthenticAMD", true));
        assertFalse(Nd4jTuning.useMkl("", true));
    }

    @Test
    void executorOptionsLeaveAPropertyTheUserNamed() {
        String blas = Nd4jTuning.properties().containsKey(Nd4jTuning.BLAS) ? " -D" + Nd4jTuning.BLAS + "=mkl_rt" : "";
        assertEquals("-Dshapeinfoprovider=" + PROVIDER + " -Dopexec=" + EXECUTIONER + blas,
                Nd4jTuning.javaOptions("-Xss4m"));
        assertEquals("-Dshapeinfoprovider=" + PROVIDER + blas, Nd4jTuning.javaOptions("-Dopexec=my.Executioner"));
        assertEquals("-Dshapeinfoprovider=" + PROVIDER + " -Dopexec=" + EXECUTIONER,
                Nd4jTuning.javaOptions("-D" + Nd4jTuning.BLAS + "=openblas"));
    }
}
