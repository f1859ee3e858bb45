package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.io.SafeTensors;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.tokenizer.CharTokenizer;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** Hugging Face GPT-2 export and import: round trip, the safetensors layout, and our forward against a hand-written GPT-2. */
class HfGpt2Test {
    @TempDir Path tmp;
    static final Configuration HADOOP = new Configuration();

    Path checkpoint(String name, boolean tied, GptConfig.Positional positional) throws Exception {
        TrainConfig run = new TrainConfig();
        run.nLayer = 2; run.nHead = 2; run.nEmbd = 16; run.blockSize = 8; run.tiedHead = tied; run.positional = positional.name().toLowerCase();
        CharTokenizer tok = CharTokenizer.fromText("abcdefghij \n");
        GptConfig c = run.model(tok.vocabSize()).validate();
        ComputationGraph g = Gpt.build(c, Optimizer.updater(run), 0, DataType.FLOAT);
        g.params().addi(Nd4j.rand(DataType.FLOAT, g.params().shape()).subi(0.5).muli(0.2));   // not the initial values
        Path dir = tmp.resolve(name);
        Checkpoint.save(dir.toString(), HADOOP, run, c, tok, g, new Checkpoint.State());
        return dir;
    }

    @Test void exportThenImportGivesIdenticalLogits() throws Exception {
        for (boolean tied : new boolean[]{true, false}) {
            Path ckpt = checkpoint("ckpt-" + tied, tied, GptConfig.Positional.LEARNED);
            Path hf = tmp.resolve("hf-" + tied), back = tmp.resolve("back-" + tied);
            HfGpt2.export(ckpt.toString(), hf.toString(), false, HADOOP);
            JsonNode cfg = new ObjectMapper().readTree(hf.resolve("config.json").toFile());
            assertEquals("gpt2", cfg.path("model_type").asText());
            assertEquals("GPT2LMHeadModel", cfg.path("architectures").get(0).asText());
            assertEquals(tied, cfg.path("tie_word_embeddings").asBoolean());
            HfGpt2.importFrom(hf.toString(), back.toString(), false, HADOOP);
            Checkpoint.Loaded a = Checkpoint.load(ckpt.toString(), HADOOP, false), b = Checkpoint.load(back.toString(), HADOOP, false);
            INDArray idx = Nd4j.create(new float[]{3, 1, 4, 1, 5, 9, 2, 6}, new long[]{1, 8});
            INDArray la = Gpt.logits(a.graph(), idx), lb = Gpt.logits(b.graph(), idx);
            assertEquals(0.0, la.sub(lb).amaxNumber().doubleValue(), 1e-6 * la.amaxNumber().doubleValue(), "tied " + tied);
            assertEquals(a.tokenizer(), b.tokenizer());
        }
    }

    @Test void safetensorsFollowsTheSpecification() throws Exception {
        Path hf = tmp.resolve("hf");
        HfGpt2.export(checkpoint("c", true, GptConfig.Positional.LEARNED).toString(), hf.toString(), false, HADOOP);
        byte[] file = Files.readAllBytes(hf.resolve("model.safetensors"));
        long n = ByteBuffer.wrap(file, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
        assertEquals(0, (8 + n) % 8, "data starts 8-byte aligned");
        JsonNode header = new ObjectMapper().readTree(new String(file, 8, (int) n, StandardCharsets.UTF_8).trim());
        long end = 0;
        int tensors = 0;
        for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            if (e.getKey().equals("__metadata__")) {
                assertEquals("pt", e.getValue().path("format").asText());
                continue;
            }
            JsonNode t = e.getValue();
            assertEquals("F32", t.path("dtype").asText());
            long count = 1;
            for (JsonNode s : t.path("shape")) count *= s.asLong();
            assertEquals(end, t.path("data_offsets").get(0).asLong(), e.getKey() + " follows the previous tensor");
            assertEquals(4 * count, t.path("data_offsets").get(1).asLong() - end, e.getKey());
            end = t.path("data_offsets").get(1).asLong();
            tensors++;
        }
        assertEquals(file.length, 8 + n + end);
        assertEquals(2 + 12 * 2 + 2, tensors);   // wte, wpe, 12 per block, ln_f; the tied head is not stored
        assertTrue(header.has("transformer.h.1.attn.c_attn.weight"));
        assertEquals("[16,48]", header.path("transformer.h.1.attn.c_attn.weight").path("shape").toString());   // Conv1D: input-major
        assertEquals("[64,16]", header.path("transformer.h.0.mlp.c_proj.weight").path("shape").toString());
    }

    @Test void optionsGpt2CannotExpressAreRefused() throws Exception {
        String msg = assertThrows(UserError.class, () -> HfGpt2.export(checkpoint("sin", true, GptConfig.Positional.SINUSOIDAL).toString(),
                tmp.resolve("x").toString(), false, HADOOP)).getMessage();
        assertTrue(msg.contains("sinusoidal positions cannot be expressed"), msg);
        Path bad = Files.createDirectories(tmp.resolve("bert"));
        Files.writeString(bad.resolve("config.json"), "{\"model_type\":\"bert\"}");
        msg = assertThrows(UserError.class, () -> HfGpt2.importFrom(bad.toString(), tmp.resolve("y").toString(), false, HADOOP)).getMessage();
        assertTrue(msg.contains("model_type must be gpt2"), msg);
    }

    /** A tiny GPT-2 folder with known weights; our forward must equal GPT-2's definition, written out here in doubles. */
    @Test void importedForwardEqualsAHandWrittenGpt2() throws Exception {
        int L = 1, H = 2, C = 4, T = 4, V = 5;
        Map<String, SafeTensors.Tensor> w = new LinkedHashMap<>();
        int[] seed = {1};
        java.util.function.BiFunction<String, long[], double[][]> add = (name, shape) -> {
            long n = 1;
            for (long s : shape) n *= s;
            float[] v = new float[(int) n];
            for (int i = 0; i < n; i++) v[i] = (float) (0.5 * Math.sin(seed[0]++ * 0.7));
            if (name.endsWith("ln_1.weight") || name.endsWith("ln_2.weight") || name.endsWith("ln_f.weight"))
                for (int i = 0; i < n; i++) v[i] += 1;
            w.put(name, new SafeTensors.Tensor(shape, v));
            long cols = shape.length == 2 ? shape[1] : n;
            double[][] m = new double[(int) (n / cols)][(int) cols];
            for (int i = 0; i < n; i++) m[(int) (i / cols)][(int) (i % cols)] = v[i];
            return m;
        };
        double[][] wte = add.apply("wte.weight", new long[]{V, C}), wpe = add.apply("wpe.weight", new long[]{T, C});
        double[] g1 = add.apply("h.0.ln_1.weight", new long[]{C})[0], b1 = add.apply("h.0.ln_1.bias", new long[]{C})[0];
        double[][] wa = add.apply("h.0.attn.c_attn.weight", new long[]{C, 3 * C});
        double[] ba = add.apply("h.0.attn.c_attn.bias", new long[]{3 * C})[0];
        double[][] wp = add.apply("h.0.attn.c_proj.weight", new long[]{C, C});
        double[] bp = add.apply("h.0.attn.c_proj.bias", new long[]{C})[0];
        double[] g2 = add.apply("h.0.ln_2.weight", new long[]{C})[0], b2 = add.apply("h.0.ln_2.bias", new long[]{C})[0];
        double[][] wf = add.apply("h.0.mlp.c_fc.weight", new long[]{C, 4 * C});
        double[] bf = add.apply("h.0.mlp.c_fc.bias", new long[]{4 * C})[0];
        double[][] wm = add.apply("h.0.mlp.c_proj.weight", new long[]{4 * C, C});
        double[] bm = add.apply("h.0.mlp.c_proj.bias", new long[]{C})[0];
        double[] gf = add.apply("ln_f.weight", new long[]{C})[0], bfin = add.apply("ln_f.bias", new long[]{C})[0];

        Path dir = Files.createDirectories(tmp.resolve("tiny-gpt2"));
        try (var out = Files.newOutputStream(dir.resolve("model.safetensors"))) { SafeTensors.write(w, Map.of("format", "pt"), out); }
        Files.writeString(dir.resolve("config.json"), "{\"model_type\":\"gpt2\",\"n_layer\":" + L + ",\"n_head\":" + H + ",\"n_embd\":" + C
                + ",\"n_positions\":" + T + ",\"vocab_size\":" + V + ",\"activation_function\":\"gelu_new\",\"layer_norm_epsilon\":1e-5}");
        Files.writeString(dir.resolve("tokenizer.json"), CharTokenizer.fromText("abcde").toJson());
        Path ckpt = tmp.resolve("tiny-ckpt");
        HfGpt2.importFrom(dir.toString(), ckpt.toString(), false, HADOOP);

        int[] ids = {1, 3, 0, 4};
        INDArray ours = Gpt.logits(Checkpoint.load(ckpt.toString(), HADOOP, false).graph(), Nd4j.create(new float[]{1, 3, 0, 4}, new long[]{1, 4}));
        double[][] x = new double[T][C];
        for (int t = 0; t < T; t++) for (int i = 0; i < C; i++) x[t][i] = wte[ids[t]][i] + wpe[t][i];
        double[][] h = affine(ln(x, g1, b1), wa, ba);                         // [T, 3C]: q | k | v
        double[][] y = new double[T][C];
        int D = C / H;
        for (int hd = 0; hd < H; hd++)
            for (int t = 0; t < T; t++) {
                double[] s = new double[t + 1];
                double max = -1e300, sum = 0;
                for (int u = 0; u <= t; u++) {
                    for (int d = 0; d < D; d++) s[u] += h[t][hd * D + d] * h[u][C + hd * D + d];
                    s[u] /= Math.sqrt(D);
                    max = Math.max(max, s[u]);
                }
                for (int u = 0; u <= t; u++) sum += s[u] = Math.exp(s[u] - max);
                for (int u = 0; u <= t; u++) for (int d = 0; d < D; d++) y[t][hd * D + d] += s[u] / sum * h[u][2 * C + hd * D + d];
            }
        x = plus(x, affine(y, wp, bp));
        double[][] f = affine(ln(x, g2, b2), wf, bf);
        for (double[] row : f) for (int i = 0; i < row.length; i++)
            row[i] = 0.5 * row[i] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (row[i] + 0.044715 * Math.pow(row[i], 3))));
        x = plus(x, affine(f, wm, bm));
        double[][] hf = ln(x, gf, bfin);
        for (int t = 0; t < T; t++)
            for (int v = 0; v < V; v++) {
                double logit = 0;
                for (int i = 0; i < C; i++) logit += hf[t][i] * wte[v][i];
                assertEquals(logit, ours.getDouble(0, t, v), 1e-5, "logit t=" + t + " v=" + v);
            }
    }

    static double[][] ln(double[][] x, double[] g, double[] b) {
        double[][] out = new double[x.length][x[0].length];
        for (int t = 0; t < x.length; t++) {
            double mean = 0, var = 0;
            for (double v : x[t]) mean += v / x[t].length;
            for (double v : x[t]) var += (v - mean) * (v - mean) / x[t].length;
            for (int i = 0; i < x[t].length; i++) out[t][i] = (x[t][i] - mean) / Math.sqrt(var + 1e-5) * g[i] + b[i];
        }
        return out;
    }

    static double[][] affine(double[][] x, double[][] w, double[] b) {
        double[][] out = new double[x.length][b.length];
        for (int t = 0; t < x.length; t++)
            for (int j = 0; j < b.length; j++) {
                out[t][j] = b[j];
                for (int i = 0; i < x[t].length; i++) out[t][j] += x[t][i] * w[i][j];
            }
        return out;
    }

    static double[][] plus(double[][] a, double[][] b) {
        double[][] out = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) for (int j = 0; j < a[0].length; j++) out[i][j] = a[i][j] + b[i][j];
        return out;
    }
}
