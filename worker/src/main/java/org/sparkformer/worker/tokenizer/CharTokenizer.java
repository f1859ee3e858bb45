package org.sparkformer.worker.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeSet;

/**
 * Character-level tokenizer: one token per Unicode code point seen in the training text, in code point
 * order. Text with a code point outside the vocabulary is refused with an error naming it (there is no
 * silent replacement). Saved as JSON: {"type":"char","codepoints":[...]}.
 */
public final class CharTokenizer implements Tokenizer {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();

    private final int[] codepoints;
    private final Map<Integer, Integer> ids = new HashMap<>();

    public CharTokenizer(int[] codepoints) {
        this.codepoints = codepoints.clone();
        for (int i = 0; i < codepoints.length; i++) {
            if (ids.put(codepoints[i], i) != null) throw new IllegalArgumentException("duplicate code point " + codepoints[i]);
        }
    }

    public static CharTokenizer fromText(CharSequence text) {
        TreeSet<Integer> seen = new TreeSet<>();
        text.codePoints().forEach(seen::add);
        if (seen.isEmpty()) throw new IllegalArgumentException("cannot build a vocabulary from empty text");
        return new CharTokenizer(seen.stream().mapToInt(Integer::intValue).toArray());
    }

    @Override public int vocabSize() { return codepoints.length; }

    @Override public String kind() { return "char"; }

    @Override public int documentSeparator() { return -1; }

    @Override public int[] encode(String text) {
        int[] cps = text.codePoints().toArray();
        int[] out = new int[cps.length];
        for (int i = 0; i < cps.length; i++) {
            Integer id = ids.get(cps[i]);
            if (id == null)
                throw new IllegalArgumentException(String.format(
                        "character '%s' (U+%04X) at position %d is not in the model's vocabulary of %d characters",
                        new String(Character.toChars(cps[i])), cps[i], i, codepoints.length));
            out[i] = id;
        }
        return out;
    }

    @Override public String decode(int[] tokens) {
        StringBuilder sb = new StringBuilder(tokens.length);
        for (int t : tokens) {
            if (t < 0 || t >= codepoints.length) throw new IllegalArgumentException("token id " + t + " outside vocabulary");
            sb.appendCodePoint(codepoints[t]);
        }
        return sb.toString();
    }

    @Override public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("type", "char");
        ArrayNode arr = root.putArray("codepoints");
        for (int cp : codepoints) arr.add(cp);
        return root.toString();
    }

    public static CharTokenizer fromJson(String json) {
        try {
            JsonNode root = JSON.readTree(json);
            if (root == null || !"char".equals(root.path("type").asText()))
                throw new IllegalArgumentException("not a char tokenizer (type must be \"char\")");
            JsonNode arr = root.path("codepoints");
            if (!arr.isArray() || arr.isEmpty()) throw new IllegalArgumentException("tokenizer has no codepoints");
            int[] cps = new int[arr.size()];
            for (int i = 0; i < cps.length; i++) {
                if (!arr.get(i).canConvertToInt() || arr.get(i).asInt() < 0 || arr.get(i).asInt() > Character.MAX_CODE_POINT)
                    throw new IllegalArgumentException("tokenizer has an invalid code point at index " + i);
                cps[i] = arr.get(i).asInt();
            }
            return new CharTokenizer(cps);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("tokenizer is not valid JSON: " + e.getOriginalMessage());
        }
    }

    @Override public boolean equals(Object o) {
        return o instanceof CharTokenizer other && Arrays.equals(codepoints, other.codepoints);
    }

    @Override public int hashCode() { return Arrays.hashCode(codepoints); }
}
