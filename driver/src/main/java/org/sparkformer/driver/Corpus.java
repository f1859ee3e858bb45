package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.ByteArrayOutputStream;
import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.zip.ZipEntry;
import java.util.zip.ZipInputStream;

/**
 * Training text from any Hadoop FileSystem URI (file, hdfs, s3a): a text file, a folder of text files
 * (recursively, in name order, hidden files skipped), or a zip. A JDK's src.zip contributes only its
 * java.base module: the built-in demo corpus. Text must be UTF-8; binary files are refused.
 */
public final class Corpus {
    private Corpus() {}

    public static String read(String uri, Configuration hadoop) {
        return read(uri, hadoop, "--data");
    }

    /** The same, with errors naming the given flag. */
    public static String read(String uri, Configuration hadoop, String flag) {
        Path path = new Path(uri);
        try {
            FileSystem fs = path.getFileSystem(hadoop);
            FileStatus status = fs.getFileStatus(path);
            StringBuilder text = new StringBuilder();
            if (status.isDirectory()) {
                List<FileStatus> files = new ArrayList<>();
                collect(fs, path, files);
                files.sort(Comparator.comparing(f -> f.getPath().toString()));
                if (files.isEmpty()) throw new UserError(flag + " " + uri + ": folder has no files");
                for (FileStatus f : files) appendFile(fs, f.getPath(), text, flag);
            } else {
                appendFile(fs, path, text, flag);
            }
            if (text.length() == 0) throw new UserError(flag + " " + uri + ": no text (empty input)");
            return text.toString();
        } catch (FileNotFoundException e) {
            throw new UserError(flag + " " + uri + ": no such file or folder");
        } catch (IOException e) {
            throw new UserError(flag + " " + uri + ": cannot read (" + e.getMessage() + ")");
        }
    }

    private static void collect(FileSystem fs, Path dir, List<FileStatus> out) throws IOException {
        for (FileStatus s : fs.listStatus(dir)) {
            String name = s.getPath().getName();
            if (name.startsWith(".") || name.startsWith("_")) continue;
            if (s.isDirectory()) collect(fs, s.getPath(), out);
            else out.add(s);
        }
    }

    private static void appendFile(FileSystem fs, Path file, StringBuilder text, String flag) throws IOException {
        try (InputStream in = fs.open(file)) {
            if (file.getName().toLowerCase().endsWith(".zip")) appendZip(in, file, text, flag);
            else appendText(in.readAllBytes(), file.toString(), text, flag);
        }
    }

    private static void appendZip(InputStream raw, Path file, StringBuilder text, String flag) throws IOException {
        boolean jdkSources = file.getName().equals("src.zip");
        int kept = 0;
        try (ZipInputStream zip = new ZipInputStream(raw, StandardCharsets.UTF_8)) {
            ZipEntry e;
            List<String[]> entries = new ArrayList<>();
            while ((e = zip.getNextEntry()) != null) {
                if (e.isDirectory()) continue;
                String name = e.getName();
                if (jdkSources && !(name.startsWith("java.base/") && name.endsWith(".java"))) continue;
                ByteArrayOutputStream buf = new ByteArrayOutputStream();
                zip.transferTo(buf);
                entries.add(new String[]{name, decode(buf.toByteArray(), file + "!" + name, flag)});
            }
            entries.sort(Comparator.comparing(a -> a[0]));
            for (String[] entry : entries) {
                if (text.length() > 0) text.append('\n');
                text.append(entry[1]);
                kept++;
            }
        }
        if (kept == 0) throw new UserError(flag + " " + file + ": zip has no usable entries");
    }

    private static void appendText(byte[] bytes, String name, StringBuilder text, String flag) {
        if (bytes.length == 0) return;
        String s = decode(bytes, name, flag);
        if (text.length() > 0) text.append('\n');
        text.append(s);
    }

    private static String decode(byte[] bytes, String name, String flag) {
        for (int i = 0; i < Math.min(bytes.length, 8192); i++)
            if (bytes[i] == 0) throw new UserError(flag + " " + name + ": looks binary (NUL byte at offset " + i + "), expected UTF-8 text");
        try {
            return StandardCharsets.UTF_8.newDecoder().onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT).decode(ByteBuffer.wrap(bytes)).toString();
        } catch (CharacterCodingException e) {
            throw new UserError(flag + " " + name + ": not valid UTF-8 text");
        }
    }

    /**
     * The built-in demo corpus: the running JDK's src.zip, else $JAVA_HOME's, else any JDK under
     * /usr/lib/jvm (Debian ships the sources of its own JDK in a separate package).
     */
    public static String defaultJdkSources() {
        List<java.nio.file.Path> candidates = new ArrayList<>();
        candidates.add(java.nio.file.Path.of(System.getProperty("java.home"), "lib", "src.zip"));
        String javaHome = System.getenv("JAVA_HOME");
        if (javaHome != null && !javaHome.isBlank()) candidates.add(java.nio.file.Path.of(javaHome, "lib", "src.zip"));
        java.io.File[] jdks = new java.io.File("/usr/lib/jvm").listFiles();
        if (jdks != null) {
            Arrays.sort(jdks);
            for (java.io.File jdk : jdks) candidates.add(jdk.toPath().resolve("lib").resolve("src.zip"));
        }
        for (java.nio.file.Path p : candidates) if (Files.isRegularFile(p)) return p.toUri().toString();
        throw new UserError("no --data given and the JDK's own sources ($JAVA_HOME/lib/src.zip) are missing: "
                + "install them (Debian: apt-get install openjdk-17-source) or pass --data FILE|FOLDER|ZIP");
    }
}
