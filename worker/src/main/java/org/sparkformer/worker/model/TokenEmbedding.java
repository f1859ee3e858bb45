package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.api.ops.impl.scatter.ScatterUpdate;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.linalg.indexing.NDArrayIndex;

import java.util.ArrayList;
import java.util.List;

/**
 * Token embedding plus position encoding: x[b,t] = wte[idx[b,t]] + pos[t], then dropout.
 * Input [B, T] token ids (as numbers); output [B, T, C]. Positions are a learned table wpe [Tmax, C] or
 * fixed sinusoids. With a tied head, the head has already written its share of wte's gradient, so
 * backward adds to it instead of overwriting.
 */
public class TokenEmbedding extends GptLayerConf {
    public static final String WTE = "wte", WPE = "wpe";

    private int vocabSize;
    private GptConfig.Positional positional = GptConfig.Positional.LEARNED;
    private boolean tiedHead;

    protected TokenEmbedding() {}

    public TokenEmbedding(String name, GptConfig c) {
        super(name, c.nEmbd, c.blockSize, c.dropout);
        this.vocabSize = c.vocabSize;
        this.positional = c.positional;
        this.tiedHead = c.tiedHead;
    }

    public int getVocabSize() { return vocabSize; }
    public GptConfig.Positional getPositional() { return positional; }
    public boolean isTiedHead() { return tiedHead; }

    @Override public List<ParamSpec> paramSpecs() {
        List<ParamSpec> p = new ArrayList<>();
        p.add(ParamSpec.matrix(WTE, vocabSize, nEmbd, 0.02));
        if (positional == GptConfig.Positional.LEARNED) p.add(ParamSpec.matrix(WPE, blockSize, nEmbd, 0.02));
        return p;
    }

    @Override protected GptLayer<?> newLayer(NeuralNetConfiguration conf, DataType dataType) {
        return new Impl(conf, dataType);
    }

    /** Fixed sinusoidal table [T, C]: pe[t, 2i] = sin(t / 10000^(2i/C)), pe[t, 2i+1] = cos(same). */
    public static INDArray sinusoids(int t, int c, DataType dataType) {
        double[][] pe = new double[t][c];
        for (int pos = 0; pos < t; pos++) {
            for (int i = 0; i < c; i += 2) {
                double angle = pos / Math.pow(10000.0, (double) i / c);
                pe[pos][i] = Math.sin(angle);
                if (i + 1 < c) pe[pos][i + 1] = Math.cos(angle);
            }
        }
        return Nd4j.create(pe).castTo(dataType);
    }

    public static final class Impl extends GptLayer<TokenEmbedding> {
        private int[] ids;
        private long b, t;
        private INDArray dropMask, sinTable;

        Impl(NeuralNetConfiguration conf, DataType dataType) { super(conf, dataType); }

        @Override
        protected INDArray forward(boolean training) {
            TokenEmbedding cfg = layerConf();
            INDArray in = input.rank() == 3 ? input.reshape(input.size(0), input.size(1) * input.size(2)) : input;
            b = in.size(0);
            t = in.size(1);
            if (t > cfg.blockSize)
                throw new IllegalArgumentException("sequence length " + t + " exceeds block size " + cfg.blockSize);
            int[] tokens = in.reshape(b * t).toIntVector();
            for (int id : tokens)
                if (id < 0 || id >= cfg.vocabSize)
                    throw new IllegalArgumentException("token id " + id + " outside vocabulary [0, " + cfg.vocabSize + ")");
            ids = tokens;       // only checked ids reach backward's scatter into the table
            INDArray x = Nd4j.pullRows(param(WTE), 1, ids);                      // [N, C]
            x.reshape(b, t * cfg.nEmbd).addiRowVector(positions((int) t).reshape(1, t * cfg.nEmbd));
            dropMask = dropoutMask(training, b * t, cfg.nEmbd);
            if (dropMask != null) x.muli(dropMask);
            return (x.reshape(b, t, cfg.nEmbd));
        }

        private INDArray positions(int len) {
            TokenEmbedding cfg = layerConf();
            if (cfg.positional == GptConfig.Positional.LEARNED)
                return param(WPE).get(NDArrayIndex.interval(0, len), NDArrayIndex.all());
            if (sinTable == null) sinTable = detached(() -> sinusoids(cfg.blockSize, cfg.nEmbd, dataType));
            return sinTable.get(NDArrayIndex.interval(0, len), NDArrayIndex.all());
        }

        @Override
        protected long[] outputShape(long[] in) {
            long t = 1;
            for (int i = 1; i < in.length; i++) t *= in[i];
            return new long[]{in[0], t, layerConf().nEmbd};
        }

        @Override
        protected boolean hasInputGradient() { return false; }

        @Override
        protected INDArray backward(INDArray epsilon) {
            TokenEmbedding cfg = layerConf();
            INDArray dx = epsilon.castTo(dataType).reshape(b * t, cfg.nEmbd);
            if (dropMask != null) dx = dx.mul(dropMask);
            INDArray dwte = grad(WTE);
            // tied: LmHead ran first and wrote dlogits^T h here (a shard's own views: the head's share went to the layer's)
            if (!cfg.tiedHead || ownGradients) dwte.assign(0);
            Nd4j.scatterUpdate(ScatterUpdate.UpdateOp.ADD, dwte, Nd4j.createFromArray(ids), dx, 1);
            if (cfg.positional == GptConfig.Positional.LEARNED) {
                INDArray dwpe = grad(WPE);
                dwpe.assign(0);
                dwpe.get(NDArrayIndex.interval(0, t), NDArrayIndex.all())
                        .assign(dx.reshape(b, t * cfg.nEmbd).sum(0).reshape(t, cfg.nEmbd));
            }
            return null;
        }

        @Override protected void clearCache() { ids = null; dropMask = null; }
    }
}
