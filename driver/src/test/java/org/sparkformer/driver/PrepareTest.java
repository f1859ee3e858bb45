package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.api.io.TempDir;
import org.sparkformer.worker.tokenizer.ByteLevelBpe;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.zip.GZIPOutputStream;

import static org.junit.jupiter.api.Assertions.*;

/** The prepare job on Spark local[2]: formats in, shards and manifest out, bad input refused with nothing written. */
class PrepareTest {
    static JavaSparkContext sc;
    static final ObjectMapper JSON = new ObjectMapper();
    @TempDir static Path tmp;
    static Path input;
    static String textA, textB;
    static List<String> jsonDocs = List.of("first document, with \"quotes\"", "second: ünïcödé 😀\nover two lines", "third");

    @BeforeAll static void start() throws Exception {
        sc = new JavaSparkContext(Trainer.sparkConf("local[2]"));
        input = Files.createDirectories(tmp.resolve("in"));
        textA = TestCorpus.text(400, 1);
        textB = TestCorpus.text(300, 2);
        TestCorpus.write(input, "a.txt", textA);
        try (OutputStream out = new GZIPOutputStream(Files.newOutputStream(input.resolve("b.txt.gz")))) {
            out.write(textB.getBytes(StandardCharsets.UTF_8));
        }
        StringBuilder jsonl = new StringBuilder();
        for (String d : jsonDocs) jsonl.append(JSON.createObjectNode().put("id", 1).put("text", d)).append('\n');
        TestCorpus.write(input, "c.jsonl", jsonl.toString());
        TestCorpus.write(input, ".hidden.txt", "\u0000 never read");
        Files.createDirectories(input.resolve("_logs"));
        TestCorpus.write(input.resolve("_logs"), "x.txt", "\u0000 never read");
    }

    @AfterAll static void stop() { if (sc != null) sc.close(); }

    static Prepare.Options options(String in, String tokenizer, int vocab, Path out) {
        return new Prepare.Options(List.of(in.split(",")), tokenizer, vocab, out.toString(), 0.1, TextInput.Invalid.FAIL, "text", false);
    }

    static JsonNode manifest(Path dataset) throws Exception {
        return JSON.readTree(dataset.resolve("manifest.json").toFile());
    }

    /** Decoded text of each input split: its train shard followed by its val shard. */
    static Set<String> decodedSplits(Path dataset, Tokenizer tok) throws Exception {
        TokenDataset d = TokenDataset.open(dataset.toString(), new Configuration());
        Set<String> out = new HashSet<>();
        for (TokenDataset.Shard train : d.train) {
            List<Integer> ids = new ArrayList<>();
            for (int t : TokenDataset.readShard(train, new Configuration())) ids.add(t);
            for (TokenDataset.Shard val : d.val)
                if (Path.of(java.net.URI.create(val.uri())).getFileName().equals(Path.of(java.net.URI.create(train.uri())).getFileName()))
                    for (int t : TokenDataset.readShard(val, new Configuration())) ids.add(t);
            out.add(tok.decode(ids.stream().mapToInt(Integer::intValue).toArray()));
        }
        return out;
    }

    @Test void bpeDatasetFromTextGzipAndJsonLinesIsExactAndDeterministic() throws Exception {
        Path out = tmp.resolve("bpe");
        Prepare.Summary s = Prepare.run(sc, options(input.toString(), "bpe", 320, out));
        JsonNode m = manifest(out);
        assertEquals("sparkformer-tokens", m.path("format").asText());
        assertEquals("uint16", m.path("dtype").asText());
        assertEquals(3, m.path("input").path("files").asInt());
        assertEquals(2 + jsonDocs.size(), m.path("input").path("documents").asInt());
        assertEquals(s.trainTokens() + s.valTokens(), m.path("train").path("tokens").asLong() + m.path("val").path("tokens").asLong());

        Tokenizer tok = TokenizerFiles.load(out.toString(), new Configuration(), "--tokenizer");
        assertEquals(320, tok.vocabSize());
        assertEquals(tok, TokenizerFiles.load("gpt2:" + out, new Configuration(), "--tokenizer"));   // HF vocab.json + merges.txt
        String eot = ByteLevelBpe.END_OF_TEXT;
        assertEquals(Set.of(textA + eot, textB + eot, String.join(eot, jsonDocs) + eot), decodedSplits(out, tok));

        // same input, same dataset: vocabulary and every shard's checksum
        Path again = tmp.resolve("bpe-again");
        Prepare.run(sc, options(input.toString(), "bpe", 320, again));
        assertEquals(Files.readString(out.resolve("tokenizer.json")), Files.readString(again.resolve("tokenizer.json")));
        assertEquals(m.get("train"), manifest(again).get("train"));
        assertEquals(m.get("val"), manifest(again).get("val"));
    }

    @Test void globsAndCommaListsChooseTheFiles() throws Exception {
        Path out = tmp.resolve("glob");
        Prepare.run(sc, options(input + "/*.txt," + input + "/c.json?", "char", 0, out));
        JsonNode m = manifest(out);
        assertEquals(2, m.path("input").path("files").asInt());   // a.txt and c.jsonl; not b.txt.gz, not .hidden.txt
        assertEquals(1 + jsonDocs.size(), m.path("input").path("documents").asInt());
        assertTrue(prepareError(input + "/*.csv", "char", 0, tmp.resolve("glob-none")).contains("*.csv: no such file or folder"));
    }

    @Test void charDatasetTrainsAndResumeRefusesAnotherTokenizer() throws Exception {
        Path ds = tmp.resolve("chars");
        Prepare.run(sc, options(input.resolve("a.txt").toString(), "char", 0, ds));
        Path run = tmp.resolve("run-chars");
        TrainConfig c = SparkTrainingTest.tinyConfig(run, 30, ds.toString());
        Trainer.Result r = new Trainer(c, null, false).run(sc);
        assertEquals(30, r.steps());
        assertTrue(r.finalValLoss() < 0.8 * r.firstValLoss(), r.firstValLoss() + " -> " + r.finalValLoss());
        assertEquals(TokenDataset.open(ds.toString(), new Configuration()).tokenizer, Checkpoint.load(run.toString(), new Configuration(), false).tokenizer());

        Path other = tmp.resolve("chars-b");
        Prepare.run(sc, options(input.resolve("c.jsonl").toString(), "char", 0, other));
        TrainConfig more = SparkTrainingTest.tinyConfig(run, 40, other.toString());
        String msg = userError(() -> new Trainer(more, run.toString(), false).run(sc));
        assertTrue(msg.contains("--resume: the checkpoint's tokenizer differs from the dataset's"), msg);
    }

    @Test void corruptShardAndForeignTokenizerAreNamed() throws Exception {
        Path ds = tmp.resolve("corrupt");
        Prepare.run(sc, options(input.resolve("a.txt").toString(), "char", 0, ds));
        Path shard = ds.resolve("train/shard-00000.bin");
        byte[] b = Files.readAllBytes(shard);
        b[b.length - 2] ^= 1;
        Files.write(shard, b);
        Files.deleteIfExists(ds.resolve("train/.shard-00000.bin.crc"));   // Hadoop's own checksum would catch it first
        TrainConfig c = SparkTrainingTest.tinyConfig(tmp.resolve("run-corrupt"), 10, ds.toString());
        String msg = userError(() -> new Trainer(c, null, false).run(sc));
        assertTrue(msg.contains("shard-00000.bin: CRC32 mismatch"), msg);

        Path ds2 = tmp.resolve("foreign");
        Prepare.run(sc, options(input.resolve("a.txt").toString(), "char", 0, ds2));
        Files.writeString(ds2.resolve("tokenizer.json"), Files.readString(tmp.resolve("corrupt/tokenizer.json")).replace("[", "[7,"));
        Files.deleteIfExists(ds2.resolve(".tokenizer.json.crc"));
        msg = userError(() -> TokenDataset.open(ds2.toString(), new Configuration()));
        assertTrue(msg.contains("tokenizer.json: does not match the manifest's tokenizer"), msg);
    }

    @Test void badInputIsOneLineAndWritesNothing() throws Exception {
        Path bad = Files.createDirectories(tmp.resolve("bad"));
        Path out = tmp.resolve("bad-out");
        Files.write(bad.resolve("binary.txt"), new byte[]{'a', 'b', 0, 1, 2});
        Files.write(bad.resolve("latin1.txt"), "caf\u00e9 ok\nna\u00efve\n".getBytes(StandardCharsets.ISO_8859_1));
        Files.writeString(bad.resolve("empty.txt"), "");
        Files.writeString(bad.resolve("nofield.jsonl"), "{\"body\":\"x\"}\n");

        assertTrue(prepareError(tmp.resolve("missing") + "", "bpe", 300, out).contains("missing: no such file or folder"));
        assertTrue(prepareError(bad.resolve("empty.txt") + "", "bpe", 300, out).contains("no text (empty input)"));
        assertTrue(prepareError(bad.resolve("binary.txt") + "", "bpe", 300, out).contains("binary.txt: looks binary (NUL byte at offset 2)"));
        String msg = prepareError(bad.resolve("latin1.txt") + "", "bpe", 300, out);
        assertTrue(msg.contains("latin1.txt: invalid UTF-8 at byte 3 (pass --invalid-utf8 replace or skip"), msg);
        assertTrue(prepareError(bad.resolve("nofield.jsonl") + "", "char", 0, out).contains("nofield.jsonl: line at byte 0 has no string field \"text\""));
        assertTrue(prepareError(input + "", "bpe", 200, out).contains("--vocab-size 200: must be at least 257"));
        assertTrue(prepareError(input + "", "gpt2", 0, out).contains("gpt2:FOLDER"));
        assertTrue(prepareError(input + "", tmp.resolve("no-tokenizer") + "", 0, out).contains("no such file or folder"));
        assertFalse(Files.exists(out), "nothing written");
        try (var siblings = Files.list(tmp)) {
            assertTrue(siblings.noneMatch(p -> p.getFileName().toString().contains(".tmp-")), "no temporary output left");
        }

        // an existing dataset is never replaced without --overwrite
        Path kept = tmp.resolve("kept");
        Prepare.run(sc, options(input.resolve("a.txt").toString(), "char", 0, kept));
        byte[] before = Files.readAllBytes(kept.resolve("manifest.json"));
        assertTrue(prepareError(input.resolve("a.txt") + "", "char", 0, kept).contains("already exists"));
        assertArrayEquals(before, Files.readAllBytes(kept.resolve("manifest.json")));
    }

    @Test void invalidUtf8CanBeReplacedOrSkippedAndIsCounted() throws Exception {
        Path f = tmp.resolve("mixed.txt");
        Files.write(f, new byte[]{'a', (byte) 0xE9, 'b', '\n', (byte) 0xFF, (byte) 0xFE, 'c', '\n'});
        for (TextInput.Invalid policy : new TextInput.Invalid[]{TextInput.Invalid.REPLACE, TextInput.Invalid.SKIP}) {
            Path out = tmp.resolve("mixed-" + policy);
            Prepare.Options o = new Prepare.Options(List.of(f.toString()), "char", 0, out.toString(), 0.0, policy, "text", false);
            Prepare.Summary s = Prepare.run(sc, o);
            assertEquals(3, s.invalidBytes());
            assertEquals(3, manifest(out).path("input").path("invalid_utf8_bytes").asInt());
            Tokenizer tok = TokenizerFiles.load(out.toString(), new Configuration(), "--tokenizer");
            String expected = policy == TextInput.Invalid.REPLACE ? "a\uFFFDb\n\uFFFD\uFFFDc\n" : "ab\nc\n";
            assertEquals(Set.of(expected), decodedSplits(out, tok));
        }
    }

    static String prepareError(String in, String tokenizer, int vocab, Path out) {
        return userError(() -> Prepare.run(sc, options(in, tokenizer, vocab, out)));
    }

    /** The one-line user error a call ends with, wherever Spark wrapped it. */
    static String userError(Executable call) {
        Throwable t = assertThrows(Throwable.class, call);
        for (Throwable c = t; c != null; c = c.getCause())
            if (c instanceof UserError u) {
                assertFalse(u.getMessage().contains("\n"), "one line: " + u.getMessage());
                return u.getMessage();
            }
        throw new AssertionError("not a user error", t);
    }
}
