package org.sparkformer.worker.generate;

import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;
import org.sparkformer.worker.model.Gpt;

/** Next-token logits by running the whole (cropped) context through the training graph: simple, O(T) per token. */
public final class Recompute implements NextToken {
    private final ComputationGraph graph;
    private final int blockSize;

    public Recompute(ComputationGraph graph, int blockSize) {
        this.graph = graph;
        this.blockSize = blockSize;
    }

    @Override public float[] logits(int[] context, int length) {
        int start = Math.max(0, length - blockSize);
        float[] window = new float[length - start];
        for (int j = start; j < length; j++) window[j - start] = context[j];
        INDArray logits = Gpt.logits(graph, Nd4j.create(window, new long[]{1, window.length}, 'c'));
        return logits.get(NDArrayIndex.point(0), NDArrayIndex.point(window.length - 1), NDArrayIndex.all()).toFloatVector();
    }
}
