package org.sparkformer.worker.model;

import org.deeplearning4j.nn.conf.NeuralNetConfiguration;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

import java.util.List;

/** Second half of a pre-LN block: x + Wproj · gelu(Wfc · LN2(x)), 4x wide, dropout on the branch. In/out [B, T, C]. */
public class MlpBlock extends GptLayerConf {
    public static final String LNG = "lng", LNB = "lnb", WFC = "wfc", BFC = "bfc", WPROJ = "wproj", BPROJ = "bproj";

    private int nLayer;

    protected MlpBlock() {}

    public MlpBlock(String name, GptConfig c) {
        super(name, c.nEmbd, c.blockSize, c.dropout);
        this.nLayer = c.nLayer;
    }

    public int getNLayer() { return nLayer; }

    @Override public List<ParamSpec> paramSpecs() {
        return List.of(
                ParamSpec.ones(LNG, nEmbd), ParamSpec.zeros(LNB, nEmbd),
                ParamSpec.matrix(WFC, nEmbd, 4L * nEmbd, 0.02), ParamSpec.zeros(BFC, 4L * nEmbd),
                ParamSpec.matrix(WPROJ, 4L * nEmbd, nEmbd, 0.02 / Math.sqrt(2.0 * nLayer)), ParamSpec.zeros(BPROJ, nEmbd));
    }

    @Override protected GptLayer<?> newLayer(NeuralNetConfiguration conf, DataType dataType) {
        return new Impl(conf, dataType);
    }

    public static final class Impl extends GptLayer<MlpBlock> {
        private long b, t;
        private LayerNorm.Cache ln;
        private INDArray h, a, s, g, residMask;

        Impl(NeuralNetConfiguration conf, DataType dataType) { super(conf, dataType); }

        @Override
        protected INDArray forward(boolean training) {
            long c = layerConf().nEmbd;
            INDArray x = input3d();
            b = x.size(0);
            t = x.size(1);
            INDArray x2 = x.reshape(b * t, c);
            LayerNorm.Cache[] lnCache = new LayerNorm.Cache[1];
            h = LayerNorm.forward(x2, param(LNG), param(LNB), lnCache);
            ln = lnCache[0];
            a = Gemm.mm(h, false, param(WFC), false, ct()).addiRowVector(param(BFC));                 // [N, 4C]
            s = Gelu.sigmoidPart(a);
            g = Gelu.forward(a, s);
            INDArray out = Gemm.mm(g, false, param(WPROJ), false, ct()).addiRowVector(param(BPROJ));  // [N, C]
            residMask = dropoutMask(training, b * t, c);
            if (residMask != null) out.muli(residMask);
            return out.addi(x2).reshape(b, t, c);
        }

        @Override
        protected INDArray backward(INDArray epsilon) {
            long c = layerConf().nEmbd;
            INDArray dOut = epsilon.castTo(dataType).reshape(b * t, c);
            INDArray dBranch = residMask == null ? dOut : dOut.mul(residMask);
            Gemm.weightGradient(grad(WPROJ), g, dBranch, ct());
            Gemm.columnSums(dBranch, grad(BPROJ));
            INDArray da = Gelu.backward(Gemm.mm(dBranch, false, param(WPROJ), true, ct()), a, s, g);
            Gemm.weightGradient(grad(WFC), h, da, ct());
            Gemm.columnSums(da, grad(BFC));
            INDArray dh = Gemm.mm(da, false, param(WFC), true, ct());
            INDArray dx = LayerNorm.backward(dh, ln, param(LNG), grad(LNG), grad(LNB)).addi(dOut);
            return dx.reshape(b, t, c);
        }

        @Override protected void clearCache() { ln = null; h = a = s = g = residMask = null; }
    }
}
