package org.sparkformer.worker.io;

import org.deeplearning4j.nn.api.Layer;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.model.LmHead;
import org.sparkformer.worker.model.TokenEmbedding;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.util.Map;
import java.util.Set;
import java.util.zip.CRC32;
import java.util.zip.CheckedInputStream;
import java.util.zip.CheckedOutputStream;

/**
 * Weight-only int8 quantization, symmetric, one scale per output channel: every matrix becomes int8 values
 * q = round(w / s) with s = max|w| / 127 over its output channel; vectors (LayerNorm, biases) stay float32.
 * Our matrices are input-major [in, out] (output channels are columns), except the embedding tables and the
 * LM head [V or T, C], whose rows are the channels (a row is a token's logit weights / vector).
 * File: magic "SFQ8W001", tensor count, then per tensor (layer, parameter, rows, cols, kind 0 = float32,
 * 1 = int8 per column, 2 = int8 per row; scales then values), then the CRC32 of everything before it
 * (big-endian, DataOutputStream). Loading dequantizes into the network's float parameters.
 */
public final class Int8Weights {
    private static final byte[] MAGIC = "SFQ8W001".getBytes(java.nio.charset.StandardCharsets.US_ASCII);
    private static final Set<String> ROW_CHANNELS = Set.of(TokenEmbedding.WTE, TokenEmbedding.WPE, LmHead.WLM);

    private Int8Weights() {}

    public static void write(ComputationGraph g, OutputStream raw) throws IOException {
        CRC32 crc = new CRC32();
        DataOutputStream out = new DataOutputStream(new CheckedOutputStream(new java.io.BufferedOutputStream(raw, 1 << 20), crc));
        out.write(MAGIC);
        int count = 0;
        for (Layer l : g.getLayers()) count += l.paramTable().size();
        out.writeInt(count);
        for (Layer l : g.getLayers()) {
            for (Map.Entry<String, INDArray> e : l.paramTable().entrySet()) {
                INDArray p = e.getValue();
                long rows = p.rank() == 2 ? p.size(0) : 1, cols = p.length() / rows;
                float[] w = p.dup('c').reshape(p.length()).toFloatVector();
                out.writeUTF(l.conf().getLayer().getLayerName());
                out.writeUTF(e.getKey());
                out.writeLong(rows);
                out.writeLong(cols);
                if (rows == 1 || cols == 1) {
                    out.writeByte(0);
                    for (float v : w) out.writeFloat(v);
                    continue;
                }
                boolean perRow = ROW_CHANNELS.contains(e.getKey());
                out.writeByte(perRow ? 2 : 1);
                int channels = (int) (perRow ? rows : cols);
                float[] scale = new float[channels];
                for (int i = 0; i < w.length; i++) {
                    int ch = (int) (perRow ? i / cols : i % cols);
                    scale[ch] = Math.max(scale[ch], Math.abs(w[i]));
                }
                for (int ch = 0; ch < channels; ch++) {
                    scale[ch] = scale[ch] > 0 ? scale[ch] / 127f : 1f;
                    out.writeFloat(scale[ch]);
                }
                byte[] q = new byte[w.length];
                for (int i = 0; i < w.length; i++) {
                    int ch = (int) (perRow ? i / cols : i % cols);
                    q[i] = (byte) Math.max(-127, Math.min(127, Math.round(w[i] / scale[ch])));
                }
                out.write(q);
            }
        }
        out.flush();
        new DataOutputStream(raw).writeLong(crc.getValue());
        raw.flush();
    }

    /** Dequantizes into g's parameters; the file must hold exactly g's parameters with g's shapes. */
    public static void read(InputStream raw, ComputationGraph g, String what) throws IOException {
        CRC32 crc = new CRC32();
        java.io.BufferedInputStream buffered = new java.io.BufferedInputStream(raw, 1 << 20);
        DataInputStream in = new DataInputStream(new CheckedInputStream(buffered, crc));
        try {
            byte[] magic = new byte[MAGIC.length];
            in.readFully(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) throw new IOException(what + " is not a sparkformer int8 weights file (bad magic)");
            int count = in.readInt(), expected = 0;
            for (Layer l : g.getLayers()) expected += l.paramTable().size();
            if (count != expected) throw new IOException(what + " holds " + count + " tensors but the model has " + expected + " (another model shape?)");
            for (int t = 0; t < count; t++) {
                String layer = in.readUTF(), key = in.readUTF();
                long rows = in.readLong(), cols = in.readLong();
                int kind = in.readByte();
                INDArray target = g.getLayer(layer) == null ? null : g.getLayer(layer).paramTable().get(key);
                if (target == null || target.length() != rows * cols)
                    throw new IOException(what + ": tensor " + layer + "/" + key + " [" + rows + ", " + cols + "] does not fit the model");
                float[] w = new float[(int) (rows * cols)];
                if (kind == 0) {
                    for (int i = 0; i < w.length; i++) w[i] = in.readFloat();
                } else if (kind == 1 || kind == 2) {
                    boolean perRow = kind == 2;
                    float[] scale = new float[(int) (perRow ? rows : cols)];
                    for (int ch = 0; ch < scale.length; ch++) scale[ch] = in.readFloat();
                    byte[] q = new byte[w.length];
                    in.readFully(q);
                    for (int i = 0; i < w.length; i++) w[i] = q[i] * scale[(int) (perRow ? i / cols : i % cols)];
                } else throw new IOException(what + ": unknown tensor kind " + kind);
                target.assign(Nd4j.create(w, target.shape(), 'c').castTo(target.dataType()));
            }
            long computed = crc.getValue();
            long stored = new DataInputStream(buffered).readLong();
            if (stored != computed) throw new IOException(what + " is corrupt (checksum mismatch)");
        } catch (EOFException e) {
            throw new IOException(what + " is truncated");
        }
    }
}
