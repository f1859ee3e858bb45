package org.sparkformer.worker.model;

import java.io.Serializable;

/**
 * One parameter of one of our layers: its name (no '_': DL4J's updater splits keys at the last '_'),
 * its [rows, cols] shape, how it starts, and whether it is a matrix (weight-decayed) or a vector (not).
 * Vectors are stored as [1, n] rows, as DL4J does for biases.
 */
public record ParamSpec(String name, long rows, long cols, Init init, double std) implements Serializable {

    public enum Init { ZEROS, ONES, NORMAL }

    public static ParamSpec matrix(String name, long rows, long cols, double std) {
        return new ParamSpec(name, rows, cols, Init.NORMAL, std);
    }

    public static ParamSpec zeros(String name, long n) { return new ParamSpec(name, 1, n, Init.ZEROS, 0); }

    public static ParamSpec ones(String name, long n) { return new ParamSpec(name, 1, n, Init.ONES, 0); }

    public long length() { return rows * cols; }

    /** Matrices get weight decay; gains and biases do not (nanoGPT's and GPT-2's rule). */
    public boolean isMatrix() { return init == Init.NORMAL; }
}
