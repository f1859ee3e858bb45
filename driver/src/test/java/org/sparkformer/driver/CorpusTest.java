package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.ZipEntry;
import java.util.zip.ZipOutputStream;

import static org.junit.jupiter.api.Assertions.*;

class CorpusTest {
    @TempDir Path tmp;

    @Test void fileFolderAndZip() throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("texts/sub"));
        Files.writeString(tmp.resolve("texts/b.txt"), "second");
        Files.writeString(tmp.resolve("texts/a.txt"), "first");
        Files.writeString(dir.resolve("c.txt"), "third");
        Files.writeString(tmp.resolve("texts/.hidden"), "never");
        Configuration hadoop = new Configuration();
        assertEquals("first", Corpus.read(tmp.resolve("texts/a.txt").toString(), hadoop));
        assertEquals("first\nsecond\nthird", Corpus.read(tmp.resolve("texts").toString(), hadoop));
        assertEquals("first\nsecond\nthird", Corpus.read(tmp.resolve("texts").toUri().toString(), hadoop));

        Path zip = tmp.resolve("corpus.zip");
        writeZip(zip, "x/one.txt", "uno", "two.txt", "dos");
        assertEquals("dos\nuno", Corpus.read(zip.toString(), hadoop));
    }

    @Test void aJdkSourceArchiveContributesOnlyJavaBase() throws IOException {
        Path jdk = Files.createDirectories(tmp.resolve("jdk/lib")).resolve("src.zip");
        writeZip(jdk, "java.base/java/lang/A.java", "class A {}", "java.desktop/java/awt/B.java", "class B {}",
                "java.base/java/lang/notes.html", "<p>");
        assertEquals("class A {}", Corpus.read(jdk.toString(), new Configuration()));
    }

    private static void writeZip(Path zip, String... namesAndTexts) throws IOException {
        try (OutputStream out = Files.newOutputStream(zip); ZipOutputStream z = new ZipOutputStream(out)) {
            for (int i = 0; i < namesAndTexts.length; i += 2) {
                z.putNextEntry(new ZipEntry(namesAndTexts[i]));
                z.write(namesAndTexts[i + 1].getBytes(StandardCharsets.UTF_8));
                z.closeEntry();
            }
        }
    }
}
