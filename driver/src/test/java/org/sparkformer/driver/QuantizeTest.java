package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.tokenizer.CharTokenizer;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** int8 weight-only quantization: size, closeness of logits, inference from the quantized checkpoint, refusals. */
class QuantizeTest {
    @TempDir Path tmp;
    static final Configuration HADOOP = new Configuration();

    @Test void quantizedCheckpointIsSmallCloseAndUsable() throws Exception {
        for (boolean tied : new boolean[]{true, false}) {
            TrainConfig run = new TrainConfig();   // tiny preset: 2 layers, width 128
            run.tiedHead = tied;
            CharTokenizer tok = CharTokenizer.fromText("abcdefghijklmnopqrstuvwxyz .,\n");
            GptConfig c = run.model(tok.vocabSize()).validate();
            ComputationGraph g = Gpt.build(c, Optimizer.updater(run), 0, DataType.FLOAT);
            Path ckpt = tmp.resolve("f32-" + tied), q8 = tmp.resolve("q8-" + tied);
            Checkpoint.save(ckpt.toString(), HADOOP, run, c, tok, g, new Checkpoint.State());
            ByteArrayOutputStream buf = new ByteArrayOutputStream();
            assertEquals(0, Main.run(new String[]{"quantize", "--checkpoint", ckpt.toString(), "--out", q8.toString()}, new PrintStream(buf)));
            assertTrue(buf.toString().contains("% of float32"), buf.toString());
            long f32 = Files.size(ckpt.resolve("params.bin")), int8 = Files.size(q8.resolve("weights.q8"));
            assertTrue(int8 <= 0.30 * f32, "int8 " + int8 + " vs float32 " + f32);
            assertFalse(Files.exists(q8.resolve("params.bin")));

            Checkpoint.Loaded q = Checkpoint.load(q8.toString(), HADOOP, false);
            INDArray idx = Nd4j.create(new float[]{3, 1, 4, 1, 5, 9, 2, 6, 5, 3}, new long[]{1, 10});
            INDArray a = Gpt.logits(g, idx), b = Gpt.logits(q.graph(), idx);
            double err = a.sub(b).amaxNumber().doubleValue(), scale = a.amaxNumber().doubleValue();
            assertTrue(err > 0 && err < 0.02 * scale, "int8 logits differ by " + err + " (max |logit| " + scale + ")");

            // generate works from the quantized checkpoint; resuming from it does not
            ByteArrayOutputStream gen = new ByteArrayOutputStream();
            assertEquals(0, Main.run(new String[]{"generate", "--checkpoint", q8.toString(), "--prompt", "ab", "--max-new-tokens", "5"},
                    new PrintStream(gen, true, StandardCharsets.UTF_8)));
            assertTrue(gen.toString(StandardCharsets.UTF_8).startsWith("ab"));
            String msg = assertThrows(UserError.class, () -> Checkpoint.load(q8.toString(), HADOOP, true)).getMessage();
            assertTrue(msg.contains("not for resuming training"), msg);
        }
        Path q8 = tmp.resolve("q8-true/weights.q8");
        byte[] bytes = Files.readAllBytes(q8);
        bytes[bytes.length / 2] ^= 1;
        Files.write(q8, bytes);
        Files.deleteIfExists(tmp.resolve("q8-true/.weights.q8.crc"));
        String msg = assertThrows(UserError.class, () -> Checkpoint.load(tmp.resolve("q8-true").toString(), HADOOP, false)).getMessage();
        assertTrue(msg.contains("weights.q8") && msg.contains("corrupt"), msg);
    }
}
