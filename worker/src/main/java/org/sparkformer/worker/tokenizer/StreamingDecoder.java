package org.sparkformer.worker.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;

/**
 * Decodes tokens one at a time for streaming output: a byte-level token may end inside a UTF-8
 * character, so bytes of an unfinished character wait for the next token instead of printing as U+FFFD.
 */
public final class StreamingDecoder {
    private final Tokenizer tokenizer;
    private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

    public StreamingDecoder(Tokenizer tokenizer) { this.tokenizer = tokenizer; }

    /** The text that token completes (possibly empty). */
    public String push(int id) {
        if (!(tokenizer instanceof ByteLevelBpe bpe)) return tokenizer.decode(new int[]{id});
        pending.writeBytes(bpe.decodeBytes(new int[]{id}));
        byte[] b = pending.toByteArray();
        int complete = completePrefix(b);
        pending.reset();
        pending.write(b, complete, b.length - complete);
        return new String(b, 0, complete, StandardCharsets.UTF_8);
    }

    /** Length of b without a trailing, still incomplete UTF-8 sequence. */
    static int completePrefix(byte[] b) {
        for (int back = 1; back <= Math.min(3, b.length); back++) {
            int lead = b[b.length - back] & 0xFF;
            if ((lead & 0xC0) == 0x80) continue;                     // continuation byte: look further back
            int need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
            return need > back ? b.length - back : b.length;
        }
        return b.length;
    }
}
