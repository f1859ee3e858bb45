package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataInputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.SerializableConfiguration;
import org.sparkformer.worker.data.IntList;
import org.sparkformer.worker.io.TokenShard;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.Serializable;
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * A dataset written by {@code prepare}: manifest.json, tokenizer.json and train/ and val/ token shards, at
 * any Hadoop URI. The train shards form one token stream; worker i of W trains on its i-th slice, which
 * each executor reads itself, straight from the file system (the driver only reads the manifest and a
 * validation sample).
 */
final class TokenDataset {
    static final String FORMAT = "sparkformer-tokens", MANIFEST = "manifest.json";
    private static final ObjectMapper JSON = new ObjectMapper();

    record Shard(String uri, long tokens, long crc) implements Serializable {}

    final String root;
    final Tokenizer tokenizer;
    final List<Shard> train, val;
    final long trainTokens, valTokens;

    private TokenDataset(String root, Tokenizer tokenizer, List<Shard> train, List<Shard> val) {
        this.root = root;
        this.tokenizer = tokenizer;
        this.train = train;
        this.val = val;
        this.trainTokens = train.stream().mapToLong(Shard::tokens).sum();
        this.valTokens = val.stream().mapToLong(Shard::tokens).sum();
    }

    /** A manifest.json, or a folder holding one. */
    static boolean isDataset(String uri, Configuration hadoop) {
        try {
            Path p = new Path(uri);
            FileSystem fs = p.getFileSystem(hadoop);
            if (p.getName().equals(MANIFEST)) return true;
            return fs.exists(p) && fs.getFileStatus(p).isDirectory() && fs.exists(new Path(p, MANIFEST));
        } catch (IOException e) {
            return false;
        }
    }

    static TokenDataset open(String uri, Configuration hadoop) {
        Path p = new Path(uri);
        Path manifest = p.getName().equals(MANIFEST) ? p : new Path(p, MANIFEST);
        Path dir = manifest.getParent();
        try {
            FileSystem fs = manifest.getFileSystem(hadoop);
            dir = fs.makeQualified(dir);
            JsonNode m;
            try {
                m = JSON.readTree(HadoopFiles.readText(fs, manifest));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new UserError("--data " + manifest + ": not valid JSON (" + e.getOriginalMessage() + ")");
            }
            if (m == null || !FORMAT.equals(m.path("format").asText()))
                throw new UserError("--data " + manifest + ": not a sparkformer dataset manifest (format must be " + FORMAT + ")");
            if (m.path("version").asInt() != 1)
                throw new UserError("--data " + manifest + ": unsupported dataset version " + m.path("version"));
            Path tokFile = new Path(dir, m.path("tokenizer").path("file").asText(TokenizerFiles.JSON));
            String tokJson = HadoopFiles.readText(fs, tokFile);
            if (!sha256(tokJson).equals(m.path("tokenizer").path("sha256").asText()))
                throw new UserError("--data " + tokFile + ": does not match the manifest's tokenizer (files from another tokenizer or dataset?)");
            Tokenizer tokenizer;
            try {
                tokenizer = Tokenizer.fromJson(tokJson);
            } catch (IllegalArgumentException e) {
                throw new UserError("--data " + tokFile + ": " + e.getMessage());
            }
            if (tokenizer.vocabSize() != m.path("tokenizer").path("vocab_size").asInt())
                throw new UserError("--data " + manifest + ": vocab_size " + m.path("tokenizer").path("vocab_size") + " differs from "
                        + tokFile.getName() + "'s " + tokenizer.vocabSize());
            TokenDataset d = new TokenDataset(dir.toString(), tokenizer, shards(m, "train", dir, manifest), shards(m, "val", dir, manifest));
            if (d.trainTokens == 0) throw new UserError("--data " + manifest + ": has no training tokens");
            return d;
        } catch (FileNotFoundException e) {
            throw new UserError("--data " + uri + ": missing file (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new UserError("--data " + uri + ": cannot read (" + e.getMessage() + ")");
        }
    }

    private static List<Shard> shards(JsonNode m, String split, Path dir, Path manifest) {
        List<Shard> out = new ArrayList<>();
        for (JsonNode s : m.path(split).path("shards")) {
            String rel = s.path("path").asText();
            if (rel.isEmpty() || rel.startsWith("/") || rel.contains(".."))
                throw new UserError("--data " + manifest + ": invalid shard path '" + rel + "'");
            out.add(new Shard(new Path(dir, rel).toString(), s.path("tokens").asLong(), s.path("crc32").asLong()));
        }
        return out;
    }

    /** Tokens [from, to) of the stream the shards form, reading only the shards that overlap it. */
    static int[] read(List<Shard> shards, long from, long to, Configuration hadoop) throws IOException {
        IntList out = new IntList((int) Math.min(to - from, 1 << 20));
        long at = 0;
        for (Shard s : shards) {
            long end = at + s.tokens();
            if (end > from && at < to) {
                int[] t = readShard(s, hadoop);
                int a = (int) Math.max(0, from - at), b = (int) Math.min(t.length, to - at);
                out.addAll(java.util.Arrays.copyOfRange(t, a, b));
            }
            at = end;
        }
        return out.toArray();
    }

    static int[] readShard(Shard s, Configuration hadoop) throws IOException {
        Path p = new Path(s.uri());
        try (FSDataInputStream in = p.getFileSystem(hadoop).open(p)) {
            int[] t = TokenShard.read(new java.io.BufferedInputStream(in, 1 << 20), s.uri(), s.crc());
            if (t.length != s.tokens()) throw new IOException(s.uri() + ": holds " + t.length + " tokens, the manifest says " + s.tokens());
            return t;
        } catch (FileNotFoundException e) {
            throw new UserError("--data " + s.uri() + ": shard listed in the manifest is missing");
        } catch (IOException e) {
            throw new UserError("--data " + e.getMessage());
        }
    }

    /** Executors keep their slice between rounds (each round is a new Spark job). */
    private static final Map<String, int[]> SLICES = new ConcurrentHashMap<>();

    /** Slice i of W of the train stream, read on the executor that trains on it. */
    record ShardSlice(List<Shard> shards, long total, Broadcast<SerializableConfiguration> hadoop) implements WindowBatches.TokenSource {
        @Override public int[] tokens(int partition, int parts) throws IOException {
            long[] r = WindowBatches.slice(total, partition, parts);
            String key = shards.get(0).uri() + "#" + shards.size() + "#" + r[0] + "-" + r[1];
            int[] cached = SLICES.get(key);
            if (cached != null) return cached;
            int[] t = read(shards, r[0], r[1], hadoop.value().value());
            if (SLICES.size() > 8) SLICES.clear();
            SLICES.put(key, t);
            return t;
        }
    }

    static String sha256(String text) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(text.getBytes(StandardCharsets.UTF_8));
            StringBuilder sb = new StringBuilder();
            for (byte b : d) sb.append(String.format("%02x", b));
            return sb.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
