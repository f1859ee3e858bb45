package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.InputSplit;
import org.apache.hadoop.mapreduce.lib.input.FileSplit;
import scala.Tuple2;

import java.io.Serializable;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

/**
 * Runs on executors: turns one input split (lines from Hadoop's TextInputFormat, split at '\n' only, so
 * '\r' survives) into documents. A text file's split is one stretch of text; it ends a document when it
 * ends its file. A .jsonl line is one document, its text field. Bytes are checked as UTF-8: by policy an
 * invalid sequence fails the job (naming the file and offset), becomes U+FFFD, or is dropped; the
 * invalid bytes are counted. A NUL byte marks a binary file, always an error.
 */
final class TextInput implements Serializable {
    private static final long serialVersionUID = 1L;
    enum Invalid { FAIL, REPLACE, SKIP }

    /** The documents of one split; {@code endsDocument}: its last document is complete. */
    record Chunk(String file, List<String> documents, boolean endsDocument, long bytes, long invalidBytes) {}

    private final List<String> inputs;
    private final Invalid policy;
    private final String textField;
    private final Map<String, Long> fileLengths;

    TextInput(List<String> inputs, Invalid policy, String textField, Map<String, Long> fileLengths) {
        this.inputs = new ArrayList<>(inputs);
        this.policy = policy;
        this.textField = textField;
        this.fileLengths = fileLengths;
    }

    /** The --input values, for messages. */
    List<String> inputs() { return inputs; }

    static boolean isJsonLines(String name) {
        String n = name.toLowerCase(java.util.Locale.ROOT);
        return n.endsWith(".jsonl") || n.endsWith(".jsonl.gz");
    }

    Chunk read(InputSplit split, Iterator<Tuple2<LongWritable, Text>> records) {
        FileSplit fileSplit = (FileSplit) split;
        String file = fileSplit.getPath().toString();
        boolean jsonl = isJsonLines(fileSplit.getPath().getName());
        Long length = fileLengths.get(file);
        boolean endsFile = length == null || fileSplit.getStart() + fileSplit.getLength() >= length;
        ObjectMapper json = jsonl ? new ObjectMapper() : null;
        List<String> docs = new ArrayList<>();
        StringBuilder text = new StringBuilder();
        long[] invalid = {0};
        long bytes = 0;
        while (records.hasNext()) {
            Tuple2<LongWritable, Text> r = records.next();
            long offset = r._1().get();
            Text line = r._2();
            bytes += line.getLength() + 1;
            String s = decode(line.getBytes(), line.getLength(), file, offset, invalid);
            if (!jsonl) {
                text.append(s).append('\n');
                continue;
            }
            if (s.isBlank()) continue;
            JsonNode node;
            try {
                node = json.readTree(s);
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new UserError("--input " + file + ": line at byte " + offset + " is not valid JSON (" + e.getOriginalMessage() + ")");
            }
            JsonNode field = node == null ? null : node.get(textField);
            if (field == null || !field.isTextual())
                throw new UserError("--input " + file + ": line at byte " + offset + " has no string field \"" + textField + "\" (see --text-field)");
            docs.add(field.asText());
        }
        if (!jsonl && text.length() > 0) docs.add(text.toString());
        return new Chunk(file, docs, jsonl || endsFile, bytes, invalid[0]);
    }

    private String decode(byte[] b, int len, String file, long offset, long[] invalid) {
        for (int i = 0; i < len; i++)
            if (b[i] == 0) throw new UserError("--input " + file + ": looks binary (NUL byte at offset " + (offset + i) + "), expected UTF-8 text");
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(b, 0, len);
        CharBuffer out = CharBuffer.allocate(len + 1);
        while (true) {
            CoderResult r = dec.decode(in, out, true);
            if (!r.isError()) break;
            if (policy == Invalid.FAIL)
                throw new UserError("--input " + file + ": invalid UTF-8 at byte " + (offset + in.position())
                        + " (pass --invalid-utf8 replace or skip to accept such bytes)");
            invalid[0] += r.length();
            in.position(in.position() + r.length());
            if (policy == Invalid.REPLACE) out.put('\uFFFD');
        }
        dec.flush(out);
        return out.flip().toString();
    }
}
