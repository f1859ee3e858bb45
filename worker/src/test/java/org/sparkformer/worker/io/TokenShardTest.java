package org.sparkformer.worker.io;

import org.junit.jupiter.api.Test;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;

import static org.junit.jupiter.api.Assertions.*;

class TokenShardTest {
    @Test void roundTripsBothWidthsAndChecksEverything() throws IOException {
        int[] tokens = {0, 1, 65535, 300, 7};
        for (int width : new int[]{2, 4}) {
            ByteArrayOutputStream out = new ByteArrayOutputStream();
            long crc = TokenShard.write(out, tokens, 1, 5, width);
            byte[] bytes = out.toByteArray();
            assertEquals(TokenShard.HEADER_BYTES + 4 * width, bytes.length);
            assertArrayEquals(new int[]{1, 65535, 300, 7}, TokenShard.read(new ByteArrayInputStream(bytes), "s", crc));

            bytes[bytes.length - 1] ^= 1;   // flip one data bit
            IOException e = assertThrows(IOException.class, () -> TokenShard.read(new ByteArrayInputStream(bytes), "shard-3.bin", -1));
            assertEquals("shard-3.bin: CRC32 mismatch (shard is corrupt or not the one the manifest lists)", e.getMessage());
            bytes[bytes.length - 1] ^= 1;
            assertThrows(IOException.class, () -> TokenShard.read(new ByteArrayInputStream(bytes), "s", crc + 1));
            e = assertThrows(IOException.class, () -> TokenShard.read(new ByteArrayInputStream(java.util.Arrays.copyOf(bytes, bytes.length - 1)), "s", -1));
            assertTrue(e.getMessage().contains("truncated"), e.getMessage());
            e = assertThrows(IOException.class, () -> TokenShard.read(new ByteArrayInputStream(new byte[40]), "s", -1));
            assertTrue(e.getMessage().contains("bad magic"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> TokenShard.write(new ByteArrayOutputStream(), new int[]{70000}, 0, 1, 2));
        assertEquals(2, TokenShard.bytesPerToken(50257));
        assertEquals(4, TokenShard.bytesPerToken(100000));
    }
}
