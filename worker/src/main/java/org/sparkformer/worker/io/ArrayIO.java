package org.sparkformer.worker.io;

import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

import java.io.DataInputStream;
import java.io.DataOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.zip.CRC32;

/**
 * A flat float32 vector as bytes we define ourselves (never Java serialization):
 * magic "SFVEC001", int64 length, little-endian float32 values, CRC32 of those bytes.
 * Reading checks the magic, the length against what the caller expects, and the checksum.
 */
public final class ArrayIO {
    private static final byte[] MAGIC = "SFVEC001".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    private ArrayIO() {}

    public static void write(INDArray vector, OutputStream out) throws IOException {
        float[] values = vector.castTo(DataType.FLOAT).reshape(vector.length()).toFloatVector();
        ByteBuffer buf = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        buf.asFloatBuffer().put(values);
        CRC32 crc = new CRC32();
        crc.update(buf.array());
        DataOutputStream data = new DataOutputStream(out);
        data.write(MAGIC);
        data.writeLong(values.length);
        data.write(buf.array());
        data.writeLong(crc.getValue());
        data.flush();
    }

    /** @param expectedLength the caller's idea of the length, or -1 to accept any */
    public static INDArray read(InputStream in, long expectedLength, String what) throws IOException {
        DataInputStream data = new DataInputStream(in);
        byte[] magic = new byte[MAGIC.length];
        try {
            data.readFully(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) throw new IOException(what + " is not a sparkformer array file (bad magic)");
            long n = data.readLong();
            if (n < 0 || n > Integer.MAX_VALUE / 4) throw new IOException(what + " has an invalid length " + n);
            if (expectedLength >= 0 && n != expectedLength)
                throw new IOException(what + " holds " + n + " values but the model needs " + expectedLength + " (another model shape?)");
            byte[] bytes = new byte[(int) n * 4];
            data.readFully(bytes);
            long stored = data.readLong();
            CRC32 crc = new CRC32();
            crc.update(bytes);
            if (crc.getValue() != stored) throw new IOException(what + " is corrupt (checksum mismatch)");
            float[] values = new float[(int) n];
            ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
            return Nd4j.create(values, new long[]{1, n}, 'c');
        } catch (java.io.EOFException e) {
            throw new IOException(what + " is truncated");
        }
    }
}
