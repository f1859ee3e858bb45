package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.ComputationGraphConfiguration;
import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.deeplearning4j.nn.conf.WorkspaceMode;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.learning.config.IUpdater;

import java.util.ArrayList;
import java.util.List;

/**
 * The GPT as a DL4J ComputationGraph of our own layers:
 * idx [B,T] -> emb -> (attn_i -> mlp_i) x L -> head (LN_f, LM head, cross-entropy) -> logits [B,T,V].
 */
public final class Gpt {
    public static final String INPUT = "idx", EMBEDDING = "emb", HEAD = "head";

    private Gpt() {}

    public static String attention(int i) { return "attn" + i; }

    public static String mlp(int i) { return "mlp" + i; }

    /**
     * @param updater     e.g. Adam with a {@link WarmupCosineSchedule}
     * @param weightDecay decoupled (AdamW) weight decay on matrices, scaled by the current learning rate; 0 for none
     */
    public static ComputationGraphConfiguration configuration(GptConfig c, IUpdater updater, double weightDecay, DataType dataType) {
        c.validate();
        NeuralNetConfiguration.Builder nn = new NeuralNetConfiguration.Builder()
                .seed(c.seed)
                .dataType(dataType)
                .updater(updater)
                .miniBatch(false)   // our loss is already a mean: no second division by the batch size
                .trainingWorkspaceMode(WorkspaceMode.ENABLED)
                .inferenceWorkspaceMode(WorkspaceMode.ENABLED);
        ComputationGraphConfiguration.GraphBuilder g = nn.graphBuilder().addInputs(INPUT);

        TokenEmbedding emb = new TokenEmbedding(EMBEDDING, c);
        g.addLayer(EMBEDDING, decayed(emb, weightDecay), INPUT);
        long paramsBeforeHead = emb.initializer().numParams(emb);
        String prev = EMBEDDING;
        for (int i = 0; i < c.nLayer; i++) {
            GptLayerConf attn = new CausalSelfAttention(attention(i), c).computeIn(c.dtype);
            GptLayerConf mlp = new MlpBlock(mlp(i), c).computeIn(c.dtype);
            g.addLayer(attention(i), decayed(attn, weightDecay), prev);
            g.addLayer(mlp(i), decayed(mlp, weightDecay), attention(i));
            prev = mlp(i);
            paramsBeforeHead += attn.initializer().numParams(attn) + mlp.initializer().numParams(mlp);
        }
        // wte is the first parameter of the first layer in topological order: the very start of the flat vector
        g.addLayer(HEAD, decayed(new LmHead(HEAD, c, -paramsBeforeHead).computeIn(c.dtype), weightDecay), prev);
        g.setOutputs(HEAD);
        return g.build();
    }

    /**
     * The layer with decoupled weight decay on its matrices, set on the layer itself: set globally (the builder's
     * weightDecay), DL4J M2.1 copies the global list into each layer and then appends it again (configureLayer, then
     * LayerValidation), so every matrix was decayed twice per step.
     */
    private static GptLayerConf decayed(GptLayerConf layer, double weightDecay) {
        if (weightDecay > 0) layer.setRegularization(new ArrayList<>(List.of(new ShardedWeightDecay(weightDecay, true))));
        return layer;
    }

    public static ComputationGraph build(GptConfig c, IUpdater updater, double weightDecay, DataType dataType) {
        ComputationGraph graph = new GptGraph(configuration(c, updater, weightDecay, dataType));
        graph.init();
        checkTying(graph, c);
        return graph;
    }

    /** Rebuilds a network around existing flat parameters (no re-initialisation). */
    public static ComputationGraph build(GptConfig c, IUpdater updater, double weightDecay, DataType dataType, INDArray params) {
        ComputationGraph graph = new GptGraph(configuration(c, updater, weightDecay, dataType));
        graph.init(params.castTo(dataType).reshape(1, params.length()).dup(), false);
        checkTying(graph, c);
        return graph;
    }

    /** Sets the precision of every layer's matrix products (the layers read it at each pass); the weights stay as they are. */
    public static void computeIn(ComputationGraph graph, String dtype) {
        for (org.deeplearning4j.nn.api.Layer l : graph.getLayers())
            if (l.conf().getLayer() instanceof GptLayerConf conf && !(conf instanceof TokenEmbedding)) conf.computeIn(dtype);
    }

    /** The tied head must see exactly the embedding's table (same memory), or the layout assumption broke. */
    static void checkTying(ComputationGraph graph, GptConfig c) {
        if (!c.tiedHead) return;
        INDArray wte = graph.getLayer(EMBEDDING).getParam(TokenEmbedding.WTE);
        INDArray headW = ((LmHead.Impl) graph.getLayer(HEAD)).weight();
        if (wte.data().address() != headW.data().address() || wte.offset() != headW.offset() || !wte.equals(headW))
            throw new IllegalStateException("tied LM head does not alias the token embedding table");
    }

    /** Logits [B, T, V] for token ids [B, T] (inference mode). */
    public static INDArray logits(ComputationGraph graph, INDArray idx) {
        return graph.outputSingle(false, idx);
    }
}
