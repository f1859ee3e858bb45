package org.sparkformer.driver;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** Bad input gets one clear line naming the flag or file; nothing runs. */
class CliTest {
    @TempDir Path tmp;

    static String error(String... args) {
        UserError e = assertThrows(UserError.class, () -> Main.run(args, new PrintStream(new ByteArrayOutputStream())));
        assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
        return e.getMessage();
    }

    @Test void flagErrorsNameTheFlag() {
        assertTrue(error("train", "--no-such-flag", "1").contains("unknown flag --no-such-flag"));
        assertTrue(error("train", "--lr", "fast").contains("--lr: expected a number, got 'fast'"));
        assertTrue(error("train", "--steps=-3").contains("--steps"));
        assertTrue(error("train", "--n-embd", "100", "--n-head", "3").contains("--n-embd (100) must be divisible by --n-head (3)"));
        assertTrue(error("train", "--preset", "huge").contains("unknown preset 'huge'"));
        assertTrue(error("train", "--steps").contains("--steps: missing value"));
        assertTrue(error("train", "--dtype", "float8").contains("--dtype: expected one of float32, float16, bfloat16, got 'float8'"));
        assertTrue(error("frobnicate").contains("unknown command"));
        assertTrue(error("generate", "--prompt", "x").contains("--checkpoint: required"));
        assertTrue(error("generate", "--checkpoint", tmp.resolve("nope").toString()).contains("no such checkpoint"));
    }

    @Test void presetsThenConfigFileThenFlags() throws Exception {
        Path props = tmp.resolve("run.properties");
        Files.writeString(props, "preset=baby\nlr=0.002\nn-layer=3\n");
        TrainConfig c = Main.trainConfig(Main.parseFlags(new String[]{"--config", props.toString(), "--n-layer=5"}, 0));
        assertEquals(128, c.blockSize);   // from baby
        assertEquals(0.002, c.lr);         // from the file
        assertEquals(5, c.nLayer);         // flag beats file
        Files.writeString(props, "bogus=1\n");
        UserError e = assertThrows(UserError.class, () -> Main.trainConfig(Map.of("config", props.toString())));
        assertTrue(e.getMessage().contains("unknown key 'bogus'"), e.getMessage());
    }

    @Test void badDataIsRefusedWithTheFileName() throws Exception {
        Path binary = tmp.resolve("blob.bin");
        Files.write(binary, new byte[]{1, 2, 0, 3, 4});
        Path latin1 = tmp.resolve("latin1.txt");
        Files.write(latin1, "caf\u00e9".getBytes(StandardCharsets.ISO_8859_1));
        Path empty = tmp.resolve("empty.txt");
        Files.write(empty, new byte[0]);
        assertTrue(dataError(binary).contains("looks binary"));
        assertTrue(dataError(latin1).contains("not valid UTF-8"));
        assertTrue(dataError(empty).contains("no text"));
        assertTrue(dataError(tmp.resolve("missing.txt")).contains("no such file"));
        Path shortText = TestCorpus.write(tmp, "short.txt", "just a few words");
        assertTrue(dataError(shortText).contains("too short"));
    }

    private String dataError(Path data) {
        String msg = error("train", "--data", data.toString(), "--out", tmp.resolve("out-" + data.getFileName()).toString(), "--master", "local[1]");
        assertTrue(msg.contains(data.getFileName().toString()), msg);
        return msg;
    }

    /** The real process: exit code 2 and a single line on stderr, no stack trace. */
    @Test void processExitsWithCode2AndOneLine() throws Exception {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName(), "train", "--lr", "abc"));
        Process p = new ProcessBuilder(cmd).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
        assertTrue(p.waitFor(60, TimeUnit.SECONDS));
        String stderr = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).trim();
        assertEquals(2, p.exitValue());
        assertEquals("sparkformer: --lr: expected a number, got 'abc'", stderr);

        // the environment variable a launcher or spark.executorEnv sets: the same single line
        ProcessBuilder bad = new ProcessBuilder(new ArrayList<>(cmd.subList(0, 4))).redirectOutput(ProcessBuilder.Redirect.DISCARD);
        bad.command().addAll(List.of("bench", "--preset", "tiny"));
        bad.environment().put("SPARKFORMER_SHARDS", "two");
        Process q = bad.start();
        assertTrue(q.waitFor(60, TimeUnit.SECONDS));
        assertEquals("sparkformer: SPARKFORMER_SHARDS: expected a whole number, got 'two'",
                new String(q.getErrorStream().readAllBytes(), StandardCharsets.UTF_8).trim());
        assertEquals(2, q.exitValue());
    }

    /** bench prints one JSON line with its numbers; an explicit --warmup is a step count. */
    @Test void benchPrintsItsNumbers() throws Exception {
        String out = output("bench", "--preset", "tiny", "--steps", "3", "--warmup", "2", "--threads", "2", "--shards", "1");
        com.fasterxml.jackson.databind.JsonNode r = new com.fasterxml.jackson.databind.ObjectMapper().readTree(out);
        assertEquals(3, r.path("steps").asInt(), out);
        assertEquals(2, r.path("warmup_steps").asInt(), out);
        for (String k : List.of("tokens_per_s", "ms_per_step", "tokens_per_s_mean", "ms_per_step_mean", "achieved_gflops", "gemm_gflops", "mfu", "peak_rss_mb"))
            assertTrue(r.path(k).asDouble() > 0, k + " in " + out);
        assertTrue(error("bench", "--preset", "tiny", "--warmup", "-1").contains("--warmup"));
    }

    static String output(String... args) throws Exception {
        ByteArrayOutputStream buf = new ByteArrayOutputStream();
        assertEquals(0, Main.run(args, new PrintStream(buf, true, StandardCharsets.UTF_8)));
        return buf.toString(StandardCharsets.UTF_8);
    }

    /** prepare, tokenize and bench --tokenizer from the command line, on a tokenizer prepare trained. */
    @Test void prepareThenTokenizeAndBenchTheTokenizer() throws Exception {
        Path text = TestCorpus.write(tmp, "grammar.txt", TestCorpus.text(500, 3));
        Path ds = tmp.resolve("ds");
        String report = output("prepare", "--input", text.toString(), "--tokenizer", "bpe", "--vocab-size", "300",
                "--out", ds.toString(), "--master", "local[1]");
        assertTrue(report.startsWith("prepared file:" + ds), report);
        Path sample = TestCorpus.write(tmp, "sample.txt", "the cat sees the moon.");
        int[] ids = output("tokenize", "--tokenizer", ds.toString(), "--input", sample.toString()).lines().mapToInt(Integer::parseInt).toArray();
        org.sparkformer.worker.tokenizer.Tokenizer tok = TokenizerFiles.load(ds.toString(), new org.apache.hadoop.conf.Configuration(), "--tokenizer");
        assertArrayEquals(tok.encode("the cat sees the moon."), ids);
        assertEquals("the cat sees the moon.", tok.decode(ids));
        assertTrue(ids.length < 10, "learned merges make words single tokens: " + ids.length);

        String bench = output("bench", "--tokenizer", ds.toString(), "--input", text.toString());
        com.fasterxml.jackson.databind.JsonNode r = new com.fasterxml.jackson.databind.ObjectMapper().readTree(bench);
        assertTrue(r.path("cold_mb_per_s").asDouble() > 0 && r.path("warm_mb_per_s").asDouble() > 0, bench);
        assertEquals(300, r.path("vocab_size").asInt());

        assertTrue(error("prepare", "--input", text.toString()).contains("--out: required"));
        assertTrue(error("prepare", "--input", text.toString(), "--out", "x", "--invalid-utf8", "ignore").contains("--invalid-utf8: expected fail, replace or skip"));
        assertTrue(error("prepare", "--input", text.toString(), "--out", "x", "--val-fraction", "1.5").contains("--val-fraction must be in [0, 1)"));
        assertTrue(error("tokenize", "--tokenizer", "gpt2:" + tmp.resolve("nowhere"), "--input", sample.toString()).contains("no such file or folder"));
        assertTrue(error("tokenize", "--tokenizer", ds.toString()).contains("--input: required"));
    }

    /** gpt2:FOLDER reads GPT-2-format vocab.json + merges.txt (here ours, written by prepare; GPT-2's own are checked in the worker). */
    @Test void tokenizeWithGpt2FormatFiles() throws Exception {
        Path text = TestCorpus.write(tmp, "g.txt", TestCorpus.text(300, 6));
        Path ds = tmp.resolve("ds-gpt2");
        output("prepare", "--input", text.toString(), "--tokenizer", "bpe", "--vocab-size", "280", "--out", ds.toString(), "--master", "local[1]");
        Path folder = Files.createDirectories(tmp.resolve("gpt2-format"));
        Files.copy(ds.resolve("vocab.json"), folder.resolve("vocab.json"));
        Files.copy(ds.resolve("merges.txt"), folder.resolve("merges.txt"));
        Path f = TestCorpus.write(tmp, "hello.txt", "the moon <|endoftext|>");
        String ids = output("tokenize", "--tokenizer", "gpt2:" + folder, "--input", f.toString());
        assertEquals(output("tokenize", "--tokenizer", ds.toString(), "--input", f.toString()), ids);
        assertTrue(ids.trim().endsWith("\n279"), "the special token is the last id: " + ids);
    }
}
