package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.tokenizer.CharTokenizer;

import java.io.ObjectOutputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Crash-safe checkpoints: a driver process halted (as by kill -9) in the middle of writing a checkpoint leaves the
 * previous one loadable and --resume continues from it; corrupt or truncated files are refused by the manifest's
 * checksums; a file of Java-serialized objects where a checkpoint is expected is rejected without being deserialized.
 */
class CheckpointCrashTest {
    @TempDir Path tmp;
    static final Configuration HADOOP = new Configuration();

    Path data() throws Exception {
        Path data = tmp.resolve("corpus.txt");
        return Files.exists(data) ? data : TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(1200, 5));
    }

    static String[] flags(String... extra) {
        List<String> flags = new ArrayList<>(List.of("--steps", "30", "--eval-interval", "30"));
        flags.addAll(List.of(extra));
        return flags.toArray(String[]::new);
    }

    /** Runs the training process with a fault point that halts it during the second checkpoint (the first completes). */
    void crashDuringSecondCheckpoint(Path run, String point) throws Exception {
        Process p = new ProcessBuilder(ConsoleTest.childTrain(data(), run, List.of("-Dsparkformer.fault=" + point, "-Dsparkformer.fault.skip=1"), flags()))
                .redirectOutput(ProcessBuilder.Redirect.DISCARD).redirectError(ProcessBuilder.Redirect.DISCARD).start();
        assertTrue(p.waitFor(180, TimeUnit.SECONDS), "halted");
        assertEquals(137, p.exitValue(), "halted at " + point);
    }

    void resumesFromStep10(Path run) throws Exception {
        assertEquals(10, Checkpoint.load(run.toString(), HADOOP, true).state().step, "the previous checkpoint loads");
        ConsoleTest.trainHere(data(), run, flags("--resume", run.toString()));
        assertEquals(30, Checkpoint.load(run.toString(), HADOOP, true).state().step);
        List<String> metrics = Files.readAllLines(run.resolve("metrics.jsonl"));
        assertTrue(metrics.stream().anyMatch(l -> l.contains("\"step\":15")), "resumed after step 10 and went on");
    }

    /** A run folder holding one checkpoint of a tiny untrained model, as training writes it (no process needed). */
    static void savedCheckpoint(Path run) throws Exception {
        TrainConfig cfg = SparkTrainingTest.tinyConfig(run, 10, "unused.txt");
        CharTokenizer tok = CharTokenizer.fromText(TestCorpus.text(50, 5));
        GptConfig model = cfg.model(tok.vocabSize()).validate();
        Checkpoint.save(run.resolve("ckpt/last").toString(), HADOOP, cfg, model, tok,
                Gpt.build(model, Optimizer.updater(cfg), cfg.weightDecay, DataType.FLOAT), new Checkpoint.State());
    }

    @Test void haltBetweenFileWritesKeepsThePreviousCheckpoint() throws Exception {
        Path run = tmp.resolve("run-a");
        crashDuringSecondCheckpoint(run, "checkpoint:weights-written");
        try (Stream<Path> s = Files.list(run.resolve("ckpt"))) {
            assertTrue(s.anyMatch(f -> f.getFileName().toString().startsWith(".last.tmp-")), "the half-written one stayed aside");
        }
        resumesFromStep10(run);
    }

    @Test void haltWhileReplacingUsesTheCopyMovedAside() throws Exception {
        Path run = tmp.resolve("run-b");
        crashDuringSecondCheckpoint(run, "commit:moved-aside");
        assertFalse(Files.exists(run.resolve("ckpt/last")), "halted between the two renames");
        resumesFromStep10(run);
    }

    @Test void corruptTruncatedOrIncompleteCheckpointsAreRefusedByName() throws Exception {
        Path run = tmp.resolve("run-c");
        savedCheckpoint(run);
        Path last = run.resolve("ckpt/last");
        Path params = last.resolve("params.bin");
        byte[] good = Files.readAllBytes(params);
        byte[] flipped = good.clone();
        flipped[flipped.length - 9] ^= 4;
        Files.write(params, flipped);
        Files.deleteIfExists(last.resolve(".params.bin.crc"));
        String msg = assertThrows(UserError.class, () -> Checkpoint.load(run.toString(), HADOOP, true)).getMessage();
        assertTrue(msg.contains("params.bin: checksum mismatch"), msg);

        Files.write(params, java.util.Arrays.copyOf(good, good.length - 100));
        msg = assertThrows(UserError.class, () -> Checkpoint.load(run.toString(), HADOOP, true)).getMessage();
        assertTrue(msg.contains("params.bin") && msg.contains("truncated"), msg);

        Files.write(params, good);
        Files.delete(last.resolve("manifest.json"));
        Files.deleteIfExists(last.resolve(".manifest.json.crc"));
        msg = assertThrows(UserError.class, () -> Checkpoint.load(run.toString(), HADOOP, true)).getMessage();
        assertTrue(msg.contains("incomplete checkpoint (no manifest.json)"), msg);
    }

    /** A crafted serialized Java object where params.bin belongs: refused as data, and its class is never loaded. */
    @Test void serializedObjectsAreNeverDeserialized() throws Exception {
        Path run = tmp.resolve("run-d");
        savedCheckpoint(run);
        Path last = run.resolve("ckpt/last");
        java.io.ByteArrayOutputStream bytes = new java.io.ByteArrayOutputStream();
        try (ObjectOutputStream out = new ObjectOutputStream(bytes)) { out.writeObject(new Tripwire()); }
        Files.write(last.resolve("params.bin"), bytes.toByteArray());
        Files.deleteIfExists(last.resolve(".params.bin.crc"));
        // also when the manifest is made to agree: the file format itself refuses it
        String manifest = Files.readString(last.resolve("manifest.json"));
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        crc.update(bytes.toByteArray());
        manifest = manifest.replaceAll("(\"params.bin\"\\s*:\\s*\\{\\s*\"bytes\"\\s*:\\s*)\\d+(\\s*,\\s*\"crc32c\"\\s*:\\s*\")[0-9a-f]+",
                "$1" + bytes.size() + "$2" + Long.toHexString(crc.getValue()));
        Files.writeString(last.resolve("manifest.json"), manifest);
        Files.deleteIfExists(last.resolve(".manifest.json.crc"));
        Tripwire.readObjectCalls = 0;
        String msg = assertThrows(UserError.class, () -> Checkpoint.load(run.toString(), HADOOP, true)).getMessage();
        assertTrue(msg.contains("params.bin"), msg);
        assertEquals(0, Tripwire.readObjectCalls, "nothing was deserialized");
    }

    /** Would count (and could do harm) if anything Java-deserialized it. */
    static final class Tripwire implements java.io.Serializable {
        static int readObjectCalls;
        private void readObject(java.io.ObjectInputStream in) throws java.io.IOException, ClassNotFoundException {
            readObjectCalls++;
            in.defaultReadObject();
        }
    }
}
