package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.learning.config.Adam;
import org.nd4j.linalg.learning.config.NoOp;
import org.nd4j.linalg.ops.transforms.Transforms;
import org.sparkformer.worker.data.Windows;

import static org.junit.jupiter.api.Assertions.*;

/**
 * --dtype float16 / bfloat16: 16-bit matrix products against the float32 model with the same parameters, loss
 * scaling, and training. ND4J's CPU backend computes 16-bit products correctly but slowly, which is enough here.
 */
class MixedPrecisionTest {
    static final int[] STARTS = {0, 100, 200, 300, 400, 500, 600, 700};

    @AfterEach void resetScale() { LossScaler.reset(LossScaler.INITIAL); }

    static GptConfig config(String dtype) {
        GptConfig c = ModelTest.config(2, 2, 32, 16, 10);
        c.dtype = dtype;
        return c;
    }

    static MultiDataSet batch() {
        int[] tokens = new int[2000];
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 7 + i / 10) % 10;
        return Windows.batch(tokens, STARTS, 16);
    }

    /** The model with the given dtype around the float32 model's parameters. */
    static ComputationGraph twin(ComputationGraph f32, String dtype) {
        return Gpt.build(config(dtype), new NoOp(), 0, DataType.FLOAT, f32.params());
    }

    static INDArray gradient(ComputationGraph g, MultiDataSet data) {
        g.setInputs(data.getFeatures());
        g.setLabels(data.getLabels());
        g.computeGradientAndScore();
        new LossScaler().onGradientCalculation(g);
        return g.getGradientsViewArray().dup();
    }

    static double relativeDifference(INDArray a, INDArray b) {
        return a.sub(b).norm2Number().doubleValue() / b.norm2Number().doubleValue();
    }

    /** dl4j-spark ships the configuration to executors as a serialized object inside its broadcast. */
    @Test void theDtypeTravelsWithTheGraphConfiguration() throws Exception {
        ComputationGraphConfiguration conf = Gpt.configuration(config("bfloat16"), new NoOp(), 0, DataType.FLOAT);
        var bytes = new java.io.ByteArrayOutputStream();
        try (var out = new java.io.ObjectOutputStream(bytes)) { out.writeObject(conf); }
        ComputationGraphConfiguration back;
        try (var in = new java.io.ObjectInputStream(new java.io.ByteArrayInputStream(bytes.toByteArray()))) {
            back = (ComputationGraphConfiguration) in.readObject();   // our own bytes, as Spark's broadcast does
        }
        ComputationGraph g = new ComputationGraph(back);
        g.init();
        assertEquals(DataType.BFLOAT16, ((GptLayerConf) g.getLayer(Gpt.attention(0)).conf().getLayer()).computeType());
        assertEquals(DataType.BFLOAT16, ((GptLayerConf) g.getLayer(Gpt.HEAD).conf().getLayer()).computeType());
        assertThrows(IllegalArgumentException.class, () -> config("float8").validate());
    }

    @Test void sixteenBitProductsGiveTheFloat32ModelsLogitsAndGradients() {
        ComputationGraph f32 = Gpt.build(config("float32"), new NoOp(), 0, DataType.FLOAT);
        MultiDataSet data = batch();
        INDArray logits = Gpt.logits(f32, data.getFeatures(0)), grad = gradient(f32, data);
        // float16 keeps 11 significant bits, bfloat16 8: relative errors of ~1e-3 and ~1e-2 per product
        for (String dtype : new String[]{"float16", "bfloat16"}) {
            ComputationGraph m = twin(f32, dtype);
            INDArray l = Gpt.logits(m, data.getFeatures(0));
            double tol = dtype.equals("float16") ? 0.01 : 0.05;
            assertTrue(relativeDifference(l, logits) < tol, dtype + " logits differ by " + relativeDifference(l, logits));
            assertNotEquals(0.0, l.sub(logits).norm2Number().doubleValue(), dtype + ": products must really run in 16 bits");
            INDArray gm = gradient(m, data);
            assertTrue(relativeDifference(gm, grad) < 2 * tol, dtype + " gradient differs by " + relativeDifference(gm, grad));
        }
        assertEquals(0, LossScaler.overflows());
    }

    @Test void anOverflowingScaleZeroesTheStepAndHalves() {
        ComputationGraph f32 = Gpt.build(config("float32"), new NoOp(), 0, DataType.FLOAT);
        ComputationGraph f16 = twin(f32, "float16");
        MultiDataSet data = batch();
        LossScaler.reset(Math.pow(2, 40));   // beyond float16's range (65504): the scaled gradients overflow
        INDArray g = gradient(f16, data);
        assertEquals(0.0, Transforms.abs(g).maxNumber().doubleValue(), "an overflowed step applies no gradient");
        assertEquals(Math.pow(2, 39), LossScaler.current());
        assertEquals(1, LossScaler.overflows());
        // the scale comes down until the gradient is finite, and then it equals float32's
        INDArray ref = gradient(f32, data);
        for (int i = 0; i < 40 && LossScaler.overflows() == i + 1; i++) g = gradient(f16, data);
        assertTrue(LossScaler.overflows() > 1 && LossScaler.current() < Math.pow(2, 39), "scale " + LossScaler.current());
        assertTrue(Transforms.abs(g).maxNumber().doubleValue() > 0, "a finite step applies its gradient");
        assertTrue(relativeDifference(g, ref) < 0.02, "gradient after settling differs by " + relativeDifference(g, ref));
    }

    /** bfloat16 here; float16, with its loss scaler, trains on Spark replicas in SparkTrainingTest (16-bit is slow on CPU). */
    @Test void trainsInBfloat16() {
        for (String dtype : new String[]{"bfloat16"}) {
            ComputationGraph g = Gpt.build(config(dtype), new Adam(3e-3), 0.1, DataType.FLOAT);
            g.setListeners(new LossScaler(), new GlobalNormClipping(1.0));
            MultiDataSet data = batch();
            double first = g.score(data, false);
            for (int i = 0; i < 30; i++) g.fit(data);
            double last = g.score(data, false);
            assertTrue(last < 0.7 * first, dtype + ": loss " + first + " -> " + last);
        }
    }
}
