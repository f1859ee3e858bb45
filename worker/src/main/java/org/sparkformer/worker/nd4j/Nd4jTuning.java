package org.sparkformer.worker.nd4j;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Our replacements for two of ND4J's CPU-backend classes ({@link CachedShapeInfoProvider}, {@link CachedTadOpExecutioner}),
 * as the system properties through which ND4J picks its classes when it starts. CPU builds only: the CUDA build
 * leaves both classes out, and then there is nothing to install.
 */
public final class Nd4jTuning {
    private static final Logger log = LogManager.getLogger(Nd4jTuning.class);
    private static final String PACKAGE = Nd4jTuning.class.getPackageName();

    private Nd4jTuning() {}

    /** ND4J's property name -> our class, for the classes this build has. */
    public static Map<String, String> properties() {
        Map<String, String> p = new LinkedHashMap<>();
        if (present(PACKAGE + ".CachedShapeInfoProvider")) p.put("shapeinfoprovider", PACKAGE + ".CachedShapeInfoProvider");
        if (present(PACKAGE + ".CachedTadOpExecutioner")) p.put("opexec", PACKAGE + ".CachedTadOpExecutioner");
        return p;
    }

    /** Sets each property not already set; effective only before ND4J's first use in this JVM (a CLI's first line). */
    public static void install() {
        properties().forEach((k, v) -> {
            if (System.getProperty(k) == null) System.setProperty(k, v);
            else if (!System.getProperty(k).equals(v)) log.info("ND4J's {} stays {} (set by the user)", k, System.getProperty(k));
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
