package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.sparkformer.worker.io.ArrayIO;
import org.sparkformer.worker.io.Int8Weights;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.FileNotFoundException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;

/**
 * A checkpoint is a directory at any Hadoop FS URI holding config.json (run config, model shape and
 * training state: step, tokens seen, best val loss), tokenizer.json, params.bin and updater.bin (our
 * own checksummed float format, never Java serialization), and manifest.json, written last: every other
 * file's length and CRC32C, checked on load. It is written under a temporary name and renamed into place,
 * so a crash leaves the previous checkpoint intact; a crash in the instant between moving the previous one
 * aside and renaming the new one in is recovered on load (the moved-aside copy is used).
 */
public final class Checkpoint {
    public static final String CONFIG = "config.json", TOKENIZER = "tokenizer.json", PARAMS = "params.bin", UPDATER = "updater.bin",
            INT8 = "weights.q8", MANIFEST = "manifest.json";
    private static final org.apache.logging.log4j.Logger log = org.apache.logging.log4j.LogManager.getLogger(Checkpoint.class);
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Where training stands: enough to continue exactly (data order and LR schedule derive from step). */
    public static final class State {
        public long step;
        public long tokens;
        public double bestValLoss = Double.POSITIVE_INFINITY;
        public double elapsedSeconds;
    }

    public record Loaded(TrainConfig config, GptConfig model, Tokenizer tokenizer, ComputationGraph graph, State state) {}

    private Checkpoint() {}

    public static void save(String uri, Configuration hadoop, TrainConfig config, GptConfig model, Tokenizer tokenizer,
                            ComputationGraph graph, State state) throws IOException {
        save(uri, hadoop, config, model, tokenizer, graph, state, false);
    }

    /** @param int8 weight-only int8 weights (weights.q8) instead of params.bin + updater.bin: for inference, not resuming */
    public static void save(String uri, Configuration hadoop, TrainConfig config, GptConfig model, Tokenizer tokenizer,
                            ComputationGraph graph, State state, boolean int8) throws IOException {
        Path dir = new Path(uri);
        FileSystem fs = dir.getFileSystem(hadoop);
        Path tmp = FsCommit.temporary(dir);
        fs.mkdirs(tmp);
        try {
            ObjectNode root = JSON.createObjectNode();
            root.put("format", "sparkformer-checkpoint");
            root.put("version", 2);   // 2: with manifest.json
            root.set("train", config.toJson());
            root.set("model", JSON.valueToTree(model));
            ObjectNode s = root.putObject("state");
            s.put("step", state.step);
            s.put("tokens", state.tokens);
            s.put("best_val_loss", Double.isFinite(state.bestValLoss) ? state.bestValLoss : -1);
            s.put("elapsed_s", state.elapsedSeconds);
            // the data position and sampling RNG are functions of these: batches are drawn from (seed, step, partition)
            s.put("data_seed", config.seed);
            s.put("lr_schedule_step", state.step);
            HadoopFiles.writeText(fs, new Path(tmp, TOKENIZER), tokenizer.toJson());
            if (int8) {
                root.putObject("quantization").put("type", "int8").put("granularity", "per-output-channel").put("symmetric", true)
                        .put("file", INT8);
                try (FSDataOutputStream out = fs.create(new Path(tmp, INT8), true)) { Int8Weights.write(graph, out); }
            } else {
                try (FSDataOutputStream out = fs.create(new Path(tmp, PARAMS), true)) { ArrayIO.write(graph.params(), out); }
                INDArray updater = graph.getUpdater(true).getStateViewArray();
                if (updater != null) try (FSDataOutputStream out = fs.create(new Path(tmp, UPDATER), true)) { ArrayIO.write(updater, out); }
            }
            FaultPoint.reach("checkpoint:weights-written");
            HadoopFiles.writeText(fs, new Path(tmp, CONFIG), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(root));
            writeManifest(fs, tmp);
            FsCommit.replace(fs, tmp, dir);
        } catch (IOException | RuntimeException e) {
            fs.delete(tmp, true);
            throw e;
        }
    }

    /** Accepts a checkpoint directory or a run directory (then its ckpt/last). */
    public static String resolve(String uri, Configuration hadoop) {
        try {
            Path p = new Path(uri);
            FileSystem fs = p.getFileSystem(hadoop);
            Path last = new Path(new Path(p, "ckpt"), "last");
            for (Path candidate : new Path[]{p, last}) {
                if (fs.exists(new Path(candidate, CONFIG))) return candidate.toString();
                Path aside = FsCommit.movedAside(fs, candidate);
                if (aside != null && fs.exists(new Path(aside, MANIFEST))) {
                    log.warn("{} is missing: the process stopped while replacing it; using the previous checkpoint {}", candidate, aside);
                    return aside.toString();
                }
            }
            if (!fs.exists(p)) throw new UserError(uri + ": no such checkpoint");
            throw new UserError(uri + ": not a checkpoint (no " + CONFIG + ")");
        } catch (IOException e) {
            throw new UserError(uri + ": cannot read (" + e.getMessage() + ")");
        }
    }

    /** Only the run settings a checkpoint was saved with (no weights read). */
    public static TrainConfig readConfig(String uri, Configuration hadoop) {
        Path dir = new Path(resolve(uri, hadoop));
        try {
            return TrainConfig.fromJson(readRoot(dir.getFileSystem(hadoop), dir, false).get("train"), dir + "/" + CONFIG);
        } catch (IOException e) {
            throw new UserError(dir + ": cannot load (" + e.getMessage() + ")");
        }
    }

    /** Only the checkpoint's tokenizer. */
    public static Tokenizer readTokenizer(String uri, Configuration hadoop) {
        Path dir = new Path(resolve(uri, hadoop));
        try {
            return readTokenizer(dir.getFileSystem(hadoop), dir);
        } catch (FileNotFoundException e) {
            throw new UserError(dir + ": incomplete checkpoint (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new UserError(dir + ": cannot load (" + e.getMessage() + ")");
        }
    }

    private static Tokenizer readTokenizer(FileSystem fs, Path dir) throws IOException {
        try {
            return Tokenizer.fromJson(HadoopFiles.readText(fs, new Path(dir, TOKENIZER)));
        } catch (IllegalArgumentException e) {
            throw new UserError(dir + "/" + TOKENIZER + ": " + e.getMessage());
        }
    }

    /** config.json, checked; with verify also every file against the manifest (a full read: only when loading weights). */
    private static JsonNode readRoot(FileSystem fs, Path dir, boolean verify) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(HadoopFiles.readText(fs, new Path(dir, CONFIG)));
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new UserError(dir + "/" + CONFIG + ": not valid JSON (" + e.getOriginalMessage() + ")");
        } catch (FileNotFoundException e) {
            throw new UserError(dir + ": incomplete checkpoint (" + e.getMessage() + ")");
        }
        if (root == null || !"sparkformer-checkpoint".equals(root.path("format").asText()))
            throw new UserError(dir + "/" + CONFIG + ": not a sparkformer checkpoint");
        int version = root.path("version").asInt();
        if (version != 1 && version != 2)
            throw new UserError(dir + "/" + CONFIG + ": unsupported checkpoint version " + root.path("version"));
        if (version >= 2 && verify) verifyManifest(fs, dir);
        return root;
    }

    /** manifest.json: each file's length and CRC32C, read back from storage (what a later load will read). */
    private static void writeManifest(FileSystem fs, Path dir) throws IOException {
        ObjectNode files = JSON.createObjectNode();
        for (var st : fs.listStatus(dir)) {
            if (!st.isFile()) continue;
            long[] lc = lengthAndCrc(fs, st.getPath());
            files.putObject(st.getPath().getName()).put("bytes", lc[0]).put("crc32c", Long.toHexString(lc[1]));
        }
        ObjectNode m = JSON.createObjectNode();
        m.put("format", "sparkformer-checkpoint-manifest");
        m.set("files", files);
        FaultPoint.reach("checkpoint:before-manifest");
        HadoopFiles.writeText(fs, new Path(dir, MANIFEST), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(m));
    }

    private static void verifyManifest(FileSystem fs, Path dir) throws IOException {
        JsonNode m;
        try {
            m = JSON.readTree(HadoopFiles.readText(fs, new Path(dir, MANIFEST)));
        } catch (FileNotFoundException e) {
            throw new UserError(dir + ": incomplete checkpoint (no " + MANIFEST + ")");
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new UserError(dir + "/" + MANIFEST + ": not valid JSON (" + e.getOriginalMessage() + ")");
        }
        if (m == null || !m.path("files").isObject() || m.path("files").size() == 0)
            throw new UserError(dir + "/" + MANIFEST + ": lists no files");
        for (var it = m.get("files").fields(); it.hasNext(); ) {
            var e = it.next();
            if (e.getKey().contains("/") || e.getKey().startsWith(".")) throw new UserError(dir + "/" + MANIFEST + ": bad file name " + e.getKey());
            Path f = new Path(dir, e.getKey());
            if (!fs.exists(f)) throw new UserError(dir + ": incomplete checkpoint (" + e.getKey() + " is missing)");
            long[] lc = lengthAndCrc(fs, f);
            if (lc[0] != e.getValue().path("bytes").asLong())
                throw new UserError(f + ": " + lc[0] + " bytes, the manifest says " + e.getValue().path("bytes").asLong() + " (truncated or replaced)");
            if (!Long.toHexString(lc[1]).equals(e.getValue().path("crc32c").asText()))
                throw new UserError(f + ": checksum mismatch (the file is corrupt)");
        }
    }

    private static long[] lengthAndCrc(FileSystem fs, Path f) throws IOException {
        java.util.zip.CRC32C crc = new java.util.zip.CRC32C();
        long n = 0;
        byte[] buf = new byte[1 << 16];
        try (InputStream in = fs.open(f)) {
            for (int r; (r = in.read(buf)) > 0; n += r) crc.update(buf, 0, r);
        }
        return new long[]{n, crc.getValue()};
    }

    public static Loaded load(String uri, Configuration hadoop, boolean withUpdater) {
        return load(uri, hadoop, withUpdater, null);
    }

    /**
     * @param optimizer the run whose LR schedule and weight decay the rebuilt network should use (a resumed run
     *                  may change --steps); null for the checkpoint's own settings
     */
    public static Loaded load(String uri, Configuration hadoop, boolean withUpdater, TrainConfig optimizer) {
        Path dir = new Path(resolve(uri, hadoop));
        try {
            FileSystem fs = dir.getFileSystem(hadoop);
            JsonNode root = readRoot(fs, dir, true);
            TrainConfig config = TrainConfig.fromJson(root.get("train"), dir + "/" + CONFIG);
            TrainConfig opt = optimizer != null ? optimizer : config;
            GptConfig model;
            try {
                model = JSON.treeToValue(root.get("model"), GptConfig.class).validate();
                model.dtype = "float32";   // the weights are float32; a run's --dtype applies to its own products
            } catch (Exception e) {
                throw new UserError(dir + "/" + CONFIG + ": invalid model section (" + e.getMessage().split("\n")[0] + ")");
            }
            Tokenizer tokenizer = readTokenizer(fs, dir);
            if (tokenizer.vocabSize() != model.vocabSize)
                throw new UserError(dir + ": tokenizer has " + tokenizer.vocabSize() + " tokens but the model expects " + model.vocabSize);
            JsonNode s = root.path("state");
            State state = new State();
            state.step = s.path("step").asLong();
            state.tokens = s.path("tokens").asLong();
            double best = s.path("best_val_loss").asDouble(-1);
            state.bestValLoss = best >= 0 ? best : Double.POSITIVE_INFINITY;
            state.elapsedSeconds = s.path("elapsed_s").asDouble();

            ComputationGraph graph = Gpt.build(model, Optimizer.updater(opt), opt.weightDecay, DataType.FLOAT);
            boolean int8 = root.has("quantization");
            if (int8) {
                if (withUpdater) throw new UserError(dir + ": an int8-quantized checkpoint is for inference (generate, eval), not for resuming training");
                try (InputStream in = fs.open(new Path(dir, INT8))) { Int8Weights.read(in, graph, dir + "/" + INT8); }
            } else try (InputStream in = fs.open(new Path(dir, PARAMS))) {
                graph.setParams(ArrayIO.read(in, graph.numParams(), dir + "/" + PARAMS));
            }
            if (withUpdater) {
                INDArray view = graph.getUpdater(true).getStateViewArray();
                Path up = new Path(dir, UPDATER);
                if (view != null) {
                    if (!fs.exists(up)) throw new UserError(dir + ": missing " + UPDATER + " (needed to resume)");
                    try (InputStream in = fs.open(up)) {
                        graph.getUpdater(true).setStateViewArray(ArrayIO.read(in, view.length(), up.toString()));
                    }
                }
            }
            graph.getConfiguration().setIterationCount((int) state.step);
            return new Loaded(config, model, tokenizer, graph, state);
        } catch (FileNotFoundException e) {
            throw new UserError(dir + ": incomplete checkpoint (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new UserError(dir + ": cannot load (" + e.getMessage() + ")");
        }
    }

}
