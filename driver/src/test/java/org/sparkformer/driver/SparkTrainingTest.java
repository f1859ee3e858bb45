package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.model.Gpt;

import org.apache.spark.broadcast.Broadcast;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.sparkformer.worker.model.GlobalNormClipping;
import org.sparkformer.worker.tokenizer.CharTokenizer;

import java.nio.file.Files;
import java.util.Arrays;
import java.util.Collections;
import java.util.Iterator;
import java.util.List;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Training on Spark local[2] with parameter averaging: loss falls, checkpoints load, resume continues exactly. */
class SparkTrainingTest {
    static JavaSparkContext sc;
    @TempDir static Path tmp;
    static Path data;

    @BeforeAll static void start() throws Exception {
        sc = new JavaSparkContext(Trainer.sparkConf("local[2]"));
        data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(3000, 1));
    }

    @AfterAll static void stop() { if (sc != null) sc.close(); }

    static TrainConfig tinyConfig(Path out, int steps) {
        return tinyConfig(out, steps, data.toString());
    }

    static TrainConfig tinyConfig(Path out, int steps, String data) {
        TrainConfig c = new TrainConfig();
        c.nLayer = 1; c.nHead = 2; c.nEmbd = 32; c.blockSize = 16; c.batchSize = 8;
        c.lr = 3e-3; c.steps = steps; c.evalInterval = 10; c.evalBatches = 4; c.averagingFrequency = 5;
        c.samples = 1; c.sampleTokens = 40; c.workers = 2;
        c.data = data;
        c.out = out.toString();
        return c.validate();
    }

    @Test void lossFallsAndCheckpointReloadsToIdenticalLogits() throws Exception {
        Path out = tmp.resolve("run-a");
        Trainer.Result r = new Trainer(tinyConfig(out, 100), null, false).run(sc);
        assertEquals(100, r.steps());
        assertTrue(r.finalValLoss() < 0.6 * r.firstValLoss(), "val loss " + r.firstValLoss() + " -> " + r.finalValLoss());
        assertTrue(Files.exists(out.resolve("metrics.jsonl")));
        // every logged line carries step, train_loss and lr, every round also tokens_per_s; evaluated ones val_loss
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        assertEquals(1 + 100 / 5, lines.size());
        for (String line : lines) {
            var m = new com.fasterxml.jackson.databind.ObjectMapper().readTree(line);
            for (String key : new String[]{"step", "train_loss", "lr"}) assertTrue(m.has(key), key + " in " + line);
            long step = m.get("step").asLong();
            assertEquals(step > 0, m.has("tokens_per_s"), line);
            assertEquals(step % 10 == 0, m.has("val_loss"), line);
        }
        assertTrue(Files.exists(out.resolve("samples.txt")));

        Checkpoint.Loaded a = Checkpoint.load(out.toString(), new Configuration(), true);
        Checkpoint.Loaded b = Checkpoint.load(out.resolve("ckpt/last").toString(), new Configuration(), true);
        assertEquals(100, a.state().step);
        INDArray idx = Nd4j.create(new float[]{1, 2, 3, 4, 5, 6, 7, 8}, new long[]{1, 8});
        INDArray la = Gpt.logits(a.graph(), idx), lb = Gpt.logits(b.graph(), idx);
        assertEquals(la, lb);
        assertEquals(a.graph().getUpdater().getStateViewArray(), b.graph().getUpdater().getStateViewArray());

        // generate from the run: the prompt comes back first, then exactly the requested number of characters
        java.io.ByteArrayOutputStream buf = new java.io.ByteArrayOutputStream();
        assertEquals(0, Main.run(new String[]{"generate", "--checkpoint", out.toString(), "--prompt", "the cat",
                "--max-new-tokens", "30", "--seed", "5", "--top-k", "5"}, new java.io.PrintStream(buf, true, "UTF-8")));
        String text = buf.toString("UTF-8");
        assertTrue(text.startsWith("the cat"), text);
        assertEquals("the cat".length() + 30 + System.lineSeparator().length(), text.length(), text);
        java.io.ByteArrayOutputStream again = new java.io.ByteArrayOutputStream();
        Main.run(new String[]{"generate", "--checkpoint", out.toString(), "--prompt", "the cat",
                "--max-new-tokens", "30", "--seed", "5", "--top-k", "5"}, new java.io.PrintStream(again, true, "UTF-8"));
        assertEquals(text, again.toString("UTF-8"), "same seed, same text");
        UserError e = assertThrows(UserError.class, () -> Main.run(new String[]{"generate", "--checkpoint", out.toString(),
                "--prompt", "Zebra"}, new java.io.PrintStream(new java.io.ByteArrayOutputStream())));
        assertTrue(e.getMessage().startsWith("--prompt: character 'Z'"), e.getMessage());
    }

    /**
     * --dtype float16 / bfloat16 on Spark replicas (allowed on CPU by a property: ND4J's CPU backend computes 16-bit
     * products correctly but slowly), the CPU refusal without it, and a checkpoint that loads as float32.
     */
    @Test void sixteenBitProductsTrainAndTheCpuBackendRefusesThemByDefault() throws Exception {
        TrainConfig refused = tinyConfig(tmp.resolve("run-f16-refused"), 10);
        refused.dtype = "float16";
        UserError e = assertThrows(UserError.class, () -> new Trainer(refused, null, false).run(sc));
        assertTrue(e.getMessage().startsWith("--dtype float16: ND4J's CPU backend has no 16-bit matrix products"), e.getMessage());
        assertFalse(Files.exists(tmp.resolve("run-f16-refused").resolve("ckpt")), "nothing written");
        System.setProperty("sparkformer.dtype.cpu", "true");
        try {
            for (String dtype : new String[]{"float16"}) {   // bfloat16 trains in MixedPrecisionTest (16-bit products are slow on CPU)
                Path out = tmp.resolve("run-" + dtype);
                TrainConfig c = tinyConfig(out, 30);
                c.dtype = dtype;
                c.samples = 0;
                Trainer.Result r = new Trainer(c, null, false).run(sc);
                assertTrue(r.finalValLoss() < 0.8 * r.firstValLoss(), dtype + ": val loss " + r.firstValLoss() + " -> " + r.finalValLoss());
                Checkpoint.Loaded ckpt = Checkpoint.load(out.toString(), new Configuration(), false);
                assertEquals("float32", ckpt.model().dtype, "weights load for float32 inference");
                assertEquals(dtype, ckpt.config().dtype, "the run's setting is kept for --resume");
            }
        } finally {
            System.clearProperty("sparkformer.dtype.cpu");
        }
    }

    @Test void checkpointSaveLoadGivesIdenticalLogits() throws Exception {
        Path out = tmp.resolve("run-b");
        new Trainer(tinyConfig(out, 10), null, false).run(sc);
        Checkpoint.Loaded loaded = Checkpoint.load(out.toString(), new Configuration(), true);
        ComputationGraph g = loaded.graph();
        Checkpoint.save(tmp.resolve("copy").toString(), new Configuration(), loaded.config(), loaded.model(), loaded.tokenizer(), g, loaded.state());
        Checkpoint.Loaded again = Checkpoint.load(tmp.resolve("copy").toString(), new Configuration(), true);
        INDArray idx = Nd4j.create(new float[]{3, 1, 4, 1, 5, 9, 2, 6}, new long[]{1, 8});
        assertEquals(Gpt.logits(g, idx), Gpt.logits(again.graph(), idx));
        assertEquals(loaded.tokenizer(), again.tokenizer());
    }

    @Test void resumedRunMatchesUninterruptedRun() throws Exception {
        Trainer.Result full = new Trainer(tinyConfig(tmp.resolve("full"), 30), null, false).run(sc);
        Path split = tmp.resolve("split");
        new Trainer(tinyConfig(split, 30), null, false).stopAfter(20).run(sc);
        assertEquals(20, Checkpoint.load(split.toString(), new Configuration(), false).state().step);
        Trainer.Result second = new Trainer(tinyConfig(split, 30), split.toString(), false).run(sc);
        assertEquals(30, second.steps());
        assertEquals(full.finalValLoss(), second.finalValLoss(), 1e-4 * full.finalValLoss());
    }

    /** With one worker, parameter averaging must be exactly plain training: same batches, schedule, clipping. */
    @Test void oneWorkerOnSparkEqualsPlainTraining() throws Exception {
        Path out = tmp.resolve("one");
        TrainConfig c = tinyConfig(out, 20);
        c.workers = 1;
        c.warmupSteps = 10;
        new Trainer(c, null, false).run(sc);
        INDArray sparkParams = Checkpoint.load(out.toString(), new Configuration(), false).graph().params();

        String text = Files.readString(data);
        CharTokenizer tok = CharTokenizer.fromText(text);
        int[] tokens = tok.encode(text);
        int[] train = Arrays.copyOfRange(tokens, 0, tokens.length - (int) (tokens.length * c.valFraction));
        ComputationGraph plain = Gpt.build(c.model(tok.vocabSize()), Optimizer.updater(c), c.weightDecay, DataType.FLOAT);
        plain.setListeners(new GlobalNormClipping(c.gradClip));
        Broadcast<int[]> b = sc.broadcast(train);
        for (int step = 0; step < 20; step += 5) {
            Iterator<MultiDataSet> batches = new WindowBatches(new WindowBatches.BroadcastSlice(b), 1, c.seed, step, 5, c.batchSize, c.blockSize)
                    .call(0, Collections.emptyIterator());
            while (batches.hasNext()) plain.fit(batches.next());
        }
        assertEquals(20, plain.getConfiguration().getIterationCount());
        double maxDiff = plain.params().sub(sparkParams).amaxNumber().doubleValue();
        assertTrue(maxDiff < 1e-5, "spark and plain training differ by " + maxDiff);
    }

    /** The broadcast array's partition read in place (no copy) gives the windows a copy of that partition gives. */
    @Test void broadcastSpanGivesTheWindowsOfACopiedSlice() throws Exception {
        int[] tokens = new int[10_007];
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 7919) % 101;
        WindowBatches.BroadcastSlice broadcast = new WindowBatches.BroadcastSlice(sc.broadcast(tokens));
        WindowBatches.TokenSource copied = broadcast::tokens;   // only tokens(): the default span over a copy
        for (int partition = 0; partition < 3; partition++) {
            assertTrue(broadcast.span(partition, 3).from() > 0 || partition == 0);
            Iterator<MultiDataSet> a = new WindowBatches(broadcast, 3, 7, 40, 4, 5, 16).call(partition, Collections.emptyIterator());
            Iterator<MultiDataSet> b = new WindowBatches(copied, 3, 7, 40, 4, 5, 16).call(partition, Collections.emptyIterator());
            int n = 0;
            while (a.hasNext()) {
                MultiDataSet x = a.next(), y = b.next();
                assertEquals(y.getFeatures(0), x.getFeatures(0));
                assertEquals(y.getLabels(0), x.getLabels(0));
                n++;
            }
            assertEquals(4, n);
            assertFalse(b.hasNext());
        }
    }

    @Test void existingRunIsNotOverwrittenWithoutResumeOrOverwrite() throws Exception {
        Path out = tmp.resolve("run-c");
        new Trainer(tinyConfig(out, 5), null, false).run(sc);
        byte[] before = Files.readAllBytes(out.resolve("ckpt/last/params.bin"));
        UserError e = assertThrows(UserError.class, () -> new Trainer(tinyConfig(out, 5), null, false).run(sc));
        assertTrue(e.getMessage().contains("already holds a run"), e.getMessage());
        assertArrayEquals(before, Files.readAllBytes(out.resolve("ckpt/last/params.bin")));
    }

    /** Checkpoints every N steps besides evaluations, the K newest kept as ckpt/step-N; any of them resumes. */
    @Test void checkpointCadenceKeepsTheLastK() throws Exception {
        Path out = tmp.resolve("cadence");
        TrainConfig c = tinyConfig(out, 20);
        c.checkpointInterval = 5;
        c.keepLast = 2;
        c.evalInterval = 20;
        new Trainer(c, null, false).run(sc);
        try (var dirs = Files.list(out.resolve("ckpt"))) {
            assertEquals(List.of("best", "last", "step-00000015", "step-00000020"), dirs.map(p -> p.getFileName().toString()).sorted().toList());
        }
        assertEquals(15, Checkpoint.load(out.resolve("ckpt/step-00000015").toString(), new Configuration(), true).state().step);
        TrainConfig more = tinyConfig(out, 25);
        more.checkpointInterval = 5;
        more.keepLast = 2;
        Trainer.Result r = new Trainer(more, out.resolve("ckpt/step-00000015").toString(), false).run(sc);
        assertEquals(25, r.steps());
        try (var dirs = Files.list(out.resolve("ckpt"))) {
            assertEquals(List.of("best", "last", "step-00000020", "step-00000025"), dirs.map(p -> p.getFileName().toString()).sorted().toList());
        }
    }
}
