package org.sparkformer.worker.nd4j;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Our replacements for two of ND4J's CPU-backend classes ({@link CachedShapeInfoProvider}, {@link CachedTadOpExecutioner}),
 * as the system properties through which ND4J picks its classes when it starts. CPU builds only: the CUDA build
 * leaves both classes out, and then there is nothing to install.
 * <p>
 * And the BLAS behind ND4J's products: on Intel CPUs, Intel's MKL (JavaCPP's OpenBLAS presets load it in OpenBLAS's
 * place when {@value #BLAS} names it; training steps measured faster than with ND4J's OpenBLAS 0.3.19 on the AVX-512
 * reference machine, docs/PERFORMANCE.md). Elsewhere OpenBLAS stays; {@code -D}{@value #BLAS}{@code =openblas} keeps it
 * on Intel too.
 */
public final class Nd4jTuning {
    private static final Logger log = LogManager.getLogger(Nd4jTuning.class);
    private static final String PACKAGE = Nd4jTuning.class.getPackageName();
    /** JavaCPP's name of the library its OpenBLAS presets load (ND4J's products go to its cblas_sgemm/dgemm). */
    public static final String BLAS = "org.bytedeco.openblas.load";
    /** MKL's single dynamic library, which picks its kernels for the CPU it runs on. */
    static final String MKL = "mkl_rt";
    /** Where the MKL redistributable jar (a dependency of this module) keeps its libraries. */
    private static final String MKL_LIBRARY = "org/bytedeco/mkl/linux-x86_64/libmkl_rt.so.2";

    private Nd4jTuning() {}

    /** System property -> value: ND4J's names for our classes (those this build has), JavaCPP's for the BLAS to load. */
    public static Map<String, String> properties() {
        Map<String, String> p = new LinkedHashMap<>();
        if (present(PACKAGE + ".CachedShapeInfoProvider")) p.put("shapeinfoprovider", PACKAGE + ".CachedShapeInfoProvider");
        boolean cpuBuild = present(PACKAGE + ".CachedTadOpExecutioner");
        if (cpuBuild) p.put("opexec", PACKAGE + ".CachedTadOpExecutioner");
        if (cpuBuild && useMkl(cpuVendor(), Nd4jTuning.class.getClassLoader().getResource(MKL_LIBRARY) != null)) p.put(BLAS, MKL);
        return p;
    }

    /** MKL for a CPU backend on an Intel CPU when its libraries are on the class path (on AMD it was not measured faster). */
    static boolean useMkl(String cpuVendor, boolean mklPresent) {
        return mklPresent && "GenuineIntel".equals(cpuVendor);
    }

    /** /proc/cpuinfo's vendor_id ("GenuineIntel", "AuthenticAMD"), or "" where there is none. */
    static String cpuVendor() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("vendor_id")).map(l -> l.substring(l.indexOf(':') + 1).trim()).findFirst().orElse("");
        } catch (IOException | UncheckedIOException e) {
            return "";
        }
    }

    /** Sets each property not already set; effective only before ND4J's first use in this JVM (a CLI's first line). */
    public static void install() {
        properties().forEach((k, v) -> {
            if (System.getProperty(k) == null) System.setProperty(k, v);
            else if (!System.getProperty(k).equals(v)) log.info("{} stays {} (set by the user)", k, System.getProperty(k));
        });
    }

    /** The same as JVM options, for executors; none for a property already named in {@code existing}. */
    public static String javaOptions(String existing) {
        StringBuilder b = new StringBuilder();
        properties().forEach((k, v) -> {
            if (!existing.contains("-D" + k + "=")) b.append(b.length() == 0 ? "" : " ").append("-D").append(k).append('=').append(v);
        });
        return b.toString();
    }

    private static boolean present(String className) {
        try {
            Class.forName(className, false, Nd4jTuning.class.getClassLoader());
            return true;
        } catch (ClassNotFoundException | LinkageError e) {
            return false;
        }
    }
}
