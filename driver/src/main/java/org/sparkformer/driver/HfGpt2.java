package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.io.SafeTensors;
import org.sparkformer.worker.model.CausalSelfAttention;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.model.LayerNorm;
import org.sparkformer.worker.model.LmHead;
import org.sparkformer.worker.model.MlpBlock;
import org.sparkformer.worker.model.TokenEmbedding;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Hugging Face GPT-2 format: {@code export --checkpoint DIR --format hf --out DIR2} writes what transformers
 * loads as GPT2LMHeadModel (config.json, model.safetensors with GPT-2's names; the tokenizer files), and
 * {@code import --from DIR --out CKPT} reads such a folder into our checkpoint. Our blocks are GPT-2's
 * (pre-LN, fused QKV [C, 3C] stored input-major like GPT-2's Conv1D, biases, tanh GELU, LayerNorm eps
 * 1e-5), so every tensor maps one to one. Sinusoidal positions have no GPT-2 equivalent: refused. An
 * untied head is written as lm_head.weight with tie_word_embeddings=false.
 */
final class HfGpt2 {
    private static final ObjectMapper JSON = new ObjectMapper();
    static final String CONFIG = "config.json", WEIGHTS = "model.safetensors";

    private HfGpt2() {}

    static String export(String checkpoint, String outUri, boolean overwrite, Configuration hadoop) throws IOException {
        Checkpoint.Loaded m = Checkpoint.load(checkpoint, hadoop, false);
        GptConfig c = m.model();
        if (c.positional != GptConfig.Positional.LEARNED)
            throw new UserError("--checkpoint " + checkpoint + ": sinusoidal positions cannot be expressed in GPT-2's format (it learns wpe)");
        Path out = new Path(outUri);
        FileSystem fs = out.getFileSystem(hadoop);
        FsCommit.refuseExisting(fs, out, outUri, overwrite);
        Path tmp = FsCommit.temporary(out);
        fs.mkdirs(tmp);
        try {
            try (FSDataOutputStream o = fs.create(new Path(tmp, WEIGHTS), true)) {
                SafeTensors.write(tensors(m.graph(), c), Map.of("format", "pt"), o);
            }
            HadoopFiles.writeText(fs, new Path(tmp, CONFIG), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config(c, m.tokenizer())));
            TokenizerFiles.save(m.tokenizer(), fs, tmp);
            FsCommit.replace(fs, tmp, out);
        } finally {
            if (fs.exists(tmp)) fs.delete(tmp, true);
        }
        return fs.makeQualified(out).toString();
    }

    static ObjectNode config(GptConfig c, Tokenizer tok) {
        ObjectNode j = JSON.createObjectNode();
        j.putArray("architectures").add("GPT2LMHeadModel");
        j.put("model_type", "gpt2");
        j.put("vocab_size", c.vocabSize);
        j.put("n_positions", c.blockSize);
        j.put("n_ctx", c.blockSize);
        j.put("n_embd", c.nEmbd);
        j.put("n_layer", c.nLayer);
        j.put("n_head", c.nHead);
        j.putNull("n_inner");
        j.put("activation_function", "gelu_new");
        j.put("resid_pdrop", c.dropout);
        j.put("embd_pdrop", c.dropout);
        j.put("attn_pdrop", c.dropout);
        j.put("layer_norm_epsilon", LayerNorm.EPS);
        j.put("initializer_range", 0.02);
        j.put("tie_word_embeddings", c.tiedHead);
        if (tok.documentSeparator() >= 0) {
            j.put("bos_token_id", tok.documentSeparator());
            j.put("eos_token_id", tok.documentSeparator());
        }
        j.put("torch_dtype", "float32");
        return j;
    }

    /** GPT-2's state dict names (as GPT2LMHeadModel.save_pretrained writes them) for our parameters. */
    static Map<String, SafeTensors.Tensor> tensors(ComputationGraph g, GptConfig c) {
        Map<String, SafeTensors.Tensor> t = new LinkedHashMap<>();
        Layer emb = g.getLayer(Gpt.EMBEDDING);
        put(t, "transformer.wte.weight", emb.getParam(TokenEmbedding.WTE), c.vocabSize, c.nEmbd);
        put(t, "transformer.wpe.weight", emb.getParam(TokenEmbedding.WPE), c.blockSize, c.nEmbd);
        for (int i = 0; i < c.nLayer; i++) {
            for (String[] p : mapping(i)) {
                Layer l = g.getLayer(p[1]);
                INDArray a = l.getParam(p[2]);
                put(t, "transformer." + p[0], a, a.rank() == 2 && a.size(0) > 1 ? new long[]{a.size(0), a.size(1)} : new long[]{a.length()});
            }
        }
        Layer head = g.getLayer(Gpt.HEAD);
        put(t, "transformer.ln_f.weight", head.getParam(LmHead.LNG), c.nEmbd);
        put(t, "transformer.ln_f.bias", head.getParam(LmHead.LNB), c.nEmbd);
        if (!c.tiedHead) put(t, "lm_head.weight", ((LmHead.Impl) head).weight(), c.vocabSize, c.nEmbd);
        return t;
    }

    /** {GPT-2 name, our layer, our parameter} for block i. */
    private static String[][] mapping(int i) {
        String h = "h." + i + ".", a = Gpt.attention(i), m = Gpt.mlp(i);
        return new String[][]{
                {h + "ln_1.weight", a, CausalSelfAttention.LNG}, {h + "ln_1.bias", a, CausalSelfAttention.LNB},
                {h + "attn.c_attn.weight", a, CausalSelfAttention.WQKV}, {h + "attn.c_attn.bias", a, CausalSelfAttention.BQKV},
                {h + "attn.c_proj.weight", a, CausalSelfAttention.WO}, {h + "attn.c_proj.bias", a, CausalSelfAttention.BO},
                {h + "ln_2.weight", m, MlpBlock.LNG}, {h + "ln_2.bias", m, MlpBlock.LNB},
                {h + "mlp.c_fc.weight", m, MlpBlock.WFC}, {h + "mlp.c_fc.bias", m, MlpBlock.BFC},
                {h + "mlp.c_proj.weight", m, MlpBlock.WPROJ}, {h + "mlp.c_proj.bias", m, MlpBlock.BPROJ}};
    }

    private static void put(Map<String, SafeTensors.Tensor> t, String name, INDArray a, long... shape) {
        t.put(name, new SafeTensors.Tensor(shape, a.dup('c').reshape(a.length()).toFloatVector()));
    }

    /** Reads a GPT-2-format folder (config.json, model.safetensors, tokenizer files) into a checkpoint at outUri. */
    static String importFrom(String from, String outUri, boolean overwrite, Configuration hadoop) throws IOException {
        Path out = new Path(outUri);
        FileSystem outFs = out.getFileSystem(hadoop);
        FsCommit.refuseExisting(outFs, out, outUri, overwrite);   // before any weights are read
        Path dir = new Path(from);
        FileSystem fs = dir.getFileSystem(hadoop);
        Path cfgFile = new Path(dir, CONFIG), weights = new Path(dir, WEIGHTS);
        JsonNode j;
        try {
            j = JSON.readTree(HadoopFiles.readText(fs, cfgFile));
        } catch (FileNotFoundException e) {
            throw new UserError("--from " + from + ": no " + CONFIG);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new UserError("--from " + cfgFile + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
        GptConfig c = modelConfig(j, cfgFile.toString());
        Tokenizer tok = TokenizerFiles.load(from, hadoop, "--from");
        if (tok.vocabSize() != c.vocabSize)
            throw new UserError("--from " + from + ": the tokenizer has " + tok.vocabSize() + " tokens but config.json says vocab_size " + c.vocabSize);
        Map<String, SafeTensors.Tensor> t;
        try (InputStream in = new java.io.BufferedInputStream(fs.open(weights), 1 << 20)) {
            t = SafeTensors.read(in, weights.toString());
        } catch (FileNotFoundException e) {
            throw new UserError("--from " + from + ": no " + WEIGHTS);
        } catch (IOException e) {
            throw new UserError("--from " + e.getMessage());
        }
        Map<String, SafeTensors.Tensor> named = new LinkedHashMap<>();
        t.forEach((k, v) -> named.put(k.startsWith("transformer.") ? k.substring("transformer.".length()) : k, v));
        ComputationGraph g = Gpt.build(c, new org.nd4j.linalg.learning.config.Adam(1e-3), 0, DataType.FLOAT);
        Layer emb = g.getLayer(Gpt.EMBEDDING);
        set(emb.getParam(TokenEmbedding.WTE), named, "wte.weight", weights);
        set(emb.getParam(TokenEmbedding.WPE), named, "wpe.weight", weights);
        for (int i = 0; i < c.nLayer; i++)
            for (String[] p : mapping(i)) set(g.getLayer(p[1]).getParam(p[2]), named, p[0], weights);
        Layer head = g.getLayer(Gpt.HEAD);
        set(head.getParam(LmHead.LNG), named, "ln_f.weight", weights);
        set(head.getParam(LmHead.LNB), named, "ln_f.bias", weights);
        if (!c.tiedHead) set(((LmHead.Impl) head).weight(), named, "lm_head.weight", weights);

        TrainConfig run = new TrainConfig();
        run.preset = "hf-import";
        run.nLayer = c.nLayer; run.nHead = c.nHead; run.nEmbd = c.nEmbd; run.blockSize = c.blockSize;
        run.dropout = c.dropout; run.tiedHead = c.tiedHead;
        run.data = from;
        Checkpoint.save(outUri, hadoop, run, c, tok, g, new Checkpoint.State());
        return outFs.makeQualified(out).toString();
    }

    static GptConfig modelConfig(JsonNode j, String file) {
        if (j == null || !"gpt2".equals(j.path("model_type").asText()))
            throw new UserError(file + ": model_type must be gpt2, got '" + (j == null ? "" : j.path("model_type").asText()) + "'");
        String act = j.path("activation_function").asText("gelu_new");
        if (!act.equals("gelu_new") && !act.equals("gelu_pytorch_tanh"))
            throw new UserError(file + ": activation_function " + act + " is not supported (GPT-2's tanh GELU, gelu_new, is)");
        if (Math.abs(j.path("layer_norm_epsilon").asDouble(1e-5) - LayerNorm.EPS) > 1e-12)
            throw new UserError(file + ": layer_norm_epsilon must be " + LayerNorm.EPS);
        GptConfig c = new GptConfig();
        c.nLayer = j.path("n_layer").asInt();
        c.nHead = j.path("n_head").asInt();
        c.nEmbd = j.path("n_embd").asInt();
        c.blockSize = j.path("n_positions").asInt();
        c.vocabSize = j.path("vocab_size").asInt();
        if (!j.path("n_inner").isNull() && !j.path("n_inner").isMissingNode() && j.path("n_inner").asInt() != 4 * c.nEmbd)
            throw new UserError(file + ": n_inner " + j.path("n_inner") + " is not supported (the MLP is 4 x n_embd)");
        c.tiedHead = j.path("tie_word_embeddings").asBoolean(true);
        c.dropout = 0.0;
        try {
            return c.validate();
        } catch (IllegalArgumentException e) {
            throw new UserError(file + ": " + e.getMessage());
        }
    }

    private static void set(INDArray target, Map<String, SafeTensors.Tensor> t, String name, Path file) {
        SafeTensors.Tensor src = t.get(name);
        if (src == null) throw new UserError("--from " + file + ": tensor " + name + " is missing");
        if (src.values().length != target.length())
            throw new UserError("--from " + file + ": tensor " + name + " has shape " + java.util.Arrays.toString(src.shape())
                    + " but the config asks for " + java.util.Arrays.toString(target.shape()));
        target.assign(Nd4j.create(src.values(), target.shape(), 'c').castTo(target.dataType()));
    }
}
