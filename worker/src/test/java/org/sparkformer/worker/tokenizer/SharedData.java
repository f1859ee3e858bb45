package org.sparkformer.worker.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Finds the workplace's shared test data (../shared/data beside the project, or $SPARKFORMER_SHARED_DATA, or the
 * workplace's /work/shared/data), which may be absent: tests that need it are then skipped with a message.
 */
public final class SharedData {
    private SharedData() {}

    /** The folder data/&lt;name&gt; under a "shared" folder beside the project or any of its ancestors, or null. */
    public static Path find(String name) {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path p = dir.resolve("shared").resolve("data").resolve(name);
            if (Files.exists(p)) return p;
        }
        String env = System.getenv("SPARKFORMER_SHARED_DATA");
        for (String root : new String[]{env, "/work/shared/data"})
            if (root != null && Files.exists(Path.of(root, name))) return Path.of(root, name);
        return null;
    }
}
