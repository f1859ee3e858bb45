package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Mistakes around an existing run: each is one line naming the flag or file, and the run's checkpoint is
 * left exactly as it was (byte for byte). Also: a diverging run stops with the step and keeps its last good
 * checkpoint; an unwritable --out is found before training; running out of memory names the settings to change.
 */
class BadRunInputTest {
    @TempDir static Path tmp;
    static Path data, run;
    static byte[] params;

    static String[] train(String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--data", data.toString(), "--out", run.toString(), "--master", "local[1]",
                "--workers", "1", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "8",
                "--steps", "10", "--eval-interval", "10", "--averaging-frequency", "5", "--samples", "0", "--eval-sample-tokens", "0",
                "--tensorboard", "none", "--progress", "log"));
        a.addAll(List.of(extra));
        return a.toArray(String[]::new);
    }

    /** One run for the class: every test below is refused (or diverges) and must leave its checkpoint as it was. */
    @BeforeAll static void trainTenSteps() throws Exception {
        data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(1200, 3));
        run = tmp.resolve("run");
        assertEquals(0, Main.run(train(), new PrintStream(new ByteArrayOutputStream())));
        params = Files.readAllBytes(run.resolve("ckpt/last/params.bin"));
    }

    static String refused(String... args) throws Exception {
        String msg = CliTest.error(args);
        assertArrayEquals(params, Files.readAllBytes(run.resolve("ckpt/last/params.bin")), "the saved checkpoint is untouched");
        return msg;
    }

    @Test void resumeMistakes() throws Exception {
        String r = run.toString();
        assertTrue(refused(train("--resume", r, "--n-layer", "2")).contains("differs from the one asked for"));
        assertTrue(refused(train("--resume", r, "--block-size", "32")).contains("--block-size 32 is above the checkpoint's maximum 16"));
        Path other = TestCorpus.write(tmp, "other.txt", TestCorpus.text(1200, 3) + "\u00e9\u00e8\u00ea\u00eb");
        String msg = refused(train("--resume", r, "--data", other.toString()));
        assertTrue(msg.contains("--resume: the data's vocabulary differs from the checkpoint's"), msg);
        assertTrue(refused(train()).contains("already holds a run"));
        assertTrue(refused(train("--resume", tmp.resolve("nothing").toString())).contains("no such checkpoint"));
    }

    @Test void unwritableOutIsFoundBeforeTraining() throws Exception {
        Path file = Files.writeString(tmp.resolve("a-file"), "x");
        String msg = CliTest.error(train("--out", file.resolve("run").toString()).clone());
        assertTrue(msg.startsWith("--out ") && msg.contains("cannot write there"), msg);
    }

    @Test void divergenceStopsWithTheStepAndKeepsTheLastGoodCheckpoint() throws Exception {
        String msg = CliTest.error(train("--resume", run.toString(), "--steps", "40", "--lr", "1e9", "--warmup-steps", "0"));
        assertTrue(msg.matches("training diverged: loss is (NaN|-?Infinity) at step (15|20); the last good checkpoint is kept; try a lower --lr \\(now 1\\.0E9\\)"), msg);
        assertArrayEquals(params, Files.readAllBytes(run.resolve("ckpt/last/params.bin")));
        assertEquals(10, Checkpoint.load(run.toString(), new Configuration(), true).state().step);
    }

    /** Out of memory, thrown here or reported back from an executor as the text of a task failure, is recognised. */
    @Test void outOfMemoryIsRecognisedInExecutorFailures() {
        String javacpp = "java.lang.OutOfMemoryError: Cannot allocate new FloatPointer(1048576): totalBytes = 40M, physicalBytes = 2G";
        Throwable fromExecutor = new RuntimeException("wrapped", new IllegalStateException(
                "Job aborted due to stage failure: Task 0 in stage 3.0 failed 1 times, most recent failure: Lost task 0.0: " + javacpp + "\n\tat x.y(Z.java:1)"));
        assertEquals(javacpp, Main.outOfMemory(fromExecutor));
        assertEquals("java.lang.OutOfMemoryError: Java heap space", Main.outOfMemory(new RuntimeException(new OutOfMemoryError("Java heap space"))));
        assertNull(Main.outOfMemory(new RuntimeException("disk full")));
    }
}
