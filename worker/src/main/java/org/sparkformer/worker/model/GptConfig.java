package org.sparkformer.worker.model;

import java.io.Serializable;

/**
 * The shape of a GPT replica, as plain values (nanoGPT style). Everything the executor needs to build
 * the same network as the driver; the driver's training settings live elsewhere.
 *
 * <p>Shape legend used across the model package: B batch, T time (block), C channels (nEmbd),
 * H heads, D = C/H head size, V vocabulary, L layers, N = B*T rows.
 */
public final class GptConfig implements Serializable {
    private static final long serialVersionUID = 1L;

    /** How positions are encoded: a learned table (GPT-2) or the fixed sinusoids of "Attention is all you need". */
    public enum Positional { LEARNED, SINUSOIDAL }

    public int nLayer = 2;
    public int nHead = 4;
    public int nEmbd = 128;
    public int blockSize = 64;
    public int vocabSize = 0;
    public double dropout = 0.0;
    public boolean tiedHead = true;
    public Positional positional = Positional.LEARNED;
    public long seed = 1337;
    /**
     * Knowledge distillation (used when a batch's labels carry teacher logits, [B, T, 1 + V]): loss =
     * alpha CE(labels) + (1 - alpha) T^2 KL(softmax(teacher / T) || softmax(student / T)).
     */
    public double distillAlpha = 1.0, distillTemperature = 1.0;
    /**
     * Precision of the matrix products (mixed precision): float32, or float16 / bfloat16 with parameters, optimizer
     * state, LayerNorm, softmax and the loss kept in the network's float32. float16 scales the loss ({@link LossScaler}).
     */
    public String dtype = "float32";

    public GptConfig copy() {
        GptConfig c = new GptConfig();
        c.nLayer = nLayer; c.nHead = nHead; c.nEmbd = nEmbd; c.blockSize = blockSize; c.vocabSize = vocabSize;
        c.dropout = dropout; c.tiedHead = tiedHead; c.positional = positional; c.seed = seed;
        c.distillAlpha = distillAlpha; c.distillTemperature = distillTemperature; c.dtype = dtype;
        return c;
    }

    /** Throws IllegalArgumentException naming the offending key. */
    public GptConfig validate() {
        require(nLayer >= 1, "n-layer must be >= 1, got " + nLayer);
        require(nHead >= 1, "n-head must be >= 1, got " + nHead);
        require(nEmbd >= 1 && nEmbd % nHead == 0, "n-embd (" + nEmbd + ") must be a positive multiple of n-head (" + nHead + ")");
        require(blockSize >= 1, "block-size must be >= 1, got " + blockSize);
        require(vocabSize >= 1, "vocab-size must be >= 1, got " + vocabSize);
        require(dropout >= 0 && dropout < 1, "dropout must be in [0, 1), got " + dropout);
        require(distillAlpha >= 0 && distillAlpha <= 1, "distill-alpha must be in [0, 1], got " + distillAlpha);
        require(distillTemperature > 0, "distill-temperature must be > 0, got " + distillTemperature);
        computeType(dtype);
        return this;
    }

    /** The 16-bit type products run in, or null for the network's own type (float32). */
    public static org.nd4j.linalg.api.buffer.DataType computeType(String dtype) {
        return switch (dtype == null ? "float32" : dtype) {
            case "float32" -> null;
            case "float16" -> org.nd4j.linalg.api.buffer.DataType.HALF;
            case "bfloat16" -> org.nd4j.linalg.api.buffer.DataType.BFLOAT16;
            default -> throw new IllegalArgumentException("dtype must be float32, float16 or bfloat16, got " + dtype);
        };
    }

    private static void require(boolean ok, String message) {
        if (!ok) throw new IllegalArgumentException(message);
    }

    /**
     * Parameter count, analytically: embeddings, per block (2 LayerNorms, qkv, proj, fc, proj with biases),
     * the final LayerNorm, and the LM head unless tied.
     */
    public long parameterCount() {
        long c = nEmbd, v = vocabSize;
        long embeddings = v * c + (positional == Positional.LEARNED ? (long) blockSize * c : 0);
        long block = 2 * (2 * c) + (c * 3 * c + 3 * c) + (c * c + c) + (c * 4 * c + 4 * c) + (4 * c * c + c);
        long head = 2 * c + (tiedHead ? 0 : v * c);
        return embeddings + nLayer * block + head;
    }

    /** nanoGPT's training FLOPs per token: 6N + 12·L·C·T (forward and backward, attention included). */
    public double trainingFlopsPerToken() {
        return 6.0 * nonPositionParameterCount() + 12.0 * nLayer * nEmbd * blockSize;
    }

    /** Parameters without the position table: the N of nanoGPT's 6N + 12LCT FLOPs-per-token estimate. */
    public long nonPositionParameterCount() {
        return parameterCount() - (positional == Positional.LEARNED ? (long) blockSize * nEmbd : 0);
    }

    @Override public String toString() {
        return "GptConfig{L=" + nLayer + ", H=" + nHead + ", C=" + nEmbd + ", T=" + blockSize + ", V=" + vocabSize
                + ", dropout=" + dropout + ", tied=" + tiedHead + ", pos=" + positional
                + ("float32".equals(dtype) ? "" : ", dtype=" + dtype) + "}";
    }
}
