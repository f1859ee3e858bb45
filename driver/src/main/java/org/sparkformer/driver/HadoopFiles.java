package org.sparkformer.driver;

import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/** Small text files (JSON, vocabularies) on any Hadoop FileSystem, size-checked. */
final class HadoopFiles {
    static final int MAX_TEXT_BYTES = 64 << 20;

    private HadoopFiles() {}

    static String readText(FileSystem fs, Path p) throws IOException {
        try (InputStream in = fs.open(p)) {
            byte[] bytes = in.readNBytes(MAX_TEXT_BYTES + 1);
            if (bytes.length > MAX_TEXT_BYTES) throw new IOException(p + " is too large");
            return new String(bytes, StandardCharsets.UTF_8);
        }
    }

    static void writeText(FileSystem fs, Path p, String text) throws IOException {
        try (FSDataOutputStream out = fs.create(p, true)) { out.write(text.getBytes(StandardCharsets.UTF_8)); }
    }
}
