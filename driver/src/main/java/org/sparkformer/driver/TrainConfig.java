package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.sparkformer.worker.model.GptConfig;

import java.io.Serializable;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * Everything a training run is told, as plain values (nanoGPT style): a preset, then a properties file
 * ({@code --config}), then {@code --key value} flags, each overriding the last. Keys are the flag names.
 *
 * <pre>
 * scripts/sparkformer train --preset baby --steps 1000 --lr 1e-3 --batch-size 12
 * </pre>
 */
public final class TrainConfig implements Serializable {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Presets: layers / heads / width / block / batch per worker. */
    public static final Map<String, int[]> PRESETS = new LinkedHashMap<>();
    static {
        PRESETS.put("tiny", new int[]{2, 4, 128, 64, 16});
        PRESETS.put("baby", new int[]{4, 4, 128, 128, 12});
        PRESETS.put("small", new int[]{6, 6, 384, 256, 8});
        PRESETS.put("gpt2-124m", new int[]{12, 12, 768, 1024, 8});
    }

    // model
    public String preset = "tiny";
    public int nLayer, nHead, nEmbd, blockSize;
    public double dropout = 0.0;
    public boolean tiedHead = true;
    public String positional = "learned";
    // optimisation
    public int batchSize;
    public double lr = 1e-3, minLr = -1, beta1 = 0.9, beta2 = 0.99, weightDecay = 0.1, gradClip = 1.0;
    public int warmupSteps = -1, steps = 1200;
    public double epochs = 0;
    // distribution
    public int workers = 0, averagingFrequency = 5;
    /** averaging (parameter averaging every averaging-frequency steps) or sharing (threshold-encoded updates every step). */
    public String sync = "averaging";
    /** sharing: the initial encoding threshold, the driver's address as executors reach it ("" = spark.driver.host),
     *  the subnet executors advertise addresses from, and how long the mesh may take to form / a round may stall. */
    public double sharingThreshold = 0;   // 0: lr / workers (GradientSharing.threshold)
    /** Precision of the matrix products: float32, or float16 / bfloat16 (mixed precision; the CUDA backend only). */
    public String dtype = "float32";
    public String controllerAddress = "", networkMask = "";
    public int syncTimeout = 120;
    // evaluation and output
    public int evalInterval = 100, evalBatches = 20, samples = 3, sampleTokens = 400, evalSampleTokens = 100;
    /** TensorBoard event folder: "" = &lt;out&gt;/tb, "none" = off, else any Hadoop URI. */
    public String tensorboard = "";
    /** Checkpoints besides evaluations: every N steps (0 = only at evaluations) and/or every M minutes (0 = off);
     *  keep-last K > 1 keeps the K newest as ckpt/step-N beside ckpt/last. */
    public int checkpointInterval = 0, keepLast = 1;
    public double checkpointMinutes = 0;
    /** Knowledge distillation: the teacher checkpoint ("" = none), the weight of the hard labels, the temperature. */
    public String teacher = "";
    public double distillAlpha = 0.5, distillTemperature = 2.0;
    /** Console status: auto (a redrawn line on a terminal, log lines otherwise), bar, log. */
    public String progress = "auto";
    public double valFraction = 0.1;
    public long seed = 1337;
    public String data = "", out = "", master = "local[*]";

    public TrainConfig() { applyPreset("tiny"); }

    void applyPreset(String name) {
        int[] p = PRESETS.get(name);
        if (p == null) throw new UserError("--preset: unknown preset '" + name + "' (choose one of " + String.join(", ", PRESETS.keySet()) + ")");
        preset = name;
        nLayer = p[0]; nHead = p[1]; nEmbd = p[2]; blockSize = p[3]; batchSize = p[4];
    }

    /** Sets one key from its text form; the key is a flag name without dashes, e.g. "n-layer". */
    public void set(String key, String value, String origin) {
        try {
            switch (key) {
                case "preset" -> applyPreset(value);
                case "n-layer" -> nLayer = positiveInt(value);
                case "n-head" -> nHead = positiveInt(value);
                case "n-embd" -> nEmbd = positiveInt(value);
                case "block-size" -> blockSize = positiveInt(value);
                case "batch-size" -> batchSize = positiveInt(value);
                case "dropout" -> dropout = number(value);
                case "tied-head" -> tiedHead = bool(value);
                case "positional" -> positional = choice(value, "learned", "sinusoidal");
                case "lr" -> lr = number(value);
                case "min-lr" -> minLr = number(value);
                case "beta1" -> beta1 = number(value);
                case "beta2" -> beta2 = number(value);
                case "weight-decay" -> weightDecay = number(value);
                case "grad-clip" -> gradClip = number(value);
                case "warmup-steps" -> warmupSteps = nonNegativeInt(value);
                case "steps" -> steps = positiveInt(value);
                case "epochs" -> epochs = number(value);
                case "workers" -> workers = nonNegativeInt(value);
                case "averaging-frequency" -> averagingFrequency = positiveInt(value);
                case "sync" -> sync = choice(value, "averaging", "sharing");
                case "sharing-threshold" -> sharingThreshold = value.trim().equals("auto") ? 0 : number(value);
                case "dtype" -> dtype = choice(value, "float32", "float16", "bfloat16");
                case "controller-address" -> controllerAddress = value.trim();
                case "network-mask" -> networkMask = value.trim();
                case "sync-timeout" -> syncTimeout = positiveInt(value);
                case "eval-interval" -> evalInterval = positiveInt(value);
                case "eval-batches" -> evalBatches = positiveInt(value);
                case "samples" -> samples = nonNegativeInt(value);
                case "sample-tokens" -> sampleTokens = nonNegativeInt(value);
                case "eval-sample-tokens" -> evalSampleTokens = nonNegativeInt(value);
                case "tensorboard" -> tensorboard = value.trim();
                case "teacher" -> teacher = value.trim();
                case "checkpoint-interval" -> checkpointInterval = nonNegativeInt(value);
                case "checkpoint-minutes" -> checkpointMinutes = number(value);
                case "keep-last" -> keepLast = positiveInt(value);
                case "distill-alpha" -> distillAlpha = number(value);
                case "distill-temperature" -> distillTemperature = number(value);
                case "progress" -> progress = choice(value, "auto", "bar", "log");
                case "val-fraction" -> valFraction = number(value);
                case "seed" -> seed = Long.parseLong(value.trim());
                case "data" -> data = value;
                case "out" -> out = value;
                case "master" -> master = value;
                default -> throw new UserError(origin + ": unknown key '" + key + "'");
            }
        } catch (NumberFormatException e) {
            throw new UserError(origin + ": expected a number, got '" + value + "'");
        } catch (IllegalArgumentException e) {
            throw new UserError(origin + ": " + e.getMessage());
        }
    }

    public static boolean isKey(String key) {
        TrainConfig probe = new TrainConfig();
        try {
            probe.set(key, probeValue(key), "probe");
            return true;
        } catch (UserError e) {
            return !e.getMessage().startsWith("probe: unknown key");
        }
    }

    private static String probeValue(String key) {
        return switch (key) {
            case "preset" -> "tiny";
            case "positional" -> "learned";
            case "progress" -> "auto";
            case "sync" -> "averaging";
            case "tied-head" -> "true";
            default -> "1";
        };
    }

    /** Checks ranges and relations between keys; names the offending flag. */
    public TrainConfig validate() {
        if (nEmbd % nHead != 0)
            throw new UserError("--n-embd (" + nEmbd + ") must be divisible by --n-head (" + nHead + ")");
        if (dropout < 0 || dropout >= 1) throw new UserError("--dropout must be in [0, 1), got " + dropout);
        if (!(lr > 0)) throw new UserError("--lr must be > 0, got " + lr);
        if (beta1 < 0 || beta1 >= 1) throw new UserError("--beta1 must be in [0, 1), got " + beta1);
        if (beta2 < 0 || beta2 >= 1) throw new UserError("--beta2 must be in [0, 1), got " + beta2);
        if (weightDecay < 0) throw new UserError("--weight-decay must be >= 0, got " + weightDecay);
        if (sharingThreshold < 0) throw new UserError("--sharing-threshold must be > 0 (or auto: lr / workers), got " + sharingThreshold);
        if (valFraction <= 0 || valFraction >= 1) throw new UserError("--val-fraction must be in (0, 1), got " + valFraction);
        if (epochs < 0) throw new UserError("--epochs must be >= 0, got " + epochs);
        if (checkpointMinutes < 0) throw new UserError("--checkpoint-minutes must be >= 0, got " + checkpointMinutes);
        if (distillAlpha < 0 || distillAlpha > 1) throw new UserError("--distill-alpha must be in [0, 1], got " + distillAlpha);
        if (!(distillTemperature > 0)) throw new UserError("--distill-temperature must be > 0, got " + distillTemperature);
        return this;
    }

    public double resolvedMinLr() { return minLr >= 0 ? minLr : lr / 10; }

    public int resolvedWarmup() { return warmupSteps >= 0 ? warmupSteps : Math.min(100, steps / 10); }

    public GptConfig model(int vocabSize) {
        GptConfig c = new GptConfig();
        c.nLayer = nLayer; c.nHead = nHead; c.nEmbd = nEmbd; c.blockSize = blockSize; c.vocabSize = vocabSize;
        c.dropout = dropout; c.tiedHead = tiedHead; c.seed = seed; c.dtype = dtype;
        c.positional = GptConfig.Positional.valueOf(positional.toUpperCase(Locale.ROOT));
        if (!teacher.isEmpty()) {
            c.distillAlpha = distillAlpha;
            c.distillTemperature = distillTemperature;
        }
        return c;
    }

    public ObjectNode toJson() {
        return JSON.valueToTree(this);
    }

    /** Reads a config saved with {@link #toJson()}: only known keys, each checked as a flag would be. */
    public static TrainConfig fromJson(JsonNode node, String origin) {
        TrainConfig c = new TrainConfig();
        if (node == null || !node.isObject()) throw new UserError(origin + ": config is not a JSON object");
        TrainConfig defaults = new TrainConfig();
        ObjectNode fields = JSON.valueToTree(defaults);
        node.fields().forEachRemaining(e -> {
            if (!fields.has(e.getKey())) throw new UserError(origin + ": unknown config key '" + e.getKey() + "'");
        });
        try {
            return JSON.treeToValue(node, TrainConfig.class);
        } catch (Exception e) {
            throw new UserError(origin + ": invalid config: " + e.getMessage().split("\n")[0]);
        }
    }

    private static int positiveInt(String v) {
        int n = Integer.parseInt(v.trim());
        if (n <= 0) throw new IllegalArgumentException("must be a positive integer, got " + v);
        return n;
    }

    private static int nonNegativeInt(String v) {
        int n = Integer.parseInt(v.trim());
        if (n < 0) throw new IllegalArgumentException("must be >= 0, got " + v);
        return n;
    }

    private static double number(String v) {
        double d = Double.parseDouble(v.trim());
        if (Double.isNaN(d) || Double.isInfinite(d)) throw new NumberFormatException(v);
        return d;
    }

    private static boolean bool(String v) {
        return switch (v.trim().toLowerCase(Locale.ROOT)) {
            case "true", "yes", "1" -> true;
            case "false", "no", "0" -> false;
            default -> throw new IllegalArgumentException("expected true or false, got '" + v + "'");
        };
    }

    private static String choice(String v, String... allowed) {
        for (String a : allowed) if (a.equalsIgnoreCase(v.trim())) return a;
        throw new IllegalArgumentException("expected one of " + String.join(", ", allowed) + ", got '" + v + "'");
    }
}
