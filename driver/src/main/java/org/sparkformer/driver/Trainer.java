package org.sparkformer.driver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.storage.StorageLevel;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.spark.api.RDDTrainingApproach;
import org.deeplearning4j.spark.api.Repartition;
import org.deeplearning4j.spark.impl.graph.SparkComputationGraph;
import org.deeplearning4j.spark.impl.paramavg.ParameterAveragingTrainingMaster;
import org.deeplearning4j.spark.api.TrainingMaster;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.sparkformer.worker.data.Windows;
import org.sparkformer.worker.generate.KvCache;
import org.sparkformer.worker.generate.Sampler;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.model.GlobalNormClipping;
import org.sparkformer.worker.model.LossScaler;
import org.sparkformer.worker.model.IterationSync;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.nd4j.Nd4jTuning;
import org.sparkformer.worker.tokenizer.CharTokenizer;
import org.sparkformer.worker.tokenizer.Tokenizer;
import org.apache.spark.util.SerializableConfiguration;
import org.apache.spark.util.DoubleAccumulator;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * The training job. The driver reads and tokenizes the text, splits train/val, partitions the train
 * tokens across the workers (partition i trains on the i-th slice), and runs rounds of {@code averaging-frequency} steps: each worker
 * draws its minibatches from its own partition and trains its replica; DL4J's ParameterAveragingTrainingMaster
 * averages parameters and Adam state after each round. Between rounds the driver evaluates on a fixed val
 * sample, logs, and checkpoints.
 */
public final class Trainer {
    private static final Logger log = LogManager.getLogger(Trainer.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    /** At most this many train / val tokens are read on the driver for its evaluation samples. */
    static final long EVAL_SAMPLE_TOKENS = 4L << 20;

    private final TrainConfig cfg;
    private final String resume;
    private final boolean overwrite;
    private long stopAfter = Long.MAX_VALUE;
    private Progress progress = new Progress.Log();

    public Trainer(TrainConfig cfg, String resume, boolean overwrite) {
        this.cfg = cfg;
        this.resume = resume;
        this.overwrite = overwrite;
    }

    /** Ends the run after this step (checkpoint written, no samples), as if the driver were killed there. */
    public Trainer stopAfter(long step) {
        this.stopAfter = step;
        return this;
    }

    /** Where per-round status goes (default: log lines). */
    public Trainer progress(Progress p) {
        this.progress = p;
        return this;
    }

    /**
     * 16-bit products need ND4J's CUDA backend: its CPU backend runs them in generic loops (measured here: 0.08 GFLOP/s
     * in float16, 0.3 in bfloat16, against ~40 in float32). -Dsparkformer.dtype.cpu=true allows it (tests: correct, slow).
     */
    static void checkDtypeBackend(String dtype) {
        if (dtype.equals("float32") || Boolean.getBoolean("sparkformer.dtype.cpu")) return;
        if (Nd4j.getBackend().getClass().getSimpleName().toLowerCase(Locale.ROOT).contains("cpu"))
            throw new UserError("--dtype " + dtype + ": ND4J's CPU backend has no 16-bit matrix products (0.08-0.3 GFLOP/s here, "
                    + "against ~40 in float32); use --dtype float32 on CPU, " + dtype + " with the CUDA backend (build with -Pcuda)");
    }

    /** Result of a run, for the CLI and tests. */
    public record Result(String runDir, long steps, double firstValLoss, double finalValLoss, List<String> samples) {}

    public Result run(JavaSparkContext sc) throws IOException {
        checkDtypeBackend(cfg.dtype);
        Configuration hadoop = sc.hadoopConfiguration();
        String runDir = resolveRunDir(hadoop);
        String dataUri = cfg.data.isEmpty() ? Corpus.defaultJdkSources() : cfg.data;
        cfg.data = dataUri;
        cfg.out = runDir;

        Checkpoint.Loaded teacherCkpt = cfg.teacher.isEmpty() ? null : Checkpoint.load(cfg.teacher, hadoop, false);
        Tokenizer tokenizer;
        int[] train, val;            // text: all tokens; dataset: the driver's evaluation samples only
        long trainTokens;
        WindowBatches.TokenSource source;
        int workers = cfg.workers > 0 ? cfg.workers : sc.defaultParallelism();
        Broadcast<int[]> broadcastTokens = null;
        if (TokenDataset.isDataset(dataUri, hadoop)) {
            TokenDataset data = TokenDataset.open(dataUri, hadoop);
            log.info("dataset {}: {} train / {} val tokens in {} + {} shards, {} tokenizer", data.root, data.trainTokens, data.valTokens,
                    data.train.size(), data.val.size(), data.tokenizer.kind());
            tokenizer = data.tokenizer;
            if (teacherCkpt != null && !teacherCkpt.tokenizer().toJson().equals(tokenizer.toJson()))
                throw new UserError("--teacher " + cfg.teacher + ": its tokenizer differs from the dataset's (a student learns the teacher's vocabulary)");
            if (resume != null && !Checkpoint.readTokenizer(resume, hadoop).toJson().equals(tokenizer.toJson()))
                throw new UserError("--resume: the checkpoint's tokenizer differs from the dataset's (" + data.root + " was prepared with another tokenizer)");
            if (data.valTokens < cfg.blockSize + 1)
                throw new UserError("--data " + dataUri + ": too few validation tokens (" + data.valTokens + ") for block size " + cfg.blockSize);
            train = TokenDataset.read(data.train, 0, Math.min(data.trainTokens, EVAL_SAMPLE_TOKENS), hadoop);
            val = TokenDataset.read(data.val, 0, Math.min(data.valTokens, EVAL_SAMPLE_TOKENS), hadoop);
            trainTokens = data.trainTokens;
            source = new TokenDataset.ShardSlice(data.train, data.trainTokens, sc.broadcast(new SerializableConfiguration(hadoop)));
        } else {
            log.info("reading {}", dataUri);
            String text = Corpus.read(dataUri, hadoop);
            if (resume != null || teacherCkpt != null) {
                tokenizer = resume != null ? Checkpoint.readTokenizer(resume, hadoop) : teacherCkpt.tokenizer();
                try {
                    tokenizer.encode(text);
                } catch (IllegalArgumentException e) {
                    throw new UserError((resume != null ? "--resume" : "--teacher") + ": the data's vocabulary differs from the checkpoint's ("
                            + e.getMessage() + ")");
                }
            } else {
                tokenizer = CharTokenizer.fromText(text);
            }
            int[] tokens = tokenizer.encode(text);
            int nVal = (int) (tokens.length * cfg.valFraction);
            train = Arrays.copyOfRange(tokens, 0, tokens.length - nVal);
            val = Arrays.copyOfRange(tokens, tokens.length - nVal, tokens.length);
            if (val.length < cfg.blockSize + 1)
                throw new UserError("--data " + dataUri + ": too short (" + tokens.length + " characters) for block size "
                        + cfg.blockSize + " with " + (int) (cfg.valFraction * 100) + "% held out for validation");
            trainTokens = train.length;
            broadcastTokens = sc.broadcast(train);
            source = new WindowBatches.BroadcastSlice(broadcastTokens);
        }
        if (trainTokens < workers * 2L * cfg.blockSize)
            throw new UserError("--data " + dataUri + ": too short (" + trainTokens + " training tokens) for block size "
                    + cfg.blockSize + " on " + workers + " workers (each needs " + 2 * cfg.blockSize + ")");
        if (cfg.epochs > 0)
            cfg.steps = (int) Math.max(1, Math.ceil(cfg.epochs * trainTokens / ((double) cfg.batchSize * cfg.blockSize * workers)));

        // the schedule follows this run's settings (e.g. a longer --steps); weights and Adam state come from the checkpoint
        Checkpoint.Loaded loaded = resume == null ? null : Checkpoint.load(resume, hadoop, true, cfg);
        GptConfig model = loaded != null ? loaded.model() : cfg.model(tokenizer.vocabSize()).validate();
        if (loaded != null) checkSameShape(loaded.model(), cfg.model(tokenizer.vocabSize()));
        ComputationGraph graph = loaded != null ? loaded.graph()
                : Gpt.build(model, Optimizer.updater(cfg), cfg.weightDecay, DataType.FLOAT);
        model.dtype = cfg.dtype;
        Gpt.computeIn(graph, cfg.dtype);   // also on resume: the checkpoint holds float32 weights whatever a run computed in
        Checkpoint.State state = loaded != null ? loaded.state() : new Checkpoint.State();
        log.info("{}: {} parameters, vocab {}, {} train / {} val tokens, {} workers x batch {}, {} steps",
                model, String.format(Locale.ROOT, "%,d", graph.numParams()), tokenizer.vocabSize(), trainTokens, val.length,
                workers, cfg.batchSize, cfg.steps);

        TrainingMaster<?, ?> master;
        GradientSharing sharing = null;
        if (cfg.sync.equals("sharing")) {
            sharing = GradientSharing.start(sc, cfg, workers, graph.params());
            master = sharing.master();
        } else {
            master = new ParameterAveragingTrainingMaster.Builder(workers, cfg.batchSize)
                    .batchSizePerWorker(cfg.batchSize)
                    .averagingFrequency(cfg.averagingFrequency)
                    .workerPrefetchNumBatches(0)
                    .rddTrainingApproach(RDDTrainingApproach.Direct)
                    .repartionData(Repartition.NumPartitionsWorkersDiffers)
                    .storageLevel(StorageLevel.MEMORY_ONLY())
                    .saveUpdater(true)
                    .build();
        }
        SparkComputationGraph spark = new SparkComputationGraph(sc, graph, master);
        List<Integer> partitionIds = new ArrayList<>();
        for (int i = 0; i < workers; i++) partitionIds.add(i);
        JavaRDD<Integer> partitions = sc.parallelize(partitionIds, workers);
        List<MultiDataSet> valBatches = evalBatches(val);
        Teacher teacher = null;
        if (teacherCkpt != null) {
            if (teacherCkpt.model().blockSize < model.blockSize)
                throw new UserError("--teacher " + cfg.teacher + ": its block size " + teacherCkpt.model().blockSize + " is below the student's " + model.blockSize);
            if (teacherCkpt.model().vocabSize != model.vocabSize)
                throw new UserError("--teacher " + cfg.teacher + ": vocabulary " + teacherCkpt.model().vocabSize + " differs from the student's " + model.vocabSize);
            teacher = new Teacher(teacherCkpt.model(), sc.broadcast(teacherCkpt.graph().params().toFloatVector()));
            log.info("distilling from {} ({} parameters): alpha {}, temperature {}", cfg.teacher,
                    String.format(Locale.ROOT, "%,d", teacherCkpt.graph().numParams()), cfg.distillAlpha, cfg.distillTemperature);
        }

        Path run = new Path(runDir);
        FileSystem fs = run.getFileSystem(hadoop);
        try {   // a location we cannot write to is found now, not at the first checkpoint
            fs.mkdirs(run);
            Path probe = new Path(run, ".write-probe");
            fs.create(probe, true).close();
            fs.delete(probe, false);
        } catch (IOException | RuntimeException e) {
            throw new UserError("--out " + runDir + ": cannot write there (" + String.valueOf(e.getMessage()).lines().findFirst().orElse(e.toString()) + ")");
        }
        String tb = cfg.tensorboard.equals("none") ? null : cfg.tensorboard.isEmpty() ? runDir + "/tb" : cfg.tensorboard;
        // MFU against a GEMM measured here, with the threads one replica has (the launcher gives each the same)
        double gemmGflops = Bench.gemmGflops(Bench.envThreads());
        double flopsPerToken = model.trainingFlopsPerToken();
        TaskTimes taskTimes = new TaskTimes();
        sc.sc().addSparkListener(taskTimes);
        DoubleAccumulator gradNorms = sc.sc().doubleAccumulator("grad_norm");
        org.apache.spark.util.CollectionAccumulator<String> deviceLog = sc.sc().collectionAccumulator("devices");
        java.util.Set<String> devicesSeen = new java.util.TreeSet<>();
        GlobalNormClipping.NormSink normSink = gradNorms::add;
        double firstVal = Double.NaN, lastVal = Double.NaN;
        long startNanos = System.nanoTime();
        double elapsedBefore = state.elapsedSeconds;
        long stepsAtStart = state.step;

        long lastCheckpoint = System.nanoTime();
        try (RunLog runLog = new RunLog(fs, run, state.step, tb, hadoop)) {
            if (tb != null) progress.event("TensorBoard events: " + runLog.tensorboardFile());
            if (state.step == 0) {
                // before any update there is no training minibatch loss: measure the same fixed sample on train data
                double trainLoss = evaluate(graph, evalBatches(train));
                firstVal = lastVal = evaluate(graph, valBatches);
                ObjectNode m = metric(state, trainLoss, lastVal);
                runLog.record(m);
                evalSample(runLog, graph, model, tokenizer, state.step);
                runLog.flush();
                progress.event("step 0/" + cfg.steps + " | loss " + fmt(trainLoss) + " | val " + fmt(lastVal));
            }
            while (state.step < cfg.steps && state.step < stopAfter) {
                long nextEval = (state.step / cfg.evalInterval + 1) * cfg.evalInterval;
                long nextCkpt = cfg.checkpointInterval > 0 ? (state.step / cfg.checkpointInterval + 1) * cfg.checkpointInterval : Long.MAX_VALUE;
                int k = (int) Math.min(cfg.averagingFrequency, Math.min(Math.min(cfg.steps, nextEval), nextCkpt) - state.step);
                long t0 = System.nanoTime(), roundStartMs = System.currentTimeMillis();
                graph.getConfiguration().setIterationCount((int) state.step);
                gradNorms.reset();
                List<org.deeplearning4j.optimize.api.TrainingListener> listeners = new ArrayList<>(List.of(new IterationSync(state.step)));
                if (cfg.dtype.equals("float16")) listeners.add(new LossScaler());   // unscales before clipping measures
                listeners.add(new GlobalNormClipping(cfg.gradClip, normSink));
                master.setListeners(listeners);
                JavaRDD<MultiDataSet> round = partitions.mapPartitionsWithIndex(
                        new WindowBatches(source, workers, cfg.seed, state.step, k, cfg.batchSize, cfg.blockSize).teacher(teacher)
                                .devices(deviceLog), true);
                if (sharing != null) sharing.round(() -> spark.fitMultiDataSet(round));
                else spark.fitMultiDataSet(round);
                round.unpersist(false);
                // DL4J's gradient sharing reports no training loss (its replicas' score stays 0): NaN = not measured
                double loss = sharing != null && spark.getScore() == 0 ? Double.NaN : spark.getScore();
                if (sharing == null) checkFinite(loss, state.step + k);
                state.step += k;
                state.tokens += (long) k * cfg.batchSize * cfg.blockSize * workers;
                double seconds = (System.nanoTime() - t0) / 1e9;
                double tokensPerSecond = (double) k * cfg.batchSize * cfg.blockSize * workers / seconds;
                state.elapsedSeconds = elapsedBefore + (System.nanoTime() - startNanos) / 1e9;
                TaskTimes.Round tasks = taskTimes.round(roundStartMs, (long) (seconds * 1000), k, workers);
                List<TaskTimes.Loss> lost = taskTimes.drainLosses();
                if (!lost.isEmpty()) {
                    long lostMs = lost.stream().mapToLong(TaskTimes.Loss::taskMs).sum();
                    progress.event(String.format(Locale.ROOT, "steps %d-%d: %d failure(s) (%s); Spark re-ran the lost work on the "
                                    + "remaining executors (%.1f task-seconds lost); training continues from the same parameters",
                            state.step - k + 1, state.step, lost.size(), lost.get(0).what(), lostMs / 1000.0));
                }
                for (TaskTimes.Straggler st : tasks.stragglers())
                    log.warn("straggler at step {}: executor {} partition {} took {} ms, stage median {} ms", state.step,
                            st.executor(), st.partition(), st.ms(), st.medianMs());

                ObjectNode m = metric(state, loss, Double.NaN);
                m.put("tokens_per_s", tokensPerSecond);
                m.put("mfu", tokensPerSecond * flopsPerToken / (workers * gemmGflops * 1e9));
                if (gradNorms.count() > 0) m.put("grad_norm", gradNorms.avg());
                m.put("task_ms_median", tasks.medianMs());
                m.put("task_ms_max", tasks.maxMs());
                m.put("sync_ms", tasks.syncMs());
                ObjectNode perExecutor = m.putObject(RunLog.EXECUTOR_STEP_MS);
                tasks.executorStepMs().forEach(perExecutor::put);
                m.put("straggler_count", tasks.stragglers().size());
                if (sharing != null) {
                    m.put("mesh_executors", sharing.meshExecutors());
                    m.put("driver_updates", sharing.updatesThisRound());
                }
                // where each replica runs (GPU binding), logged when it changes
                java.util.Set<String> devices = new java.util.TreeSet<>(deviceLog.value());
                deviceLog.reset();
                if (!devices.isEmpty() && !devices.equals(devicesSeen)) {
                    devices.forEach(d -> log.info("device binding: {}", d));
                    m.set("devices", JSON.valueToTree(devices));
                    devicesSeen = devices;
                }
                if (!lost.isEmpty()) {
                    m.put("failures", lost.size());
                    m.put("lost_task_ms", lost.stream().mapToLong(TaskTimes.Loss::taskMs).sum());
                    m.set("failure_details", JSON.valueToTree(lost));
                }
                if (!tasks.stragglers().isEmpty()) m.set("stragglers", JSON.valueToTree(tasks.stragglers()));

                double eta = (state.elapsedSeconds - elapsedBefore) / (state.step - stepsAtStart) * (cfg.steps - state.step);
                progress.round(new Progress.Status(state.step, cfg.steps, loss, Optimizer.lrAt(cfg, state.step - 1), tokensPerSecond,
                        state.elapsedSeconds, eta));
                boolean evalNow = state.step % cfg.evalInterval == 0 || state.step == cfg.steps;
                if (evalNow) {
                    double valLoss = lastVal = evaluate(graph, valBatches);
                    checkFinite(valLoss, state.step);
                    if (Double.isNaN(firstVal)) firstVal = valLoss;
                    m.put("val_loss", valLoss);
                    progress.event("step " + state.step + "/" + cfg.steps + " | loss " + fmt(loss) + " | val " + fmt(valLoss)
                            + " | elapsed " + duration(state.elapsedSeconds));
                }
                runLog.record(m);
                if (evalNow) {
                    evalSample(runLog, graph, model, tokenizer, state.step);
                    runLog.flush();
                    if (m.get("val_loss").asDouble() < state.bestValLoss) {
                        state.bestValLoss = m.get("val_loss").asDouble();
                        Checkpoint.save(runDir + "/ckpt/best", hadoop, cfg, model, tokenizer, graph, state);
                    }
                } else {
                    runLog.flush();
                }
                boolean ckptNow = evalNow || (cfg.checkpointInterval > 0 && state.step % cfg.checkpointInterval == 0)
                        || (cfg.checkpointMinutes > 0 && (System.nanoTime() - lastCheckpoint) / 60e9 >= cfg.checkpointMinutes);
                if (ckptNow) {
                    saveLast(runDir, hadoop, model, tokenizer, graph, state);
                    lastCheckpoint = System.nanoTime();
                }
            }
        } finally {
            if (sharing != null) sharing.close();
            sc.sc().removeSparkListener(taskTimes);
            progress.close();
        }
        if (broadcastTokens != null) broadcastTokens.destroy();
        if (state.step < cfg.steps) return new Result(runDir, state.step, firstVal, lastVal, List.of());

        List<String> samples = sample(graph, model, tokenizer);
        if (!samples.isEmpty()) {
            StringBuilder all = new StringBuilder();
            for (int i = 0; i < samples.size(); i++) all.append("--- sample ").append(i + 1).append(" ---\n").append(samples.get(i)).append("\n");
            try (FSDataOutputStream out = fs.create(new Path(run, "samples.txt"), true)) {
                out.write(all.toString().getBytes(StandardCharsets.UTF_8));
            }
        }
        try {
            log.info("report: {}", Report.write(runDir, hadoop));
        } catch (IOException | RuntimeException e) {
            log.warn("could not write the run report ({}); the run itself is complete", e.toString());
        }
        return new Result(runDir, state.step, firstVal, lastVal, samples);
    }

    /** ckpt/last, and with keep-last K > 1 also ckpt/step-N, of which only the K newest stay. */
    private void saveLast(String runDir, Configuration hadoop, GptConfig model, Tokenizer tokenizer, ComputationGraph graph,
                          Checkpoint.State state) throws IOException {
        Checkpoint.save(runDir + "/ckpt/last", hadoop, cfg, model, tokenizer, graph, state);
        if (cfg.keepLast <= 1) return;
        Checkpoint.save(runDir + String.format(Locale.ROOT, "/ckpt/step-%08d", state.step), hadoop, cfg, model, tokenizer, graph, state);
        Path ckpt = new Path(runDir, "ckpt");
        FileSystem fs = ckpt.getFileSystem(hadoop);
        List<Path> steps = new ArrayList<>();
        for (var st : fs.listStatus(ckpt)) if (st.isDirectory() && st.getPath().getName().matches("step-\\d{8}")) steps.add(st.getPath());
        steps.sort(java.util.Comparator.comparing(Path::getName));
        for (int i = 0; i < steps.size() - cfg.keepLast; i++) fs.delete(steps.get(i), true);
    }

    private String resolveRunDir(Configuration hadoop) throws IOException {
        String out = cfg.out;
        if (out.isEmpty() && resume != null) {
            Path ckpt = new Path(Checkpoint.resolve(resume, hadoop));
            out = ckpt.getParent().getParent().toString();   // <run>/ckpt/last
        }
        if (out.isEmpty()) out = "runs/" + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss"));
        Path p = new Path(out);
        FileSystem fs = p.getFileSystem(hadoop);
        if (resume == null && !overwrite && fs.exists(p) && fs.listStatus(p).length > 0)
            throw new UserError("--out " + out + " already holds a run: pass --resume " + out + " to continue it or --overwrite to replace it");
        return fs.makeQualified(p).toString();
    }

    private static void checkSameShape(GptConfig saved, GptConfig asked) {
        if (asked.blockSize > saved.blockSize)
            throw new UserError("--block-size " + asked.blockSize + " is above the checkpoint's maximum " + saved.blockSize
                    + " (its position table has " + saved.blockSize + " rows)");
        if (saved.nLayer != asked.nLayer || saved.nHead != asked.nHead || saved.nEmbd != asked.nEmbd
                || saved.blockSize != asked.blockSize || saved.tiedHead != asked.tiedHead || saved.positional != asked.positional)
            throw new UserError("--resume: the checkpoint's model " + saved + " differs from the one asked for " + asked);
    }

    /** A fixed evaluation sample: eval-batches minibatches of windows evenly spread over the tokens. */
    private List<MultiDataSet> evalBatches(int[] tokens) {
        int[] starts = Windows.evenStarts(tokens.length, cfg.blockSize, cfg.evalBatches * cfg.batchSize);
        List<MultiDataSet> out = new ArrayList<>();
        for (int b = 0; b < cfg.evalBatches; b++)
            out.add(Windows.batch(tokens, Arrays.copyOfRange(starts, b * cfg.batchSize, (b + 1) * cfg.batchSize), cfg.blockSize));
        return out;
    }

    /** Mean cross-entropy over the fixed validation sample, in inference mode. */
    static double evaluate(ComputationGraph graph, List<MultiDataSet> batches) {
        double sum = 0;
        for (MultiDataSet b : batches) sum += graph.score(b, false);
        return sum / batches.size();
    }

    private List<String> sample(ComputationGraph graph, GptConfig model, Tokenizer tokenizer) {
        List<String> out = new ArrayList<>();
        if (cfg.samples == 0 || cfg.sampleTokens == 0) return out;
        int[] prompt = prompt(tokenizer);
        Sampler sampler = new Sampler(new KvCache(graph, model));
        for (int i = 0; i < cfg.samples; i++)
            out.add(tokenizer.decode(sampler.generate(prompt, cfg.sampleTokens, Sampler.Settings.of(0.8, 0, cfg.seed + i), null)));
        return out;
    }

    /** The fields every metrics line has; a round adds throughput, gradient norm and Spark task times. */
    private ObjectNode metric(Checkpoint.State s, double loss, double val) {
        ObjectNode m = JSON.createObjectNode();
        m.put("step", s.step);
        m.put("tokens", s.tokens);
        if (Double.isFinite(loss)) m.put("train_loss", loss);
        if (Double.isFinite(val)) m.put("val_loss", val);
        m.put("lr", Optimizer.lrAt(cfg, Math.max(0, s.step - 1)));
        m.put("elapsed_s", s.elapsedSeconds);
        return m;
    }

    /** A short greedy-free sample at an evaluation, as TensorBoard text (eval-sample-tokens, 0 = none). */
    private void evalSample(RunLog runLog, ComputationGraph graph, GptConfig model, Tokenizer tokenizer, long step) throws IOException {
        if (cfg.evalSampleTokens == 0) return;
        int[] prompt = prompt(tokenizer);
        String text = tokenizer.decode(new Sampler(new KvCache(graph, model)).generate(prompt, cfg.evalSampleTokens,
                Sampler.Settings.of(0.8, 0, cfg.seed), null));
        runLog.text("samples", step, text);
    }

    private static int[] prompt(Tokenizer tokenizer) {
        try {
            return tokenizer.encode("\n");
        } catch (IllegalArgumentException e) {
            return new int[]{0};
        }
    }

    private void checkFinite(double loss, long step) {
        if (!Double.isFinite(loss))
            throw new UserError("training diverged: loss is " + loss + " at step " + step
                    + "; the last good checkpoint is kept; try a lower --lr (now " + cfg.lr + ")");
    }

    static String fmt(double v) { return Double.isNaN(v) ? "n/a" : String.format(Locale.ROOT, "%.4f", v); }

    static String duration(double seconds) {
        if (!Double.isFinite(seconds)) return "?";
        long s = Math.round(seconds);
        return s >= 3600 ? String.format("%dh%02dm", s / 3600, s / 60 % 60) : String.format("%dm%02ds", s / 60, s % 60);
    }

    /** The --add-opens Spark and ND4J need on Java 17 (the launcher passes the same to the driver), and Aeron's timeout for --sync sharing. */
    static final String JAVA17_FLAGS = String.join(" ",
            java.util.stream.Stream.of("java.lang", "java.lang.invoke", "java.lang.reflect", "java.io", "java.net", "java.nio", "java.util",
                    "java.util.concurrent", "java.util.concurrent.atomic", "jdk.internal.ref", "sun.nio.ch", "sun.nio.cs",
                    "sun.security.action", "sun.util.calendar").map(p -> "--add-opens=java.base/" + p + "=ALL-UNNAMED").toList())
            + " -Djdk.reflect.useDirectMethodHandle=false " + GradientSharing.AERON_FLAG;

    /** The jar (or classes folder) this class was loaded from. */
    static String ownJar() {
        try {
            return java.nio.file.Path.of(Trainer.class.getProtectionDomain().getCodeSource().getLocation().toURI()).toString();
        } catch (java.net.URISyntaxException e) {
            throw new IllegalStateException(e);
        }
    }

    /** A Spark configuration for our job; the master comes from spark-submit when set, else from --master. */
    public static SparkConf sparkConf(String master) {
        SparkConf conf = new SparkConf().setAppName("sparkformer");
        if (!conf.contains("spark.master")) conf.setMaster(master);
        conf.setIfMissing("spark.ui.enabled", "false");
        // executors in their own JVMs (cluster modes) get the OpenMP and OpenBLAS thread settings the launcher gives us
        conf.setIfMissing("spark.executorEnv.OMP_WAIT_POLICY", "PASSIVE");
        conf.setIfMissing("spark.executorEnv.OPENBLAS_THREAD_TIMEOUT", "22");
        // executors in their own JVMs need what the driver's JVM needs on Java 17 (Spark's reflection into java.base)
        conf.setIfMissing("spark.executor.extraJavaOptions", JAVA17_FLAGS);
        // and ND4J's caching classes the driver has (CPU builds), unless the options name their own
        String tuning = Nd4jTuning.javaOptions(conf.get("spark.executor.extraJavaOptions"));
        if (!tuning.isEmpty()) conf.set("spark.executor.extraJavaOptions", conf.get("spark.executor.extraJavaOptions") + " " + tuning);
        // Kryo, with ND4J's registrator so INDArrays (DL4J's averaging results) serialise by their buffers
        conf.setIfMissing("spark.serializer", "org.apache.spark.serializer.KryoSerializer");
        conf.setIfMissing("spark.kryo.registrator", "org.nd4j.kryo.Nd4jRegistrator");
        // off-heap ND4J memory counted in each executor's container, and JavaCPP's limits to match
        if (!conf.get("spark.master").matches("local\\[.*\\]")) ExecutorMemory.apply(conf);
        // a cluster master without spark-submit (the launcher's client mode): ship this jar to the executors
        if (!conf.get("spark.master").startsWith("local") && !conf.contains("spark.jars") && ownJar().endsWith(".jar"))
            conf.set("spark.jars", ownJar());
        if (conf.get("spark.master").startsWith("local-cluster")) {
            // local-cluster executors are JVMs on this machine started from SPARK_HOME/jars, which holds our
            // dependencies but not this jar: give them the same file (spark-submit ships the app jar on clusters)
            conf.setIfMissing("spark.executor.extraClassPath", ownJar());
        }
        if (conf.get("spark.master").startsWith("local")) {
            // an embedded driver listens on loopback only; on a cluster Spark's own address choice stands
            conf.setIfMissing("spark.driver.host", "127.0.0.1");
            conf.setIfMissing("spark.driver.bindAddress", "127.0.0.1");
        }
        return conf;
    }
}
