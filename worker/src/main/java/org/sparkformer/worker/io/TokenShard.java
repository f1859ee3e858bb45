package org.sparkformer.worker.io;

import java.io.DataInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.zip.CRC32;

/**
 * A shard of token ids, a format of our own: a 32-byte header (magic "SFTOK001", uint32 version 1,
 * uint32 bytes per token 2 = uint16 or 4 = int32, uint64 token count, uint32 CRC32 of the data,
 * uint32 zero), then the ids little-endian. Reading checks all of it and names the shard on failure.
 */
public final class TokenShard {
    private static final byte[] MAGIC = "SFTOK001".getBytes(StandardCharsets.US_ASCII);
    public static final int HEADER_BYTES = 32, VERSION = 1;

    private TokenShard() {}

    /** Bytes per token for a vocabulary: uint16 when every id fits, else int32. */
    public static int bytesPerToken(int vocabSize) { return vocabSize <= 65536 ? 2 : 4; }

    /** Writes tokens[from, to) and returns the data's CRC32. */
    public static long write(OutputStream out, int[] tokens, int from, int to, int bytesPerToken) throws IOException {
        if (bytesPerToken != 2 && bytesPerToken != 4) throw new IllegalArgumentException("bytes per token must be 2 or 4");
        ByteBuffer data = ByteBuffer.allocate((to - from) * bytesPerToken).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = from; i < to; i++) {
            if (bytesPerToken == 2) {
                if (tokens[i] < 0 || tokens[i] > 0xFFFF) throw new IllegalArgumentException("token id " + tokens[i] + " does not fit uint16");
                data.putShort((short) tokens[i]);
            } else data.putInt(tokens[i]);
        }
        CRC32 crc = new CRC32();
        crc.update(data.array());
        ByteBuffer header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        header.put(MAGIC).putInt(VERSION).putInt(bytesPerToken).putLong(to - from).putInt((int) crc.getValue()).putInt(0);
        out.write(header.array());
        out.write(data.array());
        out.flush();
        return crc.getValue();
    }

    /** Reads a whole shard; {@code expectedCrc} (from the manifest) is checked too unless negative. */
    public static int[] read(InputStream in, String name, long expectedCrc) throws IOException {
        DataInputStream data = new DataInputStream(in);
        byte[] headerBytes = new byte[HEADER_BYTES];
        try {
            data.readFully(headerBytes);
            ByteBuffer header = ByteBuffer.wrap(headerBytes).order(ByteOrder.LITTLE_ENDIAN);
            byte[] magic = new byte[MAGIC.length];
            header.get(magic);
            if (!java.util.Arrays.equals(magic, MAGIC)) throw new IOException(name + ": not a sparkformer token shard (bad magic)");
            int version = header.getInt(), width = header.getInt();
            long count = header.getLong();
            long crcStored = header.getInt() & 0xFFFFFFFFL;
            if (version != VERSION) throw new IOException(name + ": token shard version " + version + " is not supported (expected " + VERSION + ")");
            if (width != 2 && width != 4) throw new IOException(name + ": invalid bytes per token " + width);
            if (count < 0 || count * width > Integer.MAX_VALUE - 64) throw new IOException(name + ": invalid token count " + count);
            byte[] bytes = new byte[(int) count * width];
            data.readFully(bytes);
            if (data.read() != -1) throw new IOException(name + ": trailing bytes after " + count + " tokens");
            CRC32 crc = new CRC32();
            crc.update(bytes);
            if (crc.getValue() != crcStored || (expectedCrc >= 0 && crc.getValue() != expectedCrc))
                throw new IOException(name + ": CRC32 mismatch (shard is corrupt or not the one the manifest lists)");
            int[] tokens = new int[(int) count];
            ByteBuffer b = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < tokens.length; i++) tokens[i] = width == 2 ? b.getShort() & 0xFFFF : b.getInt();
            return tokens;
        } catch (EOFException e) {
            throw new IOException(name + ": truncated token shard");
        }
    }
}
