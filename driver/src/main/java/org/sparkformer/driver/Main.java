package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.spark.api.java.JavaSparkContext;
import org.sparkformer.worker.generate.KvCache;
import org.sparkformer.worker.generate.NextToken;
import org.sparkformer.worker.generate.Recompute;
import org.sparkformer.worker.generate.Sampler;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.nd4j.Nd4jTuning;
import org.sparkformer.worker.tokenizer.StreamingDecoder;

import java.io.FileInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

/**
 * sparkformer's command line.
 * <pre>
 *   scripts/sparkformer train [--data PATH|URI] [--preset tiny|baby|small|gpt2-124m] [--steps N] [--out DIR]
 *                             [--master local[*]] [--config FILE] [--resume DIR] [--overwrite] [--KEY VALUE ...]
 *   scripts/sparkformer bench --preset small [--steps N] [--threads K] [--forward-only] [--profile]
 *   scripts/sparkformer prepare --input URI[,URI...] --tokenizer char|bpe|gpt2:FOLDER|DIR [--vocab-size N] --out URI
 *   scripts/sparkformer tokenize --tokenizer DIR|gpt2:FOLDER --input FILE
 *   scripts/sparkformer generate --checkpoint DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--seed S]
 * </pre>
 */
public final class Main {
    private static final Logger log = LogManager.getLogger(Main.class);

    private Main() {}

    public static void main(String[] args) {
        Nd4jTuning.install();      // before ND4J's first use: it reads these when it starts
        int code;
        try {
            code = run(args, System.out);
        } catch (UserError e) {
            System.err.println("sparkformer: " + e.getMessage());
            code = 2;
        } catch (Throwable t) {
            UserError cause = findUserError(t);
            String oom = outOfMemory(t);
            if (cause != null) {
                System.err.println("sparkformer: " + cause.getMessage());
                code = 2;
            } else if (oom != null) {
                log.debug("out of memory", t);
                System.err.println("sparkformer: out of memory (" + oom + "): give executors more (spark.executor.memory; ND4J's "
                        + "off-heap arrays: --off-heap / spark.sparkformer.executor.offHeap, or the launcher's SPARKFORMER_DRIVER_MEMORY "
                        + "in local mode) or lower --batch-size / --block-size");
                code = 1;
            } else {
                log.error("sparkformer failed", t);
                code = 1;
            }
        }
        // in YARN cluster mode this main runs inside Spark's ApplicationMaster, which reports the outcome itself
        // once main returns (exiting first reads as a failure) or throws
        if ("cluster".equals(System.getProperty("spark.submit.deployMode"))) {
            if (code != 0) throw new IllegalStateException("sparkformer exited with status " + code + " (see the message above)");
            return;
        }
        System.exit(code);
    }

    /** The out-of-memory line in a failure's causes: Java's own, or JavaCPP's when ND4J's off-heap limit is hit,
     *  also when it comes back from an executor as the text of a Spark task failure. */
    static String outOfMemory(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) {
            if (c instanceof OutOfMemoryError) return c.toString().lines().findFirst().orElse("OutOfMemoryError");
            String m = String.valueOf(c.getMessage());
            int i = m.indexOf("java.lang.OutOfMemoryError");
            if (i >= 0) return m.substring(i).lines().findFirst().orElse("OutOfMemoryError");
        }
        return null;
    }

    private static UserError findUserError(Throwable t) {
        for (Throwable c = t; c != null; c = c.getCause()) if (c instanceof UserError u) return u;
        return null;
    }

    static int run(String[] args, PrintStream out) throws IOException {
        if (args.length == 0 || args[0].equals("help") || args[0].equals("--help") || args[0].equals("-h")) {
            out.println(USAGE);
            return args.length == 0 ? 2 : 0;
        }
        String command = args[0];
        Map<String, String> flags = parseFlags(args, 1);
        try {   // a bad SPARKFORMER_SHARDS is the user's error, said in one line before anything starts
            org.sparkformer.worker.model.Shards.count();
        } catch (ExceptionInInitializerError e) {
            throw new UserError(e.getCause().getMessage());
        }
        return switch (command) {
            case "train" -> train(flags, out);
            case "distill" -> {
                if (!flags.containsKey("teacher")) throw new UserError("--teacher: required (the checkpoint to distill from)");
                yield train(flags, out);
            }
            case "generate" -> generate(flags, out);
            case "bench" -> flags.containsKey("tokenizer") ? TokenizerBench.run(flags, out)
                    : flags.containsKey("generate") ? GenerateBench.run(flags, out)
                    : flags.containsKey("scaling") ? ScalingBench.run(flags, out)
                    : flags.containsKey("soak") ? SoakBench.run(flags, out) : Bench.run(flags, out);
            case "prepare" -> prepare(flags, out);
            case "tokenize" -> tokenize(flags, out);
            case "report" -> report(flags, out);
            case "export" -> export(flags, out);
            case "eval" -> eval(flags, out);
            case "quantize" -> quantize(flags, out);
            case "import" -> importHf(flags, out);
            default -> throw new UserError("unknown command '" + command + "' (try: train, prepare, generate, tokenize, export, import, report, bench, help)");
        };
    }

    /** --key value and --key=value; a flag given twice keeps the last value. Boolean switches take no value. */
    static Map<String, String> parseFlags(String[] args, int from) {
        Map<String, String> flags = new LinkedHashMap<>();
        for (int i = from; i < args.length; i++) {
            String a = args[i];
            if (!a.startsWith("--") || a.length() == 2) throw new UserError("unexpected argument '" + a + "' (flags look like --key value)");
            String key = a.substring(2), value;
            int eq = key.indexOf('=');
            if (eq >= 0) {
                value = key.substring(eq + 1);
                key = key.substring(0, eq);
            } else if (SWITCHES.contains(key)) {
                value = "true";
            } else {
                if (i + 1 >= args.length) throw new UserError("--" + key + ": missing value");
                value = args[++i];
            }
            flags.put(key, value);
        }
        return flags;
    }

    private static final List<String> SWITCHES = List.of("overwrite", "forward-only", "profile", "no-cache", "generate", "scaling", "soak");

    static TrainConfig trainConfig(Map<String, String> flags) {
        TrainConfig cfg = new TrainConfig();
        if (flags.containsKey("preset")) cfg.set("preset", flags.get("preset"), "--preset");
        if (flags.containsKey("config")) {
            Properties props = new Properties();
            String file = flags.get("config");
            try (var in = new InputStreamReader(new FileInputStream(file), StandardCharsets.UTF_8)) {
                props.load(in);
            } catch (IOException e) {
                throw new UserError("--config " + file + ": cannot read (" + e.getMessage() + ")");
            }
            if (props.containsKey("preset")) cfg.set("preset", props.getProperty("preset"), "--config " + file);
            for (String key : props.stringPropertyNames())
                if (!key.equals("preset")) cfg.set(key, props.getProperty(key), "--config " + file + " key " + key);
        }
        for (Map.Entry<String, String> f : flags.entrySet()) {
            String key = f.getKey();
            if (key.equals("preset") || key.equals("config") || key.equals("resume") || key.equals("overwrite")) continue;
            if (!TrainConfig.isKey(key)) throw new UserError("unknown flag --" + key + " for train (see: sparkformer help)");
            cfg.set(key, f.getValue(), "--" + key);
        }
        return cfg.validate();
    }

    private static int train(Map<String, String> flags, PrintStream out) throws IOException {
        TrainConfig cfg = trainConfig(flags);
        String resume = flags.get("resume");
        if (resume != null) {
            // a resumed run keeps the checkpoint's settings; flags given now override them
            TrainConfig merged = Checkpoint.readConfig(resume, new Configuration());
            for (Map.Entry<String, String> f : flags.entrySet())
                if (!List.of("resume", "overwrite", "config", "preset").contains(f.getKey())) merged.set(f.getKey(), f.getValue(), "--" + f.getKey());
            cfg = merged.validate();
        }
        boolean overwrite = Boolean.parseBoolean(flags.getOrDefault("overwrite", "false"));
        try (JavaSparkContext sc = new JavaSparkContext(Trainer.sparkConf(cfg.master))) {
            Trainer.Result r = new Trainer(cfg, resume, overwrite).progress(Progress.choose(cfg.progress, out)).run(sc);
            for (int i = 0; i < r.samples().size(); i++) out.println("--- sample " + (i + 1) + " ---\n" + r.samples().get(i));
            out.printf("done: %d steps, val loss %.4f (first %.4f), run in %s%n", r.steps(), r.finalValLoss(), r.firstValLoss(), r.runDir());
        } finally {
            if (cfg.master.startsWith("local-cluster")) LeftoverExecutors.stop();
        }
        return 0;
    }

    private static int prepare(Map<String, String> flags, PrintStream out) throws IOException {
        allowFlags(flags, "prepare", "input", "tokenizer", "vocab-size", "out", "val-fraction", "invalid-utf8", "text-field", "master", "overwrite");
        String input = flags.get("input"), outUri = flags.get("out");
        if (input == null || input.isBlank()) throw new UserError("--input: required (files, folders or globs, comma-separated)");
        if (outUri == null || outUri.isBlank()) throw new UserError("--out: required (the dataset folder to write)");
        double valFraction = doubleFlag(flags, "val-fraction", 0.1);
        if (!(valFraction >= 0 && valFraction < 1)) throw new UserError("--val-fraction must be in [0, 1), got " + valFraction);
        TextInput.Invalid invalid;
        try {
            invalid = TextInput.Invalid.valueOf(flags.getOrDefault("invalid-utf8", "fail").toUpperCase(java.util.Locale.ROOT));
        } catch (IllegalArgumentException e) {
            throw new UserError("--invalid-utf8: expected fail, replace or skip, got '" + flags.get("invalid-utf8") + "'");
        }
        Prepare.Options o = new Prepare.Options(List.of(input.split(",")), flags.getOrDefault("tokenizer", "bpe"),
                intFlag(flags, "vocab-size", 8192), outUri, valFraction, invalid, flags.getOrDefault("text-field", "text"),
                Boolean.parseBoolean(flags.getOrDefault("overwrite", "false")));
        try (JavaSparkContext sc = new JavaSparkContext(Trainer.sparkConf(flags.getOrDefault("master", "local[*]")))) {
            out.println(Prepare.describe(Prepare.run(sc, o)));
        }
        return 0;
    }

    private static int eval(Map<String, String> flags, PrintStream out) throws IOException {
        allowFlags(flags, "eval", "checkpoint", "data", "master", "batch-size", "max-tokens");
        if (!flags.containsKey("checkpoint")) throw new UserError("--checkpoint: required");
        if (!flags.containsKey("data")) throw new UserError("--data: required (text, or a dataset folder: its val split)");
        int batch = intFlag(flags, "batch-size", 8);
        if (batch < 1) throw new UserError("--batch-size must be >= 1");
        long maxTokens = parsedFlag(flags, "max-tokens", 0L, Long::parseLong, "an integer");
        try (JavaSparkContext sc = new JavaSparkContext(Trainer.sparkConf(flags.getOrDefault("master", "local[*]")))) {
            Evaluate.Result r = Evaluate.run(sc, flags.get("checkpoint"), flags.get("data"), batch, maxTokens);
            com.fasterxml.jackson.databind.node.ObjectNode j = new com.fasterxml.jackson.databind.ObjectMapper().createObjectNode();
            j.put("mean_loss", r.meanLoss());
            j.put("perplexity", r.perplexity());
            j.put("bits_per_byte", r.bitsPerByte());
            j.put("tokens", r.tokens());
            j.put("bytes", r.bytes());
            j.put("seconds", Math.round(r.seconds() * 10) / 10.0);
            out.println(j);
        }
        return 0;
    }

    private static int quantize(Map<String, String> flags, PrintStream out) throws IOException {
        allowFlags(flags, "quantize", "checkpoint", "out", "overwrite");
        if (!flags.containsKey("checkpoint")) throw new UserError("--checkpoint: required");
        if (!flags.containsKey("out")) throw new UserError("--out: required (the quantized checkpoint folder to write)");
        Configuration hadoop = new Configuration();
        org.apache.hadoop.fs.Path dst = new org.apache.hadoop.fs.Path(flags.get("out"));
        org.apache.hadoop.fs.FileSystem fs = dst.getFileSystem(hadoop);
        FsCommit.refuseExisting(fs, dst, flags.get("out"), flags.containsKey("overwrite"));
        Checkpoint.Loaded m = Checkpoint.load(flags.get("checkpoint"), hadoop, false);
        Checkpoint.save(flags.get("out"), hadoop, m.config(), m.model(), m.tokenizer(), m.graph(), m.state(), true);
        org.apache.hadoop.fs.Path src = new org.apache.hadoop.fs.Path(Checkpoint.resolve(flags.get("checkpoint"), hadoop));
        long before = fs.getFileStatus(new org.apache.hadoop.fs.Path(src, Checkpoint.PARAMS)).getLen();
        long after = fs.getFileStatus(new org.apache.hadoop.fs.Path(dst, Checkpoint.INT8)).getLen();
        out.printf(java.util.Locale.ROOT, "quantized %s: weights %,d -> %,d bytes (%.1f%% of float32)%n", fs.makeQualified(dst), before, after, 100.0 * after / before);
        return 0;
    }

    private static int export(Map<String, String> flags, PrintStream out) throws IOException {
        allowFlags(flags, "export", "checkpoint", "format", "out", "overwrite");
        if (!flags.containsKey("checkpoint")) throw new UserError("--checkpoint: required");
        if (!flags.containsKey("out")) throw new UserError("--out: required (the folder to write)");
        String format = flags.getOrDefault("format", "hf");
        if (!format.equals("hf")) throw new UserError("--format: only hf (Hugging Face GPT-2) is supported, got '" + format + "'");
        out.println("exported " + HfGpt2.export(flags.get("checkpoint"), flags.get("out"), flags.containsKey("overwrite"), new Configuration()));
        return 0;
    }

    private static int importHf(Map<String, String> flags, PrintStream out) throws IOException {
        allowFlags(flags, "import", "from", "out", "overwrite");
        if (!flags.containsKey("from")) throw new UserError("--from: required (a GPT-2-format folder: config.json, model.safetensors, tokenizer)");
        if (!flags.containsKey("out")) throw new UserError("--out: required (the checkpoint folder to write)");
        out.println("imported into " + HfGpt2.importFrom(flags.get("from"), flags.get("out"), flags.containsKey("overwrite"), new Configuration()));
        return 0;
    }

    private static int report(Map<String, String> flags, PrintStream out) throws IOException {
        allowFlags(flags, "report", "run");
        String run = flags.get("run");
        if (run == null || run.isBlank()) throw new UserError("--run: required (a training run folder)");
        try {
            out.println("report: " + Report.write(run, new Configuration()));
        } catch (java.io.FileNotFoundException e) {
            throw new UserError("--run " + run + ": " + e.getMessage());
        }
        return 0;
    }

    private static int tokenize(Map<String, String> flags, PrintStream out) {
        allowFlags(flags, "tokenize", "tokenizer", "input");
        if (!flags.containsKey("tokenizer")) throw new UserError("--tokenizer: required (a folder, tokenizer.json, or gpt2:FOLDER)");
        if (!flags.containsKey("input")) throw new UserError("--input: required (a UTF-8 text file)");
        Configuration hadoop = new Configuration();
        org.sparkformer.worker.tokenizer.Tokenizer tokenizer = TokenizerFiles.load(flags.get("tokenizer"), hadoop, "--tokenizer");
        StringBuilder sb = new StringBuilder();
        for (int id : tokenizer.encode(Corpus.read(flags.get("input"), hadoop, "--input"))) sb.append(id).append('\n');
        out.print(sb);
        return 0;
    }

    private static int generate(Map<String, String> flags, PrintStream out) {
        allowFlags(flags, "generate", "checkpoint", "prompt", "max-new-tokens", "temperature", "top-k", "top-p", "repetition-penalty",
                "stop", "seed", "no-cache");
        String ckpt = flags.get("checkpoint");
        if (ckpt == null) throw new UserError("--checkpoint: required (a checkpoint or run directory)");
        int maxNew = intFlag(flags, "max-new-tokens", 200);
        if (maxNew < 0) throw new UserError("--max-new-tokens must be >= 0");
        Sampler.Settings settings;
        try {
            settings = new Sampler.Settings(doubleFlag(flags, "temperature", 0.8), intFlag(flags, "top-k", 0),
                    doubleFlag(flags, "top-p", 1.0), doubleFlag(flags, "repetition-penalty", 1.0), intFlag(flags, "seed", 1337));
        } catch (IllegalArgumentException e) {
            throw new UserError("--" + e.getMessage().replace(" must", ": must").replace("repetition penalty", "repetition-penalty"));
        }
        List<String> stops = new java.util.ArrayList<>();
        if (flags.containsKey("stop"))
            for (String st : flags.get("stop").split("\\|")) if (!st.isEmpty()) stops.add(unescape(st));
        Checkpoint.Loaded m = Checkpoint.load(ckpt, new Configuration(), false);
        String prompt = unescape(flags.getOrDefault("prompt", "\n"));
        int[] ids;
        try {
            ids = m.tokenizer().encode(prompt);
        } catch (IllegalArgumentException e) {
            throw new UserError("--prompt: " + e.getMessage());
        }
        if (ids.length == 0) throw new UserError("--prompt: must not be empty");
        GptConfig model = m.model();
        NextToken next = flags.containsKey("no-cache") ? new Recompute(m.graph(), model.blockSize) : new KvCache(m.graph(), model);
        out.print(prompt);
        StreamingDecoder decoder = new StreamingDecoder(m.tokenizer());
        StringBuilder text = new StringBuilder();
        int[] printed = {0};
        new Sampler(next).generate(ids, maxNew, settings, id -> {
            text.append(decoder.push(id));
            int cut = text.length();
            for (String st : stops) {
                int at = text.indexOf(st);
                if (at >= 0) cut = Math.min(cut, at);
            }
            // hold back a tail that could still become a stop string
            int safe = cut;
            if (cut == text.length()) for (String st : stops) safe = Math.min(safe, Math.max(printed[0], text.length() - st.length() + 1));
            out.print(text.substring(printed[0], safe));
            out.flush();
            printed[0] = safe;
            return cut == text.length();
        });
        boolean stopped = false;
        for (String st : stops) stopped |= text.indexOf(st) >= 0;
        if (!stopped) out.print(text.substring(printed[0]));
        out.println();
        return 0;
    }

    /** \n, \t and \\ in flag values (prompts, stop strings typed on a shell). */
    static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char ch = s.charAt(i);
            if (ch == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                b.append(switch (n) { case 'n' -> '\n'; case 't' -> '\t'; case '\\' -> '\\'; default -> "" + '\\' + n; });
            } else b.append(ch);
        }
        return b.toString();
    }

    /** Refuses any flag a command does not take, naming it and the command. */
    static void allowFlags(Map<String, String> flags, String command, String... keys) {
        List<String> known = List.of(keys);
        for (String k : flags.keySet()) if (!known.contains(k)) throw new UserError("unknown flag --" + k + " for " + command);
    }

    static int intFlag(Map<String, String> flags, String key, int def) {
        return parsedFlag(flags, key, def, Integer::parseInt, "an integer");
    }

    static double doubleFlag(Map<String, String> flags, String key, double def) {
        return parsedFlag(flags, key, def, Double::parseDouble, "a number");
    }

    private static <T> T parsedFlag(Map<String, String> flags, String key, T def,
                                    java.util.function.Function<String, T> parse, String what) {
        String v = flags.get(key);
        if (v == null) return def;
        try {
            return parse.apply(v.trim());
        } catch (NumberFormatException e) {
            throw new UserError("--" + key + ": expected " + what + ", got '" + v + "'");
        }
    }

    static final String USAGE = String.join("\n",
            "usage: sparkformer <command> [--key value ...]",
            "",
            "  train      train a GPT on Spark (parameter averaging)",
            "             --data PATH|URI (text file, folder or zip; default: the JDK's java.base sources;",
            "                              or a dataset folder written by prepare)",
            "             --preset tiny|baby|small|gpt2-124m   --steps N | --epochs E   --out DIR   --master URL",
            "             --config FILE (properties)   --resume DIR   --overwrite",
            "             model: --n-layer --n-head --n-embd --block-size --dropout --tied-head --positional learned|sinusoidal",
            "             optimizer: --lr --min-lr --warmup-steps --beta1 --beta2 --weight-decay --grad-clip --batch-size",
            "             --dtype float32|float16|bfloat16 (precision of the matrix products; 16-bit on the CUDA backend)",
            "             spark: --workers --sync averaging|sharing --averaging-frequency (rounds of N steps)",
            "             sharing: --sharing-threshold auto (lr/workers) --controller-address IP --network-mask CIDR --sync-timeout S (120)",
            "             eval: --eval-interval --eval-batches --val-fraction",
            "             output: --samples --sample-tokens --seed --eval-sample-tokens (TensorBoard text at each eval)",
            "             --tensorboard URI|none (default <out>/tb)   --progress auto|bar|log",
            "             checkpoints: --checkpoint-interval N (steps) --checkpoint-minutes M --keep-last K (ckpt/step-N)",
            "  prepare    text to token shards on Spark: --input URI[,URI...] (files, folders, globs; .txt, .gz, .jsonl)",
            "             --out URI   --tokenizer char|bpe|gpt2:FOLDER|DIR (default bpe)   --vocab-size N (bpe, default 8192)",
            "             --val-fraction F (0.1)   --invalid-utf8 fail|replace|skip   --text-field NAME (jsonl)   --master URL   --overwrite",
            "  eval       --checkpoint DIR --data URI (text, or a dataset's val split) [--batch-size 8] [--max-tokens N] [--master URL]:",
            "             mean loss, perplexity, bits per byte",
            "  quantize   --checkpoint DIR --out DIR2 [--overwrite]: weight-only int8 (per output channel) for generate and eval",
            "  export     --checkpoint DIR --format hf --out DIR2 [--overwrite]: Hugging Face GPT2LMHeadModel folder",
            "  import     --from HF_DIR --out CKPT [--overwrite]: a GPT-2-format folder into our checkpoint",
            "  report     report.html + loss.png for a run (also written when training ends): --run DIR",
            "  tokenize   print token ids, one per line: --tokenizer DIR|tokenizer.json|gpt2:FOLDER --input FILE",
            "  distill    train a student on the teacher's soft targets: --teacher DIR [--distill-alpha 0.5]",
            "             [--distill-temperature 2.0] and every train flag (e.g. --preset tiny --data ...)",
            "  generate   --checkpoint DIR [--prompt TEXT] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]",
            "             [--repetition-penalty R] [--stop S1|S2] [--seed S] [--no-cache]   (\\n and \\t escapes in TEXT and S)",
            "  bench      one replica's training step, no Spark: --preset P [--steps N] [--warmup W] [--threads K] [--shards S] [--forward-only] [--profile]",
            "             or encoding speed of a tokenizer: --tokenizer DIR|gpt2:FOLDER [--input FILE]",
            "             or generation with and without the KV cache: --generate [--preset P | --checkpoint DIR] [--new-tokens 256]",
            "             or 1 vs 2 executor JVMs (local-cluster): --scaling [--preset baby] [--data FILE] [--steps 60]",
            "             [--averaging-frequency 10] [--sync averaging|sharing|both]",
            "             or long-run memory (scripts/soak.sh): --soak [--minutes 15] [--preset baby] [--sample-every 50] [--warmup-fraction 0.4]",
            "  help       this text");

}
