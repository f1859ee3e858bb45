package org.sparkformer.worker.model;

import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/** GPT-2's GELU (tanh approximation, Hugging Face's "gelu_new"), forward and backward side by side. */
public final class Gelu {
    private static final double S = Math.sqrt(2.0 / Math.PI), K = 0.044715;

    private Gelu() {}

    /** t = tanh(S (a + K a^3)), the value backward reuses. */
    public static INDArray tanhPart(INDArray a) {
        INDArray u = a.mul(a).muli(K).addi(1.0).muli(a).muli(S);
        return Transforms.tanh(u, false);
    }

    /** gelu(a) = 0.5 a (1 + t). */
    public static INDArray forward(INDArray a, INDArray t) {
        return t.add(1.0).muli(a).muli(0.5);
    }

    /** d gelu / da = 0.5 (1 + t) + 0.5 a (1 - t^2) S (1 + 3K a^2); returns dy * that. */
    public static INDArray backward(INDArray dy, INDArray a, INDArray t) {
        INDArray sech2 = t.mul(t).rsubi(1.0);
        INDArray inner = a.mul(a).muli(3 * K).addi(1.0).muli(S);
        INDArray grad = sech2.muli(inner).muli(a).addi(t).addi(1.0).muli(0.5);
        return grad.muli(dy);
    }
}
