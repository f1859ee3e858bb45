package org.sparkformer.driver;

import org.apache.spark.api.java.function.Function2;
import org.apache.spark.broadcast.Broadcast;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.sparkformer.worker.data.Windows;

import java.io.IOException;
import java.io.Serializable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.List;

/**
 * Runs on each executor: partition i of W owns the i-th contiguous slice of the training tokens and turns
 * it into {@code batches} minibatches of B (T+1)-token windows for one averaging round, in
 * {@link Windows#epochStarts epoch order}. Step s uses windows s·B .. s·B+B-1 of that order, so a resumed
 * run sees exactly the batches the uninterrupted run would have.
 */
final class WindowBatches implements Function2<Integer, Iterator<Integer>, Iterator<MultiDataSet>> {
    private static final long serialVersionUID = 1L;

    /** Where a partition's tokens come from: a broadcast array, or dataset shards read on the executor. */
    interface TokenSource extends Serializable {
        int[] tokens(int partition, int parts) throws IOException;

        /** The same tokens, as a span of an array that need not be a copy. */
        default Span span(int partition, int parts) throws IOException {
            int[] t = tokens(partition, parts);
            return new Span(t, 0, t.length);
        }
    }

    /** tokens[from .. from+length) of an array. */
    record Span(int[] tokens, int from, int length) {}

    /** Slice i of a broadcast token array. */
    record BroadcastSlice(Broadcast<int[]> all) implements TokenSource {
        @Override public int[] tokens(int partition, int parts) {
            Span s = span(partition, parts);
            return Arrays.copyOfRange(s.tokens(), s.from(), s.from() + s.length());
        }

        /** No copy: every round of training reads its windows straight from the broadcast array. */
        @Override public Span span(int partition, int parts) {
            int[] t = all.value();
            long[] r = slice(t.length, partition, parts);
            return new Span(t, (int) r[0], (int) (r[1] - r[0]));
        }
    }

    private final TokenSource source;
    private final int parts;
    private final long seed, step;
    private final int batches, batchSize, blockSize;
    private Teacher teacher;
    private org.apache.spark.util.CollectionAccumulator<String> devices;

    /** Each task binds its thread to the GPU Spark gave it and reports the decision here. */
    WindowBatches devices(org.apache.spark.util.CollectionAccumulator<String> sink) {
        this.devices = sink;
        return this;
    }

    /** Distillation: each minibatch also carries the teacher's logits. */
    WindowBatches teacher(Teacher t) {
        this.teacher = t;
        return this;
    }

    WindowBatches(TokenSource source, int parts, long seed, long step, int batches, int batchSize, int blockSize) {
        this.source = source;
        this.parts = parts;
        this.seed = seed;
        this.step = step;
        this.batches = batches;
        this.batchSize = batchSize;
        this.blockSize = blockSize;
    }

    /** [from, to) of slice i of n over a token stream of the given length. */
    static long[] slice(long length, int i, int n) {
        return new long[]{length * i / n, length * (i + 1) / n};
    }

    @Override
    public Iterator<MultiDataSet> call(Integer partition, Iterator<Integer> ignored) throws IOException {
        // the training task's thread, before DL4J's worker builds the replica: where its arrays will live
        GpuBinding.Decision device = GpuBinding.bind(partition);
        if (devices != null) devices.add(device.toString());
        Span span = source.span(partition, parts);
        if (span.length() < 2 * blockSize) return java.util.Collections.emptyIterator();
        int[] starts = Windows.epochStarts(span.length(), blockSize, seed, partition, step * batchSize, batches * batchSize);
        for (int i = 0; i < starts.length; i++) starts[i] += span.from();
        List<MultiDataSet> out = new ArrayList<>(batches);
        for (int b = 0; b < batches; b++) {
            MultiDataSet batch = Windows.batch(span.tokens(), Arrays.copyOfRange(starts, b * batchSize, (b + 1) * batchSize), blockSize);
            out.add(teacher == null ? batch : teacher.label(batch));
        }
        return out.iterator();
    }
}
