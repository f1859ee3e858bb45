package org.sparkformer.driver;

import org.apache.spark.broadcast.Broadcast;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.dataset.api.MultiDataSet;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;

import java.io.Serializable;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The teacher of a distillation run, on the executors: its weights arrive once per executor as a broadcast,
 * the network is built once per executor JVM, and each student minibatch gets the teacher's logits next to
 * its labels ([B, T, 1 + V], what the student's head reads as a distillation target).
 */
record Teacher(GptConfig model, Broadcast<float[]> params) implements Serializable {
    private static final Map<Long, ComputationGraph> NETWORKS = new ConcurrentHashMap<>();

    MultiDataSet label(MultiDataSet batch) {
        ComputationGraph g = NETWORKS.computeIfAbsent(params.id(), id -> {
            float[] p = params.value();
            return Gpt.build(model, new org.nd4j.linalg.learning.config.Sgd(0), 0, DataType.FLOAT, Nd4j.create(p, new long[]{1, p.length}, 'c'));
        });
        INDArray features = batch.getFeatures(0), hard = batch.getLabels(0);
        INDArray logits;
        synchronized (g) {   // tasks of one executor share the network
            logits = Gpt.logits(g, features).dup();
        }
        INDArray labels = Nd4j.concat(2, hard.reshape(hard.size(0), hard.size(1), 1).castTo(logits.dataType()), logits);
        return new org.nd4j.linalg.dataset.MultiDataSet(features, labels);
    }
}
