package org.sparkformer.worker.io;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.DataInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of JSON
 * ({"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {...}}, padded with
 * spaces so the data starts 8-byte aligned), then the tensors' raw little-endian bytes, offsets counted
 * from the end of the header. Only F32 tensors are written; F32, F16 and BF16 are read (as float).
 */
public final class SafeTensors {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final long MAX_HEADER = 100L << 20;

    /** A tensor: its shape and row-major values. */
    public record Tensor(long[] shape, float[] values) {
        public Tensor {
            long n = 1;
            for (long s : shape) n *= s;
            if (n != values.length) throw new IllegalArgumentException("shape " + java.util.Arrays.toString(shape) + " does not hold " + values.length + " values");
        }
    }

    private SafeTensors() {}

    /** IEEE 754 binary16 to float (Java 17 has no Float.float16ToFloat). */
    static float halfToFloat(short h) {
        int bits = h & 0xFFFF, sign = (bits & 0x8000) << 16, exp = (bits >>> 10) & 0x1F, mant = bits & 0x3FF;
        if (exp == 0x1F) return Float.intBitsToFloat(sign | 0x7F800000 | (mant << 13));   // inf, nan
        if (exp == 0) {                                                                   // zero, subnormal
            float f = mant * 0x1p-24f;
            return sign != 0 ? -f : f;
        }
        return Float.intBitsToFloat(sign | ((exp + 112) << 23) | (mant << 13));
    }

    public static void write(Map<String, Tensor> tensors, Map<String, String> metadata, OutputStream out) throws IOException {
        ObjectNode header = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = header.putObject("__metadata__");
            metadata.forEach(meta::put);
        }
        long offset = 0;
        for (Map.Entry<String, Tensor> e : tensors.entrySet()) {
            ObjectNode t = header.putObject(e.getKey());
            t.put("dtype", "F32");
            var shape = t.putArray("shape");
            for (long s : e.getValue().shape()) shape.add(s);
            long bytes = 4L * e.getValue().values().length;
            t.putArray("data_offsets").add(offset).add(offset + bytes);
            offset += bytes;
        }
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        byte[] head = new byte[padded];
        java.util.Arrays.fill(head, (byte) ' ');
        System.arraycopy(json, 0, head, 0, json.length);
        out.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(padded).array());
        out.write(head);
        for (Tensor t : tensors.values()) {
            ByteBuffer b = ByteBuffer.allocate(4 * t.values().length).order(ByteOrder.LITTLE_ENDIAN);
            b.asFloatBuffer().put(t.values());
            out.write(b.array());
        }
        out.flush();
    }

    /** All tensors, in header order; checks the header, dtypes, shapes against byte ranges, and that ranges tile the data. */
    public static Map<String, Tensor> read(InputStream in, String name) throws IOException {
        DataInputStream data = new DataInputStream(in);
        byte[] lenBytes = new byte[8];
        try {
            data.readFully(lenBytes);
            long n = ByteBuffer.wrap(lenBytes).order(ByteOrder.LITTLE_ENDIAN).getLong();
            if (n <= 0 || n > MAX_HEADER) throw new IOException(name + ": not a safetensors file (header length " + n + ")");
            byte[] headerBytes = new byte[(int) n];
            data.readFully(headerBytes);
            JsonNode header;
            try {
                header = JSON.readTree(new String(headerBytes, StandardCharsets.UTF_8).trim());
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new IOException(name + ": safetensors header is not valid JSON");
            }
            if (header == null || !header.isObject()) throw new IOException(name + ": safetensors header is not a JSON object");
            record Entry(String name, String dtype, long[] shape, long begin, long end) {}
            java.util.List<Entry> entries = new java.util.ArrayList<>();
            for (Iterator<Map.Entry<String, JsonNode>> it = header.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (e.getKey().equals("__metadata__")) continue;
                JsonNode t = e.getValue();
                long[] shape = new long[t.path("shape").size()];
                for (int i = 0; i < shape.length; i++) shape[i] = t.path("shape").get(i).asLong();
                entries.add(new Entry(e.getKey(), t.path("dtype").asText(), shape,
                        t.path("data_offsets").path(0).asLong(-1), t.path("data_offsets").path(1).asLong(-1)));
            }
            entries.sort(java.util.Comparator.comparingLong(Entry::begin));
            long at = 0;
            Map<String, Tensor> out = new LinkedHashMap<>();
            for (Entry e : entries) {
                int width = switch (e.dtype()) {
                    case "F32" -> 4;
                    case "F16", "BF16" -> 2;
                    default -> throw new IOException(name + ": tensor " + e.name() + " has dtype " + e.dtype() + " (only F32, F16, BF16 are read)");
                };
                long count = 1;
                for (long s : e.shape()) count *= s;
                if (e.begin() != at || e.end() - e.begin() != count * width)
                    throw new IOException(name + ": tensor " + e.name() + " has data_offsets that do not match its shape or its neighbours");
                if (e.end() - e.begin() > Integer.MAX_VALUE) throw new IOException(name + ": tensor " + e.name() + " is too large");
                byte[] raw = new byte[(int) (e.end() - e.begin())];
                data.readFully(raw);
                at = e.end();
                ByteBuffer b = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
                float[] v = new float[(int) count];
                for (int i = 0; i < v.length; i++) {
                    v[i] = switch (e.dtype()) {
                        case "F32" -> b.getFloat();
                        case "BF16" -> Float.intBitsToFloat((b.getShort() & 0xFFFF) << 16);
                        default -> halfToFloat(b.getShort());
                    };
                }
                out.put(e.name(), new Tensor(e.shape(), v));
            }
            return out;
        } catch (java.io.EOFException e) {
            throw new IOException(name + ": truncated safetensors file");
        }
    }
}
