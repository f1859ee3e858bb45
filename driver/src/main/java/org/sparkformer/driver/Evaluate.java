package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.SerializableConfiguration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.data.Windows;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code sparkformer eval --checkpoint DIR --data URI}: mean cross-entropy, perplexity and bits per byte on
 * held-out text. The token stream (a text's tokens, or a prepared dataset's val shards) is cut into
 * non-overlapping (T+1)-token windows; every window's T next-token predictions are scored. Spark spreads
 * the windows: each partition rebuilds the model from broadcast weights, reads its slice of the tokens
 * (dataset shards straight from the file system) and returns (nats, tokens, bytes). Bytes are the UTF-8
 * bytes the scored tokens decode to, so bits per byte compares models with different tokenizers.
 */
final class Evaluate {
    record Result(double meanLoss, double perplexity, double bitsPerByte, long tokens, long bytes, double seconds) {}

    private Evaluate() {}

    static Result run(JavaSparkContext sc, String checkpoint, String data, int batchSize, long maxTokens) throws IOException {
        long t0 = System.nanoTime();
        Configuration hadoop = sc.hadoopConfiguration();
        Checkpoint.Loaded m = Checkpoint.load(checkpoint, hadoop, false);
        GptConfig model = m.model();
        Tokenizer tok = m.tokenizer();
        WindowBatches.TokenSource source;
        long total;
        if (TokenDataset.isDataset(data, hadoop)) {
            TokenDataset d = TokenDataset.open(data, hadoop);
            if (!d.tokenizer.toJson().equals(tok.toJson()))
                throw new UserError("--data " + data + ": prepared with another tokenizer than the checkpoint's");
            if (d.valTokens == 0) throw new UserError("--data " + data + ": has no validation tokens");
            source = new TokenDataset.ShardSlice(d.val, d.valTokens, sc.broadcast(new SerializableConfiguration(hadoop)));
            total = d.valTokens;
        } else {
            String text = Corpus.read(data, hadoop);
            int[] tokens;
            try {
                tokens = tok.encode(text);
            } catch (IllegalArgumentException e) {
                throw new UserError("--data " + data + ": " + e.getMessage());
            }
            source = new WindowBatches.BroadcastSlice(sc.broadcast(tokens));
            total = tokens.length;
        }
        if (maxTokens > 0) total = Math.min(total, maxTokens);
        int parts = Math.max(1, (int) Math.min(sc.defaultParallelism(), total / (model.blockSize + 1)));
        if (total < model.blockSize + 1) throw new UserError("--data " + data + ": fewer than " + (model.blockSize + 1) + " tokens to evaluate");
        Broadcast<float[]> params = sc.broadcast(m.graph().params().toFloatVector());
        long limit = total;
        List<Integer> ids = new ArrayList<>();
        for (int i = 0; i < parts; i++) ids.add(i);
        double[] sums = sc.parallelize(ids, parts).mapPartitionsWithIndex((partition, ignored) -> {
            int[] tokens = source.tokens(partition, parts);   // this partition's slice of the stream
            int end = (int) Math.min(tokens.length, (limit + parts - 1) / parts);
            return List.of(score(model, params.value(), tok, tokens, 0, end, batchSize)).iterator();
        }, true).reduce((a, b) -> new double[]{a[0] + b[0], a[1] + b[1], a[2] + b[2]});
        double mean = sums[0] / sums[1];
        return new Result(mean, Math.exp(mean), sums[0] / Math.log(2) / sums[2], (long) sums[1], (long) sums[2], (System.nanoTime() - t0) / 1e9);
    }

    /** Scoring tasks of one JVM share it; a collection takes it exclusively. */
    private static final java.util.concurrent.locks.ReentrantReadWriteLock SCORING = new java.util.concurrent.locks.ReentrantReadWriteLock();
    /** Activation bytes after which a scoring task collects garbage, freeing the off-heap arrays of its batches. */
    static final long GC_EVERY_BYTES = 2L << 30;

    /** Rough float32 bytes one forward pass allocates: per layer ~16 B·T·C (LayerNorms, QKV, MLP) and ~3 B·H·T² (scores, mask, softmax); the logits twice. */
    static long activationBytes(GptConfig m, int batchSize) {
        long bt = (long) batchSize * m.blockSize;
        return 4 * (bt * m.nLayer * (16L * m.nEmbd + 3L * m.nHead * m.blockSize) + 2 * bt * m.vocabSize);
    }

    /** (nats, tokens, bytes) over non-overlapping windows of tokens[from, to). */
    static double[] score(GptConfig model, float[] params, Tokenizer tok, int[] tokens, int from, int to, int batchSize) {
        ComputationGraph g = Gpt.build(model, new org.nd4j.linalg.learning.config.Sgd(0), 0, DataType.FLOAT,
                Nd4j.create(params, new long[]{1, params.length}, 'c'));
        int t = model.blockSize;
        List<Integer> starts = new ArrayList<>();
        for (int s = from; s + t + 1 <= to; s += t) starts.add(s);
        double nats = 0, bytes = 0;
        long scored = 0;
        long collectEvery = Math.max(1, GC_EVERY_BYTES / activationBytes(model, batchSize));
        for (int i = 0; i < starts.size(); i += batchSize) {
            int[] batch = starts.subList(i, Math.min(starts.size(), i + batchSize)).stream().mapToInt(Integer::intValue).toArray();
            MultiDataSet ds = Windows.batch(tokens, batch, t);
            SCORING.readLock().lock();
            try {
                nats += g.score(ds, false) * batch.length * t;   // the score is the mean over B·T predictions
            } finally {
                SCORING.readLock().unlock();
            }
            scored += (long) batch.length * t;
            for (int s : batch) bytes += tok.decode(java.util.Arrays.copyOfRange(tokens, s + 1, s + t + 1)).getBytes(StandardCharsets.UTF_8).length;
            // inference outside a training step allocates off-heap arrays that only a GC frees; with little heap
            // pressure none comes (measured: small preset, +1.6 GB per 10 s): collect after about GC_EVERY_BYTES of
            // activations (small preset: every 4 batches, resident ~5.5 GB; a tiny model: almost never, where every 4
            // batches spent 35 s of full GCs on 400 batches; collecting on resident growth instead let the small
            // preset reach 7.8-9.0 GB, since freed memory stays resident), and only while no other task of this JVM
            // is inside an ND4J op (a GC then crashed the JVM: ND4J can free a temporary's native buffer that a
            // running op still reads, SIGSEGV in DataBuffer::primary, EvalTest under C1)
            if (i / batchSize % collectEvery == collectEvery - 1) {
                SCORING.writeLock().lock();
                try {
                    System.gc();
                } finally {
                    SCORING.writeLock().unlock();
                }
            }
        }
        return new double[]{nats, scored, bytes};
    }
}
