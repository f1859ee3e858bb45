package org.sparkformer.driver;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/** A small generated corpus with learnable structure: sentences from a tiny grammar. */
final class TestCorpus {
    private TestCorpus() {}

    static String text(int sentences, long seed) {
        String[] subjects = {"the cat", "a dog", "my friend", "the old man", "some birds"};
        String[] verbs = {"sees", "likes", "follows", "finds", "hears"};
        String[] objects = {"the river.", "a red ball.", "the moon.", "small fish.", "the garden."};
        Random r = new Random(seed);
        StringBuilder sb = new StringBuilder();
        for (int i = 0; i < sentences; i++)
            sb.append(subjects[r.nextInt(5)]).append(' ').append(verbs[r.nextInt(5)]).append(' ').append(objects[r.nextInt(5)]).append('\n');
        return sb.toString();
    }

    static Path write(Path dir, String name, String text) throws IOException {
        Path p = dir.resolve(name);
        Files.writeString(p, text, StandardCharsets.UTF_8);
        return p;
    }
}
