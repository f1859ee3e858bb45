package org.sparkformer.worker.model;

import org.deeplearning4j.gradientcheck.GradientCheckUtil;
import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.learning.config.NoOp;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Double-precision finite-difference checks of every parameter of each layer alone (followed by the head, which
 * supplies the loss); ModelGradientCheckTest checks whole models with the helpers here.
 */
class GradientCheckTest {
    static final double EPS = 1e-6, MAX_REL = 1e-5, MIN_ABS = 1e-9;
    static final int B = 2, T = 5;
    /** Entries checked per parameter array in whole models, whose layers are each checked in full alone. */
    static final int PER_PARAM = 24;
    static DataType savedType;

    @BeforeAll static void doublePrecision() {
        savedType = Nd4j.dataType();
        Nd4j.setDefaultDataTypes(DataType.DOUBLE, DataType.DOUBLE);
    }

    @AfterAll static void restore() { Nd4j.setDefaultDataTypes(savedType, savedType); }

    static GptConfig small(boolean tied, GptConfig.Positional pos) {
        GptConfig c = new GptConfig();
        c.nLayer = 2; c.nHead = 2; c.nEmbd = 8; c.blockSize = 6; c.vocabSize = 7;
        c.tiedHead = tied; c.positional = pos; c.seed = 42;
        return c;
    }

    static INDArray ids(long seed, int vocab) {
        Random r = new Random(seed);
        double[][] a = new double[B][T];
        for (double[] row : a) for (int t = 0; t < T; t++) row[t] = r.nextInt(vocab);
        return Nd4j.create(a);
    }

    /** DL4J's check of every parameter: used for each layer alone. */
    static boolean check(ComputationGraph g, INDArray in, INDArray labels) {
        return GradientCheckUtil.checkGradients(new GradientCheckUtil.GraphConfig().net(g)
                .inputs(new INDArray[]{in}).labels(new INDArray[]{labels})
                .epsilon(EPS).maxRelError(MAX_REL).minAbsoluteError(MIN_ABS)
                .print(GradientCheckUtil.PrintMode.FAILURES_ONLY).exitOnFirstError(false));
    }

    /**
     * Whole models: the same central difference as DL4J's check, on {@link #PER_PARAM} entries per parameter array
     * drawn with a fixed seed (every entry of smaller arrays). DL4J's graph check has no subset option, and a full
     * pass over a 2-block model's ~1,900 parameters took 20-30 s per model. {@code beforeEachPass} reseeds dropout.
     */
    static void checkSampled(ComputationGraph g, INDArray in, INDArray labels, Runnable beforeEachPass) {
        var data = new org.nd4j.linalg.dataset.MultiDataSet(in, labels);
        g.setInputs(in);
        g.setLabels(labels);
        beforeEachPass.run();
        g.computeGradientAndScore();
        var analytic = new java.util.HashMap<String, INDArray>();
        g.gradient().gradientForVariable().forEach((name, grad) -> analytic.put(name, grad.dup()));
        Random pick = new Random(17);
        int checked = 0;
        for (String name : g.paramTable().keySet()) {
            INDArray p = g.getParam(name), grad = analytic.get(name);
            long n = p.length();
            for (int k = 0; k < Math.min(n, PER_PARAM); k++) {
                long i = n <= PER_PARAM ? k : (long) (pick.nextDouble() * n);
                double orig = p.getDouble(i);
                p.putScalar(i, orig + EPS);
                beforeEachPass.run();
                double plus = g.score(data, true);
                p.putScalar(i, orig - EPS);
                beforeEachPass.run();
                double minus = g.score(data, true);
                p.putScalar(i, orig);
                double num = (plus - minus) / (2 * EPS), ana = grad.getDouble(i);
                double rel = Math.abs(num - ana) / Math.max(1e-300, Math.abs(num) + Math.abs(ana));
                assertTrue(rel < MAX_REL || Math.abs(num - ana) < MIN_ABS,
                        name + "[" + i + "]: analytic " + ana + " vs numeric " + num + " (rel " + rel + ")");
                checked++;
            }
        }
        assertTrue(checked > 10 * PER_PARAM, "only " + checked + " entries checked");
    }

    /** A graph of one layer under test followed by an untied head, fed a continuous [B, T, C] input. */
    static ComputationGraph alone(Layer layer, GptConfig c) {
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(7).dataType(DataType.DOUBLE)
                .updater(new NoOp()).miniBatch(false)
                .trainingWorkspaceMode(WorkspaceMode.ENABLED).inferenceWorkspaceMode(WorkspaceMode.ENABLED)
                .graphBuilder().addInputs("x")
                .addLayer("layer", layer, "x")
                .addLayer("head", new LmHead("head", untied(c), 0), "layer")
                .setOutputs("head").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        // break the symmetry of the identity-initialised norms so their gradients are exercised fully
        g.params().addi(Nd4j.randn(DataType.DOUBLE, g.params().shape()).muli(0.1));
        return g;
    }

    static GptConfig untied(GptConfig c) {
        GptConfig u = c.copy();
        u.tiedHead = false;
        return u;
    }

    static INDArray continuous(GptConfig c) {
        Nd4j.getRandom().setSeed(3);
        return Nd4j.randn(DataType.DOUBLE, B, T, c.nEmbd);
    }

    @Test void attentionAlone() {
        GptConfig c = small(false, GptConfig.Positional.LEARNED);
        assertTrue(check(alone(new CausalSelfAttention("layer", c), c), continuous(c), ids(2, c.vocabSize)));
    }

    @Test void mlpAlone() {
        GptConfig c = small(false, GptConfig.Positional.LEARNED);
        assertTrue(check(alone(new MlpBlock("layer", c), c), continuous(c), ids(3, c.vocabSize)));
    }

    @Test void headAlone() {
        GptConfig c = small(false, GptConfig.Positional.LEARNED);
        ComputationGraphConfiguration conf = new NeuralNetConfiguration.Builder().seed(7).dataType(DataType.DOUBLE)
                .updater(new NoOp()).miniBatch(false)
                .trainingWorkspaceMode(WorkspaceMode.ENABLED).inferenceWorkspaceMode(WorkspaceMode.ENABLED)
                .graphBuilder().addInputs("x").addLayer("head", new LmHead("head", c, 0), "x").setOutputs("head").build();
        ComputationGraph g = new ComputationGraph(conf);
        g.init();
        g.params().addi(Nd4j.randn(DataType.DOUBLE, g.params().shape()).muli(0.1));
        assertTrue(check(g, continuous(c), ids(4, c.vocabSize)));
    }

    @Test void embeddingAloneLearnedAndSinusoidal() {
        for (GptConfig.Positional pos : GptConfig.Positional.values()) {
            GptConfig c = small(false, pos);
            ComputationGraph g = alone(new TokenEmbedding("layer", c), c);
            assertTrue(check(g, ids(5, c.vocabSize), ids(6, c.vocabSize)), "embedding " + pos);
        }
    }

    @Test void layerNormAloneAgainstFiniteDifferences() {
        Nd4j.getRandom().setSeed(11);
        INDArray x = Nd4j.randn(DataType.DOUBLE, 4, 6), g = Nd4j.randn(DataType.DOUBLE, 1, 6), b = Nd4j.randn(DataType.DOUBLE, 1, 6);
        INDArray w = Nd4j.randn(DataType.DOUBLE, 4, 6);   // loss = sum(w * LN(x))
        LayerNorm.Cache[] cache = new LayerNorm.Cache[1];
        LayerNorm.forward(x, g, b, cache);
        INDArray dg = Nd4j.zeros(DataType.DOUBLE, 1, 6), db = Nd4j.zeros(DataType.DOUBLE, 1, 6);
        INDArray dx = LayerNorm.backward(w, cache[0], g, dg, db);
        for (INDArray[] pair : new INDArray[][]{{x, dx}, {g, dg}, {b, db}}) {
            INDArray p = pair[0];
            for (int i = 0; i < p.length(); i++) {
                double orig = p.getDouble(i);
                p.putScalar(i, orig + EPS);
                double plus = LayerNorm.forward(x, g, b, null).mul(w).sumNumber().doubleValue();
                p.putScalar(i, orig - EPS);
                double minus = LayerNorm.forward(x, g, b, null).mul(w).sumNumber().doubleValue();
                p.putScalar(i, orig);
                double num = (plus - minus) / (2 * EPS), ana = pair[1].getDouble(i);
                double rel = Math.abs(num - ana) / Math.max(1e-12, Math.abs(num) + Math.abs(ana));
                assertTrue(rel < MAX_REL || Math.abs(num - ana) < MIN_ABS, "LayerNorm grad " + i + ": " + ana + " vs " + num);
            }
        }
    }
}
