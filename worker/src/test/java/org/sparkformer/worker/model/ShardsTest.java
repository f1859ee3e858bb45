package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.Model;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.deeplearning4j.optimize.api.BaseTrainingListener;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.NoOp;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

/** A batch computed in shards gives the whole batch's loss and gradient, and trains the same. */
class ShardsTest {
    @BeforeAll static void doublePrecision() { GradientCheckTest.doublePrecision(); }

    @AfterAll static void restore() { GradientCheckTest.restore(); }

    @AfterEach void wholeBatches() { Shards.use(1); }

    static INDArray ids(long seed, int b, int t, int vocab) {
        Random r = new Random(seed);
        double[][] a = new double[b][t];
        for (double[] row : a) for (int i = 0; i < t; i++) row[i] = r.nextInt(vocab);
        return Nd4j.create(a);
    }

    /** A pass as a layer runs one: task(0) on this thread, the others handed to the helpers. */
    private static void start(int k, java.util.function.IntConsumer task) {
        Shards.queue(k, task);
        Shards.here(() -> task.accept(0));
    }

    /** The flattened gradient (a copy) and the score of one pass, in {@code shards} shards. */
    static Object[] pass(ComputationGraph g, INDArray in, INDArray labels, int shards) {
        Shards.use(shards);
        g.setInputs(in);
        g.setLabels(labels);
        g.computeGradientAndScore();
        return new Object[]{g.gradient().gradient().dup(), g.score()};
    }

    static void assertSameGradient(Object[] whole, Object[] sharded, String what) {
        INDArray a = (INDArray) whole[0], b = (INDArray) sharded[0];
        double scale = a.amaxNumber().doubleValue();
        assertTrue(scale > 1e-6, "a gradient of zeros proves nothing");
        assertEquals(0.0, a.sub(b).amaxNumber().doubleValue(), 1e-12 * scale, what + ": gradient");
        assertEquals((double) whole[1], (double) sharded[1], 1e-12, what + ": score");
    }

    @Test void shardsAddUpToTheWholeBatch() {
        for (boolean tied : new boolean[]{true, false}) {
            GptConfig c = GradientCheckTest.small(tied, tied ? GptConfig.Positional.LEARNED : GptConfig.Positional.SINUSOIDAL);
            ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
            g.params().addi(Nd4j.randn(DataType.DOUBLE, g.params().shape()).muli(0.1));   // norms off identity
            INDArray in = ids(1, 5, 6, c.vocabSize), labels = ids(2, 5, 6, c.vocabSize);
            Object[] whole = pass(g, in, labels, 1);
            for (int k : new int[]{2, 3, 5})     // 5 rows: uneven shards, and one sequence each
                assertSameGradient(whole, pass(g, in, labels, k), "tied=" + tied + ", " + k + " shards");
        }
    }

    @Test void distillationShardsAddUpToTheWholeBatch() {
        GptConfig c = GradientCheckTest.small(true, GptConfig.Positional.LEARNED);
        c.distillAlpha = 0.3;
        c.distillTemperature = 2.0;
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        Nd4j.getRandom().setSeed(5);
        INDArray labels = Nd4j.concat(2, ids(3, 4, 6, c.vocabSize).reshape(4, 6, 1), Nd4j.randn(DataType.DOUBLE, 4, 6, c.vocabSize));
        INDArray in = ids(4, 4, 6, c.vocabSize);
        assertSameGradient(pass(g, in, labels, 1), pass(g, in, labels, 2), "distillation");
    }

    /** Finite differences through sharded passes, including forward passes that never reach a backward. */
    @Test void gradientCheckInTwoShards() {
        GptConfig c = GradientCheckTest.small(true, GptConfig.Positional.LEARNED);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        Shards.use(2);
        GradientCheckTest.checkSampled(g, GradientCheckTest.ids(20, c.vocabSize), GradientCheckTest.ids(21, c.vocabSize), () -> {});
    }

    @Test void trainingInShardsFollowsTrainingWhole() {
        GptConfig c = ModelTest.config(2, 2, 16, 8, 11);
        INDArray in = ids(6, 4, 8, 11), labels = ids(7, 4, 8, 11);
        INDArray[] after = new INDArray[2];
        for (int k = 1; k <= 2; k++) {
            Shards.use(k);
            ComputationGraph g = Gpt.build(c, new Adam(1e-2), 0, DataType.DOUBLE);
            for (int step = 0; step < 5; step++) g.fit(new MultiDataSet(in, labels));
            after[k - 1] = g.params().dup();
        }
        assertNotEquals(0.0, after[0].sub(Gpt.build(c, new Adam(1e-2), 0, DataType.DOUBLE).params()).amaxNumber().doubleValue());
        assertEquals(0.0, after[0].sub(after[1]).amaxNumber().doubleValue(), 1e-9);
    }

    /**
     * Once a pass has shown the layers' chain, the next hands a helper every forward at the first layer and, with
     * GptGraph's labels before the forward, every backward too; a plain ComputationGraph's backwards go at the head.
     * Either way each pass gives the whole batch's gradient, also when the batch size changes.
     */
    @Test void laterPassesHandTheHelperTheWholeChain() {
        GptConfig c = GradientCheckTest.small(true, GptConfig.Positional.LEARNED);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        ComputationGraph plain = new ComputationGraph(g.getConfiguration().clone());
        plain.init(g.params().dup(), false);
        int layers = g.getLayers().length;     // the embedding, two per block, the head
        for (ComputationGraph graph : new ComputationGraph[]{g, plain}) {
            List<Integer> handedOverByForwardEnd = new ArrayList<>();
            graph.setListeners(new BaseTrainingListener() {
                @Override public void onForwardPass(Model model, Map<String, INDArray> activations) {
                    handedOverByForwardEnd.add(Shards.handedOver());
                }
            });
            for (int b : new int[]{4, 4, 4, 3}) {
                INDArray in = ids(10 + b, b, 6, c.vocabSize), labels = ids(20 + b, b, 6, c.vocabSize);
                Object[] whole = pass(graph, in, labels, 1);
                assertSameGradient(whole, pass(graph, in, labels, 2), graph.getClass().getSimpleName() + ", batch " + b);
            }
            // a training forward cut short after the first block: the later layers' helper rows ran for nothing
            INDArray in = ids(30, 4, 6, c.vocabSize), labels = ids(31, 4, 6, c.vocabSize);
            Shards.use(2);
            graph.feedForward(in, 2, true);
            Object[] whole = pass(graph, in, labels, 1);
            assertSameGradient(whole, pass(graph, in, labels, 2), graph.getClass().getSimpleName() + ", after a pass cut short");
            handedOverByForwardEnd.remove(handedOverByForwardEnd.size() - 1);
            int ahead = graph instanceof GptGraph ? 2 * layers - 1 : layers - 1;
            assertEquals(List.of(layers - 1, ahead, ahead, ahead), handedOverByForwardEnd.stream()
                    .filter(n -> n > 0).toList(), graph.getClass().getSimpleName());
        }
    }

    @Test void aShardsFailureReachesTheCallerAndTheNextPassWorks() {
        GptConfig c = GradientCheckTest.small(true, GptConfig.Positional.LEARNED);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        INDArray in = ids(8, 4, 6, c.vocabSize), labels = ids(9, 4, 6, c.vocabSize);
        Object[] whole = pass(g, in, labels, 1);
        INDArray bad = in.dup();
        bad.putScalar(3, 2, c.vocabSize + 4);     // in the second shard's rows: computed by a helper thread
        Shards.use(2);
        g.setInputs(bad);
        g.setLabels(labels);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, g::computeGradientAndScore);
        assertTrue(e.getMessage().contains("outside vocabulary"), e.getMessage());
        assertSameGradient(whole, pass(g, in, labels, 2), "after a failed pass");
    }

    /** After a helper's task fails, the pass's later tasks on the helpers are skipped until the caller has the failure. */
    @Test void aFailedHelperTaskSkipsTheRestOfItsPass() {
        Shards.use(2);
        java.util.concurrent.atomic.AtomicInteger ran = new java.util.concurrent.atomic.AtomicInteger();
        start(2, k -> {
            if (k == 1) throw new IllegalStateException("first layer failed on the helper");
        });
        start(2, k -> {
            if (k == 1) ran.incrementAndGet();
        });
        IllegalStateException e = assertThrows(IllegalStateException.class, Shards::awaitPending);
        assertEquals("first layer failed on the helper", e.getMessage());
        assertEquals(0, ran.get(), "a task queued after the failure ran");
        start(2, k -> {
            if (k == 1) ran.incrementAndGet();
        });
        Shards.awaitPending();
        assertEquals(1, ran.get(), "the next pass runs");
    }

    /** A helper still computing while its caller waits hands its weight-gradient products to the caller; failures reach the caller. */
    @Test void aWaitingCallerRunsItsHelpersProducts() throws Exception {
        Shards.use(2);
        String caller = Thread.currentThread().getName();
        java.util.concurrent.CountDownLatch waiting = new java.util.concurrent.CountDownLatch(1);
        List<String> ranOn = new java.util.concurrent.CopyOnWriteArrayList<>();
        long before = Shards.productsHandedOver();
        Shards.queue(2, k -> {
            try {
                waiting.await();
                Thread.sleep(200);      // the caller is in awaitPending by now
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            Shards.assistable(() -> ranOn.add(Thread.currentThread().getName()));
            try {
                Thread.sleep(100);      // the rest of the layer's backward, while the caller takes the product
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            Shards.awaitHanded();
            ranOn.add("helper done");
        });
        waiting.countDown();
        Shards.awaitPending();
        assertEquals(List.of(caller, "helper done"), ranOn);
        assertEquals(before + 1, Shards.productsHandedOver());

        Shards.queue(2, k -> {
            try {
                Thread.sleep(200);
            } catch (InterruptedException e) {
                throw new IllegalStateException(e);
            }
            Shards.assistable(() -> { throw new IllegalArgumentException("product failed"); });
            Shards.awaitHanded();
        });
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Shards::awaitPending);
        assertEquals("product failed", e.getMessage());
    }

    /** A caller still computing hands its products to a helper whose tasks have ended; nothing is handed outside a pass. */
    @Test void anIdleHelperRunsTheCallersProducts() {
        Shards.use(2);
        List<String> ranOn = new java.util.concurrent.CopyOnWriteArrayList<>();
        Shards.assistable(() -> ranOn.add(Thread.currentThread().getName()));
        assertEquals(List.of(Thread.currentThread().getName()), ranOn, "no pass: here");
        ranOn.clear();
        Shards.queue(2, k -> {});
        while (!Shards.helpersIdle()) Thread.onSpinWait();
        Shards.assistable(() -> ranOn.add(Thread.currentThread().getName()));
        Shards.assistable(() -> { throw new IllegalArgumentException("product failed"); });
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, Shards::awaitHanded);
        assertEquals("product failed", e.getMessage());
        assertEquals(1, ranOn.size());
        assertTrue(ranOn.get(0).startsWith("sparkformer-shard-"), ranOn.toString());
        Shards.awaitPending();
    }

    /** Every weight-gradient product of a pass computed by another thread: the same gradient as the whole batch. */
    @Test void productsHandedToAHelperGiveTheWholeBatchsGradient() {
        GptConfig c = GradientCheckTest.small(false, GptConfig.Positional.LEARNED);
        ComputationGraph g = Gpt.build(c, new NoOp(), 0, DataType.DOUBLE);
        g.params().addi(Nd4j.randn(DataType.DOUBLE, g.params().shape()).muli(0.1));
        INDArray in = ids(1, 4, 6, c.vocabSize), labels = ids(2, 4, 6, c.vocabSize);
        Object[] whole = pass(g, in, labels, 1);
        long before = Shards.productsHandedOver();
        Shards.handAlways = true;
        try {
            assertSameGradient(whole, pass(g, in, labels, 2), "products on the helper");
        } finally {
            Shards.handAlways = false;
        }
        assertEquals(2L * 2 * c.nLayer, Shards.productsHandedOver() - before, "the caller's four products per block went to the helper");
    }

    /** float16 products: the shards scale their losses as the whole batch does and LossScaler unscales the sum. */
    @Test void float16ShardsAddUpToTheWholeBatch() {
        ComputationGraph f32 = Gpt.build(MixedPrecisionTest.config("float32"), new NoOp(), 0, DataType.FLOAT);
        ComputationGraph g = MixedPrecisionTest.twin(f32, "float16");
        var data = MixedPrecisionTest.batch();
        Shards.use(1);
        INDArray whole = MixedPrecisionTest.gradient(g, data);
        double wholeScore = g.score();
        LossScaler.reset(LossScaler.INITIAL);
        Shards.use(2);
        INDArray sharded = MixedPrecisionTest.gradient(g, data);
        LossScaler.reset(LossScaler.INITIAL);
        INDArray exact = MixedPrecisionTest.gradient(f32, data);
        // 16-bit products round differently over half the rows: as close to float32's gradient as the whole batch is
        double wholeError = MixedPrecisionTest.relativeDifference(whole, exact);
        assertTrue(wholeError > 0 && wholeError < 1e-2, "float16 error " + wholeError);
        assertTrue(MixedPrecisionTest.relativeDifference(sharded, exact) < 1.5 * wholeError,
                "sharded float16 error " + MixedPrecisionTest.relativeDifference(sharded, exact) + " vs " + wholeError);
        assertEquals(wholeScore, g.score(), 1e-3 * wholeScore);
    }

    /** split: every element once, a range on each helper between passes; whole inside a pass or when small. */
    @Test void splitCoversEveryElementOnTheHelpersBetweenPasses() {
        Shards.use(2);
        long n = Shards.SPLIT_MIN_ELEMENTS + 3;
        java.util.Map<String, long[]> ranges = new java.util.concurrent.ConcurrentHashMap<>();
        Shards.split(n, (from, to) -> ranges.put(Thread.currentThread().getName(), new long[]{from, to}));
        assertEquals(2, ranges.size(), "two threads: " + ranges.keySet());
        assertArrayEquals(new long[]{0, n / 2}, ranges.get(Thread.currentThread().getName()));
        assertTrue(ranges.keySet().stream().anyMatch(t -> t.startsWith("sparkformer-shard-")), ranges.keySet().toString());
        assertTrue(ranges.values().stream().anyMatch(r -> r[0] == n / 2 && r[1] == n));

        ranges.clear();
        Shards.split(Shards.SPLIT_MIN_ELEMENTS - 1, (from, to) -> ranges.put(Thread.currentThread().getName(), new long[]{from, to}));
        assertEquals(1, ranges.size(), "small: whole on the caller");

        ranges.clear();
        start(2, k -> {
            if (k == 0) Shards.split(n, (from, to) -> ranges.put(Thread.currentThread().getName(), new long[]{from, to}));
        });
        Shards.awaitPending();
        assertEquals(1, ranges.size(), "inside a pass: whole on the caller");
        assertArrayEquals(new long[]{0, n}, ranges.values().iterator().next());

        IllegalStateException e = assertThrows(IllegalStateException.class, () -> Shards.split(n, (from, to) -> {
            if (from > 0) throw new IllegalStateException("range " + from);
        }));
        assertEquals("range " + n / 2, e.getMessage(), "a helper's failure reaches the caller");
    }

    /** splitPair and sum: the whole arrays' result, in either layout; arrays not contiguous alike go whole. */
    @Test void pairsAndSumsOverRangesAreTheWholeArrays() {
        Shards.use(2);
        Nd4j.getRandom().setSeed(8);
        for (char order : new char[]{'c', 'f'}) {
            INDArray a = Nd4j.randn(DataType.DOUBLE, 600, 1000).dup(order), b = Nd4j.randn(DataType.DOUBLE, 600, 1000).dup(order);
            assertTrue(a.length() >= Shards.SPLIT_MIN_CHEAP, "no split");
            INDArray sum = a.add(b), got = a.dup(order);
            Shards.splitPair(got, b, INDArray::addi);
            assertEquals(0.0, got.sub(sum).amaxNumber().doubleValue(), 0.0, order + "-order pairs");
            java.util.Set<String> threads = java.util.concurrent.ConcurrentHashMap.newKeySet();
            double squares = Shards.sum(a, part -> {
                threads.add(Thread.currentThread().getName());
                return part.mul(part).sumNumber().doubleValue();
            });
            assertEquals(2, threads.size(), order + "-order: a range on the caller and one on its helper " + threads);
            assertEquals(Math.pow(a.norm2Number().doubleValue(), 2), squares, 1e-9 * squares, order + "-order sum");
        }
        INDArray c = Nd4j.randn(DataType.DOUBLE, 600, 1000), f = Nd4j.randn(DataType.DOUBLE, 600, 1000).dup('f');
        INDArray expected = c.add(f), got = c.dup();
        Shards.splitPair(got, f, INDArray::addi);       // layouts differ: whole
        assertEquals(0.0, got.sub(expected).amaxNumber().doubleValue(), 0.0, "mixed layouts");
        INDArray columns = c.get(NDArrayIndex.all(), NDArrayIndex.interval(0, 900));   // a strided view
        assertEquals(Math.pow(columns.norm2Number().doubleValue(), 2), Shards.sum(columns, part -> part.mul(part).sumNumber().doubleValue()),
                1e-9 * Math.pow(columns.norm2Number().doubleValue(), 2), "strided view");
    }

    @Test void boundsAreWholeNearEqualRuns() {
        assertArrayEquals(new long[]{0, 2, 5}, Shards.bounds(5, 2));
        assertArrayEquals(new long[]{0, 4, 8, 12}, Shards.bounds(12, 3));
    }
}
