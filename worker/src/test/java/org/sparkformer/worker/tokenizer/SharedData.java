package org.sparkformer.worker.tokenizer;

import java.nio.file.Files;
import java.nio.file.Path;

/** Finds the workplace's shared test data (../shared/data from the project), which may be absent. */
public final class SharedData {
    private SharedData() {}

    /** The folder data/&lt;name&gt; under a "shared" folder beside the project or any of its ancestors, or null. */
    public static Path find(String name) {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent()) {
            Path p = dir.resolve("shared").resolve("data").resolve(name);
            if (Files.exists(p)) return p;
        }
        return null;
    }
}
