package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Lays out any of our layers' parameters from its {@link ParamSpec} list, in list order, as views of
 * DL4J's flattened parameter (or gradient) vector, and initialises them (GPT-2: N(0, std), gains 1, biases 0).
 */
public final class SpecParamInitializer implements ParamInitializer {
    public static final SpecParamInitializer INSTANCE = new SpecParamInitializer();

    private SpecParamInitializer() {}

    private static List<ParamSpec> specs(Layer layer) {
        return ((GptLayerConf) layer).paramSpecs();
    }

    @Override public long numParams(NeuralNetConfiguration conf) { return numParams(conf.getLayer()); }

    @Override public long numParams(Layer layer) {
        long n = 0;
        for (ParamSpec s : specs(layer)) n += s.length();
        return n;
    }

    @Override public List<String> paramKeys(Layer layer) {
        List<String> keys = new ArrayList<>();
        for (ParamSpec s : specs(layer)) keys.add(s.name());
        return keys;
    }

    @Override public List<String> weightKeys(Layer layer) {
        List<String> keys = new ArrayList<>();
        for (ParamSpec s : specs(layer)) if (s.isMatrix()) keys.add(s.name());
        return keys;
    }

    @Override public List<String> biasKeys(Layer layer) {
        List<String> keys = new ArrayList<>();
        for (ParamSpec s : specs(layer)) if (!s.isMatrix()) keys.add(s.name());
        return keys;
    }

    @Override public boolean isWeightParam(Layer layer, String key) { return weightKeys(layer).contains(key); }

    @Override public boolean isBiasParam(Layer layer, String key) { return biasKeys(layer).contains(key); }

    @Override
    public Map<String, INDArray> init(NeuralNetConfiguration conf, INDArray paramsView, boolean initializeParams) {
        Map<String, INDArray> views = views(conf.getLayer(), paramsView);
        if (initializeParams) {
            for (ParamSpec s : specs(conf.getLayer())) {
                INDArray v = views.get(s.name());
                switch (s.init()) {
                    case ZEROS -> v.assign(0);
                    case ONES -> v.assign(1);
                    case NORMAL -> v.assign(Nd4j.randn(v.dataType(), v.shape()).muli(s.std()));
                }
            }
        }
        return views;
    }

    @Override
    public Map<String, INDArray> getGradientsFromFlattened(NeuralNetConfiguration conf, INDArray gradientView) {
        return views(conf.getLayer(), gradientView);
    }

    private static Map<String, INDArray> views(Layer layer, INDArray flat) {
        Map<String, INDArray> out = new LinkedHashMap<>();
        List<ParamSpec> specs = specs(layer);
        if (specs.isEmpty()) return out;
        INDArray vector = flat.reshape(flat.length());
        long offset = 0;
        for (ParamSpec s : specs) {
            INDArray view = vector.get(NDArrayIndex.interval(offset, offset + s.length())).reshape('c', s.rows(), s.cols());
            out.put(s.name(), view);
            offset += s.length();
        }
        return out;
    }
}
