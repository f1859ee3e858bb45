package org.sparkformer.worker.model;

import org.deeplearning4j.nn.api.ParamInitializer;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.optimize.api.TrainingListener;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.deeplearning4j.nn.conf.InputPreProcessor;
import org.deeplearning4j.nn.conf.RNNFormat;
import org.deeplearning4j.nn.conf.inputs.InputType;
import org.deeplearning4j.nn.conf.layers.BaseLayer;
import org.deeplearning4j.nn.conf.layers.Layer;
import org.deeplearning4j.nn.conf.memory.LayerMemoryReport;
import org.deeplearning4j.nn.conf.memory.MemoryReport;

import java.util.Collection;
import java.util.List;

/**
 * Configuration side of our layers: what DL4J needs to place them in a ComputationGraph. Every layer
 * reads and writes activations as [B, T, C] (DL4J's recurrent NWC format); parameters come from
 * {@link #paramSpecs()}. The updater and weight decay come from the graph's global settings, as for
 * DL4J's own layers (weight decay applies to matrices only).
 */
public abstract class GptLayerConf extends BaseLayer {
    protected int nEmbd;
    protected int blockSize;
    protected double dropout;
    /** float32, float16 or bfloat16: the type of this layer's matrix products ({@link GptConfig#dtype}). */
    protected String dtype = "float32";

    protected GptLayerConf() {}

    protected GptLayerConf(String name, int nEmbd, int blockSize, double dropout) {
        super(new Plain().name(name));
        this.nEmbd = nEmbd;
        this.blockSize = blockSize;
        this.dropout = dropout;
    }

    /** The runtime layer for this configuration. */
    protected abstract GptLayer<?> newLayer(NeuralNetConfiguration conf, DataType dataType);

    @Override
    public org.deeplearning4j.nn.api.Layer instantiate(NeuralNetConfiguration conf, Collection<TrainingListener> listeners,
                                                       int index, INDArray paramsView, boolean initializeParams, DataType dataType) {
        GptLayer<?> layer = newLayer(conf, dataType);
        layer.setListeners(listeners);
        layer.setIndex(index);
        layer.setParamsViewArray(paramsView);
        layer.setParamTable(initializer().init(conf, paramsView, initializeParams));
        layer.setConf(conf);
        return layer;
    }

    /** The layer's parameters, in the order they are laid out in the flattened parameter vector. */
    public abstract List<ParamSpec> paramSpecs();

    /** Width of the output's last axis. */
    protected long outputSize() { return nEmbd; }

    /** Runs this layer's matrix products in the given precision; returns this. */
    public GptLayerConf computeIn(String dtype) {
        GptConfig.computeType(dtype);
        this.dtype = dtype;
        return this;
    }

    public String getDtype() { return dtype; }

    /** The 16-bit type of the products, or null for the network's own type. */
    DataType computeType() { return GptConfig.computeType(dtype); }

    public int getNEmbd() { return nEmbd; }
    public int getBlockSize() { return blockSize; }
    public double getDropout() { return dropout; }

    @Override public ParamInitializer initializer() { return SpecParamInitializer.INSTANCE; }

    @Override public InputType getOutputType(int layerIndex, InputType inputType) {
        return InputType.recurrent(outputSize(), blockSize, RNNFormat.NWC);
    }

    @Override public void setNIn(InputType inputType, boolean override) { /* sizes are fixed by the GptConfig */ }

    @Override public InputPreProcessor getPreProcessorForInputType(InputType inputType) { return null; }

    @Override public boolean isPretrainParam(String paramName) { return false; }

    @Override public LayerMemoryReport getMemoryReport(InputType inputType) {
        long n = initializer().numParams(this);
        return new LayerMemoryReport.Builder(layerName, getClass(), inputType, getOutputType(-1, inputType))
                .standardMemory(n, getIUpdater() == null ? 0 : getIUpdater().stateSize(n))
                .workingMemory(0, 0, 0, 0)
                .cacheMemory(MemoryReport.CACHE_MODE_ALL_ZEROS, MemoryReport.CACHE_MODE_ALL_ZEROS)
                .build();
    }

    /** BaseLayer's constructor wants a builder; ours carry only the name. */
    private static final class Plain extends BaseLayer.Builder<Plain> {
        @Override @SuppressWarnings("unchecked") public <E extends Layer> E build() {
            throw new UnsupportedOperationException("not used");
        }
    }
}
