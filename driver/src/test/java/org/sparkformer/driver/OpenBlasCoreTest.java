package org.sparkformer.driver;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** scripts/openblas-core.sh: the OpenBLAS kernel family the launchers name for a CPU, and a user's own choice kept. */
class OpenBlasCoreTest {
    /** Runs {@code before}, sources the script, runs {@code after}; returns what they print. */
    private static String around(String before, String after) throws Exception {
        String script = GpuBindingTest.root().resolve("scripts/openblas-core.sh").toString();
        return GpuBindingTest.run(List.of("bash", "-c", before + "; . '" + script + "'; " + after), "/usr/bin:/bin");
    }

    private static String familyFor(String flags) throws Exception {
        return around("true", "echo \"[$(openblas_coretype_for '" + flags + "')]\"");
    }

    @Test void namesTheNewestFamilyTheFlagsAllow() throws Exception {
        // AMD Zen 5's flags (abridged): AVX-512 with the BW/VL/DQ subsets SkylakeX's kernels use
        assertEquals("[SkylakeX]", familyFor("fpu sse2 avx avx2 fma avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16"));
        // AVX-512 foundation alone (Xeon Phi) lacks the subsets: Haswell's AVX2 kernels
        assertEquals("[Haswell]", familyFor("fpu sse2 avx avx2 fma avx512f avx512cd"));
        assertEquals("[Haswell]", familyFor("fpu sse2 avx avx2 fma"));
        // no AVX2: nothing named, OpenBLAS detects on its own; a flag's name inside another's does not count
        assertEquals("[]", familyFor("fpu sse2 avx"));
        assertEquals("[]", familyFor("fpu sse2 avx2x fmax"));
    }

    @Test void keepsAUsersChoiceAndOtherwiseNamesThisCpusFamily() throws Exception {
        assertEquals("Zen", around("export OPENBLAS_CORETYPE=Zen", "echo $OPENBLAS_CORETYPE"));
        String flags = Files.readAllLines(Path.of("/proc/cpuinfo")).stream()
                .filter(l -> l.startsWith("flags")).findFirst().orElse("").replaceFirst("^[^:]*:", "");
        assertEquals(familyFor(flags).replaceAll("[\\[\\]]", ""), around("unset OPENBLAS_CORETYPE", "echo ${OPENBLAS_CORETYPE:-}"));
    }
}
