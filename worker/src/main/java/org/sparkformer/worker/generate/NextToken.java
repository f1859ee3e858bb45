package org.sparkformer.worker.generate;

/** A language model seen from generation: the next token's logits after a whole context. */
public interface NextToken {
    /** Logits [V] for the token after context[0 .. length). */
    float[] logits(int[] context, int length);
}
