package org.sparkformer.worker.nd4j;

import org.junit.jupiter.api.Test;

import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** On the CPU build (the CUDA build leaves both classes out, and compiles this test without running it). */
class Nd4jTuningTest {
    static final String PROVIDER = "org.sparkformer.worker.nd4j.CachedShapeInfoProvider", EXECUTIONER = "org.sparkformer.worker.nd4j.CachedTadOpExecutioner";

    @Test
    void namesBothClassesOfThisCpuBuild() {
        assertEquals(Map.of("shapeinfoprovider", PROVIDER, "opexec", EXECUTIONER),
                Nd4jTuning.properties());
    }

    @Test
    void executorOptionsLeaveAPropertyTheUserNamed() {
        assertEquals("-Dshapeinfoprovider=" + PROVIDER + " -Dopexec=" + EXECUTIONER,
                Nd4jTuning.javaOptions("-Xss4m"));
        assertEquals("-Dshapeinfoprovider=" + PROVIDER, Nd4jTuning.javaOptions("-Dopexec=my.Executioner"));
    }
}
