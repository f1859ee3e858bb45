package org.sparkformer.worker.model;

import org.nd4j.linalg.api.memory.MemoryWorkspace;
import org.nd4j.linalg.api.memory.conf.WorkspaceConfiguration;
import org.nd4j.linalg.api.memory.enums.AllocationPolicy;
import org.nd4j.linalg.api.memory.enums.LearningPolicy;
import org.nd4j.linalg.api.memory.enums.ResetPolicy;
import org.nd4j.linalg.api.memory.enums.SpillPolicy;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.shape.Shape;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentSkipListMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.FutureTask;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.function.BiConsumer;
import java.util.function.IntConsumer;
import java.util.function.ToDoubleFunction;

/**
 * Data parallelism inside one replica. With K shards, each layer splits a training batch into K runs of whole
 * sequences, computes them at once on K threads (the caller and K-1 helpers), every native op on one core, and
 * sums the shards' parameter gradients: the same gradient as the whole batch, summed in a different order.
 * Why: on 2 cores, splitting every ND4J op over two OpenMP threads and every product over two OpenBLAS threads
 * costs a hand-over per op (hundreds per step, each a futex wake-up or a sched_yield spin); with shards a helper
 * is handed its rows of every layer of a pass at once (GptLayer's chain; docs/PERFORMANCE.md has the numbers).
 * Between passes the helpers also take their share of the optimizer's step ({@link #split}). Nothing waits for
 * the helpers until the head's score (or a layer's clear) calls {@link #awaitPending}: each helper runs its shard of
 * every layer's forward and backward in order, and the gradient merges wait for them there.
 *
 * <p>A helper computes in workspaces of its own, one per layer shard, opened by the forward pass and closed by the
 * backward pass (a chain: the last opened is the first closed), and one for the temporaries of every backward, so
 * steady-state steps allocate nothing new.
 * Evaluation and generation (not training) are never sharded.
 */
public final class Shards {
    private static volatile int count = fromEnvironment();

    private Shards() {}

    /** Shards per training batch in this JVM (1: none). */
    public static int count() { return count; }

    /**
     * Trains with {@code k} shards from now on; with more than one, ND4J's ops and OpenBLAS's products run on one
     * thread each (the shards are the parallelism).
     */
    public static synchronized void use(int k) {
        if (k < 1) throw new IllegalArgumentException("shards must be >= 1, got " + k);
        if (k > 1 && count == 1) oneNativeThread();
        if (k == 1 && count > 1 && savedThreads != null) {    // back to whole batches: the native threads they had
            Nd4j.getEnvironment().setMaxThreads(savedThreads[0]);
            Nd4j.getEnvironment().setMaxMasterThreads(savedThreads[1]);
            Nd4j.factory().blas().setMaxThreads(savedThreads[2]);
        }
        count = k;
    }

    private static int[] savedThreads;

    /** SPARKFORMER_SHARDS, as executors receive it through spark.executorEnv. */
    private static int fromEnvironment() {
        String v = System.getenv("SPARKFORMER_SHARDS");
        if (v == null || v.isBlank()) return 1;
        int k;
        try {
            k = Integer.parseInt(v.trim());
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("SPARKFORMER_SHARDS: expected a whole number, got '" + v + "'");
        }
        if (k < 1) throw new IllegalArgumentException("SPARKFORMER_SHARDS: must be >= 1, got " + k);
        if (k > 1) oneNativeThread();
        return k;
    }

    private static void oneNativeThread() {
        savedThreads = new int[]{Nd4j.getEnvironment().maxThreads(), Nd4j.getEnvironment().maxMasterThreads(),
                Nd4j.factory().blas().getMaxThreads()};
        Nd4j.getEnvironment().setMaxThreads(1);
        Nd4j.getEnvironment().setMaxMasterThreads(1);
        Nd4j.factory().blas().setMaxThreads(1);
    }

    /** First-axis bounds of k near-equal shards of n rows: shard i is [b[i], b[i+1]). */
    static long[] bounds(long n, int k) {
        long[] b = new long[k + 1];
        for (int i = 0; i <= k; i++) b[i] = n * i / k;
        return b;
    }

    /**
     * Hands task(i) to helper i, for i in 1..k-1, behind what they were given before, without waiting: a pass whose
     * helper rows only the same helper reads next (its tasks run in order). The next {@link #awaitPending} waits for
     * them and rethrows the first failure.
     */
    static void queue(int k, IntConsumer task) {
        ThreadPoolExecutor[] helpers = HELPERS.get();
        List<Future<?>> pending = PENDING.get();
        AtomicBoolean failed = FAILED.get();
        Crew crew = CREW.get();
        for (int i = 1; i < k; i++) {
            final int shard = i;
            pending.add(helper(helpers, i).submit(() -> {
                if (failed.get()) {     // a helper's task failed: the rows this one would read are not there
                    crew.finished(false);
                    return;
                }
                SERVING.set(crew);
                try {
                    task.accept(shard);
                } catch (RuntimeException | Error e) {
                    failed.set(true);
                    throw e;
                } finally {
                    SERVING.remove();
                    crew.finished(true);
                }
            }));
        }
    }

    /** Runs the calling thread's shard of a pass; if it fails, waits for the helpers (dropping the merges) and rethrows. */
    static void here(Runnable shard0) {
        try {
            shard0.run();
        } catch (RuntimeException | Error e) {
            AFTER.get().clear();     // a failed pass's gradients are not merged: wait for the helpers only
            try {
                awaitPending();
            } catch (RuntimeException | Error helperFailure) {
                e.addSuppressed(helperFailure);
            }
            throw e;
        }
    }

    /** Tasks handed to the calling thread's helpers since the last {@link #awaitPending}, done or not. */
    static int handedOver() {
        return PENDING.get().size();
    }

    /**
     * Runs {@code action} on the calling thread once its helpers have finished what they were given (the next
     * {@link #awaitPending}): a backward pass's gradient merge, which needs the helpers' gradients.
     */
    static void whenDone(Runnable action) {
        AFTER.get().add(action);
    }

    /**
     * Waits for the calling thread's helpers to finish what they were given, then runs what {@link #whenDone} left, in
     * order; rethrows the first failure (and then drops what was left).
     */
    static void awaitPending() {
        List<Future<?>> pending = PENDING.get();
        List<Runnable> after = AFTER.get();
        if (pending.isEmpty() && after.isEmpty()) return;
        if (!pending.isEmpty()) assistWhileWaiting(CREW.get(), pending.size());
        Throwable failure = awaitAll(pending, null);
        pending.clear();
        CREW.get().done.set(0);
        FAILED.get().set(false);
        try {
            rethrow(failure);
            for (Runnable a : after) a.run();
        } finally {
            after.clear();
        }
    }

    /** Waits for every one of {@code futures}; returns {@code failure} if not null, else the first task's failure (or null). */
    private static Throwable awaitAll(List<Future<?>> futures, Throwable failure) {
        for (Future<?> f : futures) {
            try {
                f.get();
            } catch (ExecutionException e) {
                if (failure == null) failure = e.getCause();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                if (failure == null) failure = e;
            }
        }
        return failure;
    }

    private static void rethrow(Throwable failure) {
        if (failure instanceof RuntimeException r) throw r;
        if (failure instanceof Error e) throw e;
        if (failure != null) throw new IllegalStateException("shard failed", failure);
    }

    /*
     * ---- assists: the threads rarely end a pass together (the machine slows its cores independently: a step of tiny
     * left one of them idle 13% of the time, small's 7%; docs/PERFORMANCE.md), so the one whose shard is done takes
     * weight-gradient products off the other: a product is the last use of its operands in a layer's backward and
     * writes only a gradient ----
     */

    /** What a calling thread and its helpers share. */
    private static final class Crew {
        /** The caller is waiting for its helpers: they offer it their products. */
        volatile boolean callerWaiting;
        final LinkedBlockingQueue<FutureTask<?>> offers = new LinkedBlockingQueue<>();
        /** Helper tasks of this pass that have ended. */
        final AtomicLong done = new AtomicLong();

        void finished(boolean wake) {
            done.incrementAndGet();
            if (wake && callerWaiting) offers.offer(WAKE);
        }
    }

    private static final FutureTask<?> WAKE = new FutureTask<>(() -> {}, null);
    /** On a calling thread: its crew. */
    private static final ThreadLocal<Crew> CREW = ThreadLocal.withInitial(Crew::new);
    /** On a helper while it runs a pass's task: its caller's crew. */
    private static final ThreadLocal<Crew> SERVING = new ThreadLocal<>();
    /** On any thread: products it handed to another thread in the layer backward now running. */
    private static final ThreadLocal<List<Future<?>>> HANDED = ThreadLocal.withInitial(ArrayList::new);
    /** Whether threads hand products over (-Dsparkformer.shardAssists=false: never, for A/B comparisons in one process). */
    private static boolean assists() { return !"false".equals(System.getProperty("sparkformer.shardAssists")); }
    /** Tests: the caller hands every product to a helper, idle or not (it runs after the helper's tasks). */
    static volatile boolean handAlways;
    private static final AtomicLong HANDED_OVER = new AtomicLong();

    /** Products run by a thread other than the one whose backward computed them, in this JVM so far. */
    static long productsHandedOver() { return HANDED_OVER.get(); }

    /** On a calling thread: whether every task of its pass so far has ended on the helpers. */
    static boolean helpersIdle() {
        List<Future<?>> pending = PENDING.get();
        return !pending.isEmpty() && CREW.get().done.get() == pending.size();
    }

    /**
     * Runs a weight-gradient product of a layer's backward here, or hands it to a thread of the same replica that has
     * finished its share of the pass: a helper hands it to its caller while the caller waits for the helpers, the caller
     * to a helper whose tasks are all done. The layer's backward ends with {@link #awaitHanded}.
     */
    static void assistable(Runnable product) {
        if (assists() && count > 1) {
            Crew serving = SERVING.get();
            if (serving != null) {
                if (serving.callerWaiting) {
                    Thread self = Thread.currentThread();
                    FutureTask<?> t = new FutureTask<>(() -> {
                        if (Thread.currentThread() != self) HANDED_OVER.incrementAndGet();
                        product.run();
                    }, null);
                    HANDED.get().add(t);
                    serving.offers.offer(t);
                    return;
                }
            } else if (helpersIdle() || handAlways && !PENDING.get().isEmpty()) {
                HANDED.get().add(helper(HELPERS.get(), 1 + HANDED.get().size() % (count - 1)).submit(() -> {
                    HANDED_OVER.incrementAndGet();
                    product.run();
                }));
                return;
            }
        }
        product.run();
    }

    /** Waits for the products this thread handed over (runs one itself if nobody took it yet); rethrows a failure. */
    static void awaitHanded() {
        List<Future<?>> handed = HANDED.get();
        if (handed.isEmpty()) return;
        Crew serving = SERVING.get();
        Throwable failure = null;
        for (Future<?> f : handed) {
            if (serving != null && f instanceof FutureTask<?> t && serving.offers.remove(t)) t.run();
            failure = awaitAll(List.of(f), failure);
        }
        handed.clear();
        rethrow(failure);
    }

    /** The caller, its own share done: runs what its helpers offer until their {@code tasks} of this pass have ended. */
    private static void assistWhileWaiting(Crew crew, int tasks) {
        if (!assists()) return;
        crew.callerWaiting = true;
        try {
            while (crew.done.get() < tasks) {
                FutureTask<?> t = crew.offers.poll(2, TimeUnit.MILLISECONDS);
                if (t != null) t.run();     // a failure stays in the task, for the helper that handed it over
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } finally {
            crew.callerWaiting = false;
            crew.offers.removeIf(t -> t == WAKE);
        }
    }

    /** A range [from, to) of a flat array's elements. */
    interface Range {
        void run(long from, long to);
    }

    /** Below this many elements a hand-over to a helper (a futex wake-up) costs more than the half it takes off. */
    static final long SPLIT_MIN_ELEMENTS = 1 << 16;
    /**
     * The same for a pass of one cheap operation per element (an add): split from 2^16 elements, tiny's merges and decay
     * took 4% longer per step (interleaved); small's (0.6M-3.5M elements each) measured -2.3% and +1.3%, within noise.
     */
    static final long SPLIT_MIN_CHEAP = 1 << 19;

    /**
     * Runs {@code body} over [0, n) in {@link #count} near-equal ranges at once, the first on the calling thread, the
     * others on its helpers, and waits for them: for a compute-heavy element-wise pass between sharded passes (the
     * optimizer's step), when the helpers would otherwise be idle. Whole on the calling thread with one shard, below
     * {@link #SPLIT_MIN_ELEMENTS}, or while the caller's pass still has work on the helpers.
     */
    static void split(long n, Range body) {
        split(n, SPLIT_MIN_ELEMENTS, body);
    }

    private static void split(long n, long minElements, Range body) {
        int k = count;
        if (k == 1 || n < minElements || !PENDING.get().isEmpty()) {
            body.run(0, n);
            return;
        }
        long[] at = bounds(n, k);
        ThreadPoolExecutor[] helpers = HELPERS.get();
        List<Future<?>> parts = new ArrayList<>(k - 1);
        for (int i = 1; i < k; i++) {
            final int r = i;
            parts.add(helper(helpers, i).submit(() -> body.run(at[r], at[r + 1])));
        }
        Throwable failure = null;
        try {
            body.run(at[0], at[1]);
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        rethrow(awaitAll(parts, failure));
    }

    /**
     * Runs {@code op} on matching element ranges of two arrays of one length and layout, as {@link #split} shares them out
     * (from {@link #SPLIT_MIN_CHEAP} elements).
     */
    static void splitPair(INDArray a, INDArray b, BiConsumer<INDArray, INDArray> op) {
        if (!Shape.hasDefaultStridesForShape(a) || !Shape.hasDefaultStridesForShape(b) || a.ordering() != b.ordering()
                || a.length() != b.length()) {
            op.accept(a, b);    // not both contiguous alike: whole, on the calling thread
            return;
        }
        INDArray fa = flat(a), fb = flat(b);
        split(fa.length(), SPLIT_MIN_CHEAP, (from, to) -> op.accept(part(fa, from, to), part(fb, from, to)));
    }

    /**
     * The sum of {@code body} over {@link #split}'s ranges of a contiguous array (a sum of squares, say; from
     * {@link #SPLIT_MIN_CHEAP} elements), added in range order: the same sum whichever thread ran which range.
     */
    static double sum(INDArray a, ToDoubleFunction<INDArray> body) {
        if (!Shape.hasDefaultStridesForShape(a)) return body.applyAsDouble(a);
        INDArray f = flat(a);
        Map<Long, Double> parts = new ConcurrentSkipListMap<>();
        split(f.length(), SPLIT_MIN_CHEAP, (from, to) -> parts.put(from, body.applyAsDouble(part(f, from, to))));
        double total = 0;
        for (double v : parts.values()) total += v;
        return total;
    }

    /** A contiguous array as a vector in its own order (a view, not a copy). */
    static INDArray flat(INDArray a) {
        return a.rank() == 1 ? a : a.reshape(a.ordering(), new long[]{a.length()});
    }

    /** Elements [from, to) of a vector: the vector itself when whole (no view to make). */
    static INDArray part(INDArray vector, long from, long to) {
        return from == 0 && to == vector.length() ? vector : vector.get(NDArrayIndex.interval(from, to));
    }

    private static final ThreadLocal<List<Future<?>>> PENDING = ThreadLocal.withInitial(ArrayList::new);
    private static final ThreadLocal<List<Runnable>> AFTER = ThreadLocal.withInitial(ArrayList::new);
    /**
     * Set by a calling thread's helper task that failed, until the next awaitPending: the tasks queued after it (later
     * layers of the same pass) are skipped, not run on rows that were never computed. A backward run on the cached
     * state of a failed forward once read a token id outside the table and wrote outside it (a JVM crash in tests).
     */
    private static final ThreadLocal<AtomicBoolean> FAILED = ThreadLocal.withInitial(AtomicBoolean::new);

    /** Each calling thread's helpers (a training task's replica has its own); idle helpers end after a minute. */
    private static final ThreadLocal<ThreadPoolExecutor[]> HELPERS = ThreadLocal.withInitial(() -> new ThreadPoolExecutor[8]);
    private static final AtomicLong HELPER_IDS = new AtomicLong();

    private static ThreadPoolExecutor helper(ThreadPoolExecutor[] helpers, int i) {
        if (i >= helpers.length) throw new IllegalArgumentException("at most " + helpers.length + " shards");
        if (helpers[i] == null) {
            ThreadPoolExecutor e = new ThreadPoolExecutor(1, 1, 60, TimeUnit.SECONDS, new LinkedBlockingQueue<>(), r -> {
                Thread t = new Thread(r, "sparkformer-shard-" + HELPER_IDS.incrementAndGet());
                t.setDaemon(true);
                return t;
            });
            e.allowCoreThreadTimeOut(true);
            helpers[i] = e;
        }
        return helpers[i];
    }

    /* ---- a helper's workspaces: one per layer shard, open from its forward to its backward ---- */

    private static final WorkspaceConfiguration SHARD_WS = WorkspaceConfiguration.builder()
            .initialSize(0).overallocationLimit(0.05).policyReset(ResetPolicy.BLOCK_LEFT)
            .policyAllocation(AllocationPolicy.OVERALLOCATE).policySpill(SpillPolicy.REALLOCATE)
            .policyLearning(LearningPolicy.FIRST_LOOP).build();

    private record Open(Object owner, MemoryWorkspace ws) {}

    /** The helper thread's open shard workspaces, innermost last. */
    private static final ThreadLocal<Deque<Open>> OPEN = ThreadLocal.withInitial(ArrayDeque::new);

    /**
     * On a helper: runs a layer shard's forward in its workspace and leaves it open for the backward. A pass that
     * never reached its backward (a score without gradients, a failure) left workspaces open: reopening the owner's
     * closes it and everything opened after it.
     */
    static void forwardIn(Object owner, String wsId, Runnable forward) {
        closeFrom(owner);
        open(owner, wsId);
        forward.run();
    }

    /**
     * On a helper: runs a layer shard's backward in the workspace its forward opened (or a new one), then closes it
     * and any opened after it; whatever the backward produced must be copied out inside {@code backward}.
     */
    static void backwardIn(Object owner, String wsId, Runnable backward) {
        if (!isOpen(owner)) open(owner, wsId);
        // temporaries of every layer's backward share one workspace (as DL4J's own working memory), not the layer's
        try (MemoryWorkspace working = Nd4j.getWorkspaceManager().getAndActivateWorkspace(SHARD_WS, "sparkformer-shard-backward")) {
            backward.run();
        } finally {
            closeFrom(owner);
        }
    }

    private static void open(Object owner, String wsId) {
        MemoryWorkspace ws = Nd4j.getWorkspaceManager().getWorkspaceForCurrentThread(SHARD_WS, wsId);
        ws.notifyScopeEntered();
        OPEN.get().addLast(new Open(owner, ws));
    }

    private static boolean isOpen(Object owner) {
        for (Open o : OPEN.get()) if (o.owner() == owner) return true;
        return false;
    }

    /** Closes the owner's workspace and every one opened after it (innermost first), if the owner's is open. */
    private static void closeFrom(Object owner) {
        if (!isOpen(owner)) return;
        Deque<Open> open = OPEN.get();
        Open last;
        do {
            last = open.removeLast();
            last.ws().close();
        } while (last.owner() != owner);
    }
}
