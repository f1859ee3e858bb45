package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;

import java.io.Closeable;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * A run's record of itself: metrics.jsonl (one JSON object per logged round, rewritten whole through a
 * temporary file) and, unless disabled, TensorBoard event files with the same numbers. Each metric field
 * maps to one scalar tag, so TensorBoard and metrics.jsonl cannot disagree.
 */
final class RunLog implements Closeable {
    private static final ObjectMapper JSON = new ObjectMapper();
    /** metrics.jsonl field -> TensorBoard tag. */
    static final Map<String, String> TAGS = Map.ofEntries(
            Map.entry("train_loss", "train/loss"),
            Map.entry("val_loss", "val/loss"),
            Map.entry("lr", "lr"),
            Map.entry("grad_norm", "grad_norm"),
            Map.entry("tokens_per_s", "tokens_per_s"),
            Map.entry("mfu", "mfu"),
            Map.entry("sync_ms", "spark/sync_ms"),
            Map.entry("task_ms_median", "spark/task_ms_median"),
            Map.entry("task_ms_max", "spark/task_ms_max"),
            Map.entry("straggler_count", "spark/stragglers"),
            Map.entry("failures", "spark/failures"));
    /** Per-executor step times: field {"executor id": ms} -> tag executor/ID/step_ms. */
    static final String EXECUTOR_STEP_MS = "executor_step_ms";

    private final FileSystem fs;
    private final Path run;
    private final List<String> lines;
    private final TensorBoardWriter tensorboard;

    /** On resume, the metrics logged up to the checkpoint's step are kept and any logged after it dropped. */
    RunLog(FileSystem fs, Path run, long resumedStep, String tensorboardUri, Configuration hadoop) throws IOException {
        this.fs = fs;
        this.run = run;
        this.lines = read(fs, run, resumedStep);
        this.tensorboard = tensorboardUri == null ? null : new TensorBoardWriter(tensorboardUri, hadoop);
    }

    String tensorboardFile() { return tensorboard == null ? null : tensorboard.file.toString(); }

    void record(ObjectNode m) throws IOException {
        lines.add(m.toString());
        if (tensorboard == null) return;
        long step = m.path("step").asLong();
        for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> f = it.next();
            String tag = TAGS.get(f.getKey());
            if (tag != null && f.getValue().isNumber()) tensorboard.scalar(tag, step, f.getValue().asDouble());
        }
        for (Iterator<Map.Entry<String, JsonNode>> it = m.path(EXECUTOR_STEP_MS).fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            tensorboard.scalar("executor/" + e.getKey() + "/step_ms", step, e.getValue().asDouble());
        }
    }

    void text(String tag, long step, String text) throws IOException {
        if (tensorboard != null) tensorboard.text(tag, step, text);
    }

    /** metrics.jsonl rewritten (temp + rename); TensorBoard's file flushed so a running TensorBoard sees it. */
    void flush() throws IOException {
        Path tmp = new Path(run, ".metrics.jsonl.tmp");
        try (FSDataOutputStream out = fs.create(tmp, true)) {
            out.write((String.join("\n", lines) + "\n").getBytes(StandardCharsets.UTF_8));
        }
        Path dst = new Path(run, "metrics.jsonl");
        fs.delete(dst, false);
        fs.rename(tmp, dst);
        if (tensorboard != null) tensorboard.flush();
    }

    @Override public void close() throws IOException {
        if (tensorboard != null) tensorboard.close();
    }

    private static List<String> read(FileSystem fs, Path run, long upToStep) throws IOException {
        List<String> lines = new ArrayList<>();
        Path p = new Path(run, "metrics.jsonl");
        if (upToStep == 0 || !fs.exists(p)) return lines;
        for (String line : HadoopFiles.readText(fs, p).split("\n")) {
            if (line.isBlank()) continue;
            if (JSON.readTree(line).path("step").asLong() <= upToStep) lines.add(line);
        }
        return lines;
    }
}
