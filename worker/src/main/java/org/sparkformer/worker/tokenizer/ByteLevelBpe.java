package org.sparkformer.worker.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.sparkformer.worker.data.IntList;

import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2's byte-level BPE. Text is split by GPT-2's regex into pieces (words with their leading space,
 * numbers, punctuation runs, whitespace); each piece's UTF-8 bytes become one symbol per byte, then the
 * adjacent pair with the lowest merge rank is merged, all its occurrences left to right, until no pair
 * has a rank. Token strings spell bytes through GPT-2's byte-to-unicode table (space is 'Ġ'), so the
 * vocabulary files are Hugging Face's: vocab.json + merges.txt, or tokenizer.json. Special tokens such as
 * {@code <|endoftext|>} are matched in the text before the regex, as Hugging Face does.
 */
public final class ByteLevelBpe implements Tokenizer {
    private static final long serialVersionUID = 1L;
    private static final ObjectMapper JSON = new ObjectMapper();
    public static final String END_OF_TEXT = "<|endoftext|>";

    /** GPT-2's pre-tokenizer; \s, \p{L}, \p{N} in their Unicode meaning, as in Python's regex module. */
    static final Pattern PIECES = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** BYTE_CHAR[b]: the printable character GPT-2 uses for byte b; BYTE_ORDER: bytes in GPT-2's id order. */
    static final char[] BYTE_CHAR = new char[256];
    static final int[] BYTE_ORDER = new int[256];
    private static final int[] CHAR_BYTE = new int[512];

    static {
        int n = 0, extra = 0;
        for (int b = 0; b < 256; b++) if (printable(b)) { BYTE_CHAR[b] = (char) b; BYTE_ORDER[n++] = b; }
        for (int b = 0; b < 256; b++) if (!printable(b)) { BYTE_CHAR[b] = (char) (256 + extra++); BYTE_ORDER[n++] = b; }
        java.util.Arrays.fill(CHAR_BYTE, -1);
        for (int b = 0; b < 256; b++) CHAR_BYTE[BYTE_CHAR[b]] = b;
    }

    private static boolean printable(int b) {
        return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    }

    private final String[] tokens;                 // id -> token string (byte characters, or a special's text)
    private final Map<String, Integer> ids;        // token string -> id
    private final List<String[]> merges;           // in rank order
    private final Map<Long, Long> mergeTable;      // (left id, right id) -> (rank, merged id)
    private final LinkedHashMap<String, Integer> specials;
    private final int[] byteIds = new int[256];
    private final Pattern specialPattern;
    private transient Map<String, int[]> cache;

    /**
     * @param vocab    token string -> id, ids dense from 0 (specials included)
     * @param merges   pairs of token strings, highest priority first
     * @param specials special token texts, each also in vocab
     */
    public ByteLevelBpe(Map<String, Integer> vocab, List<String[]> merges, List<String> specials) {
        this.tokens = new String[vocab.size()];
        for (Map.Entry<String, Integer> e : vocab.entrySet()) {
            int id = e.getValue();
            if (id < 0 || id >= tokens.length || tokens[id] != null)
                throw new IllegalArgumentException("vocabulary ids must be 0.." + (tokens.length - 1) + " without gaps or repeats (id " + id + ")");
            tokens[id] = e.getKey();
        }
        this.ids = new HashMap<>(vocab);
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.valueOf(BYTE_CHAR[b]));
            if (id == null) throw new IllegalArgumentException("vocabulary lacks the byte token for byte " + b + " ('" + BYTE_CHAR[b] + "')");
            byteIds[b] = id;
        }
        this.merges = new ArrayList<>(merges);
        this.mergeTable = new HashMap<>(merges.size() * 2);
        for (int rank = 0; rank < merges.size(); rank++) {
            String[] m = merges.get(rank);
            Integer a = vocab.get(m[0]), b = vocab.get(m[1]), ab = vocab.get(m[0] + m[1]);
            if (a == null || b == null || ab == null)
                throw new IllegalArgumentException("merge " + (rank + 1) + " '" + m[0] + " " + m[1] + "' uses a token missing from the vocabulary");
            mergeTable.putIfAbsent(pair(a, b), ((long) rank << 32) | ab);
        }
        this.specials = new LinkedHashMap<>();
        StringBuilder alternatives = new StringBuilder();
        for (String s : specials) {
            Integer id = vocab.get(s);
            if (id == null) throw new IllegalArgumentException("special token " + s + " is not in the vocabulary");
            this.specials.put(s, id);
            if (alternatives.length() > 0) alternatives.append('|');
            alternatives.append(Pattern.quote(s));
        }
        this.specialPattern = specials.isEmpty() ? null : Pattern.compile(alternatives.toString());
    }

    private static long pair(int a, int b) { return ((long) a << 32) | (b & 0xFFFFFFFFL); }

    @Override public int vocabSize() { return tokens.length; }

    @Override public String kind() { return "bpe"; }

    @Override public int documentSeparator() {
        Integer id = specials.get(END_OF_TEXT);
        return id == null ? -1 : id;
    }

    public List<String[]> merges() { return merges; }

    public String token(int id) { return tokens[id]; }

    // ---------------------------------------------------------------- encode

    @Override public int[] encode(String text) {
        IntList out = new IntList(Math.max(16, text.length() / 3));
        encode(text, out);
        return out.toArray();
    }

    /** Appends the ids of text to out; special tokens in the text become their ids. */
    public void encode(String text, IntList out) {
        if (specialPattern == null) {
            encodeOrdinary(text, out);
            return;
        }
        Matcher m = specialPattern.matcher(text);
        int from = 0;
        while (m.find()) {
            encodeOrdinary(text.substring(from, m.start()), out);
            out.add(specials.get(m.group()));
            from = m.end();
        }
        encodeOrdinary(text.substring(from), out);
    }

    /** Text with no special-token handling: "<|endoftext|>" in it is ordinary characters. */
    public void encodeOrdinary(CharSequence text, IntList out) {
        Map<String, int[]> c = cache();
        Matcher m = PIECES.matcher(text);
        while (m.find()) {
            String piece = m.group();
            int[] pieceIds = c.get(piece);
            if (pieceIds == null) {
                pieceIds = bpe(piece.getBytes(StandardCharsets.UTF_8));
                if (c.size() > 500_000) c.clear();   // bounded: a cache, not a second vocabulary
                c.put(piece, pieceIds);
            }
            out.addAll(pieceIds);
        }
    }

    private Map<String, int[]> cache() {
        Map<String, int[]> c = cache;
        if (c == null) cache = c = new ConcurrentHashMap<>();   // racing threads at worst build two
        return c;
    }

    /** The merge loop over one piece's bytes. */
    int[] bpe(byte[] bytes) {
        int[] word = new int[bytes.length];
        for (int i = 0; i < bytes.length; i++) word[i] = byteIds[bytes[i] & 0xFF];
        int n = word.length;
        while (n > 1) {
            long best = Long.MAX_VALUE;   // (rank << 32 | merged id) of the best pair
            int left = -1, right = -1;
            for (int i = 0; i + 1 < n; i++) {
                Long r = mergeTable.get(pair(word[i], word[i + 1]));
                if (r != null && r < best) { best = r; left = word[i]; right = word[i + 1]; }
            }
            if (left < 0) break;
            int merged = (int) best, w = 0;
            for (int i = 0; i < n; i++) {
                if (i + 1 < n && word[i] == left && word[i + 1] == right) { word[w++] = merged; i++; }
                else word[w++] = word[i];
            }
            n = w;
        }
        return n == word.length ? word : java.util.Arrays.copyOf(word, n);
    }

    /**
     * Any bytes, valid UTF-8 or not: valid runs are encoded as text, every byte of an invalid sequence as its
     * byte token, so {@code decodeBytes(encodeBytes(b))} gives b back exactly.
     */
    public int[] encodeBytes(byte[] bytes) {
        IntList out = new IntList(bytes.length / 3 + 16);
        CharsetDecoder dec = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT).onUnmappableCharacter(CodingErrorAction.REPORT);
        ByteBuffer in = ByteBuffer.wrap(bytes);
        CharBuffer chars = CharBuffer.allocate(bytes.length + 1);
        while (true) {
            CoderResult r = dec.decode(in, chars, true);
            if (r.isError()) {
                encode(chars.flip().toString(), out);
                chars.clear();
                for (int i = 0; i < r.length(); i++) out.add(byteIds[in.get() & 0xFF]);
            } else {
                dec.flush(chars);
                encode(chars.flip().toString(), out);
                return out.toArray();
            }
        }
    }

    // ---------------------------------------------------------------- decode

    /** The bytes the ids spell (special tokens as their UTF-8 text). */
    public byte[] decodeBytes(int[] idsToDecode) {
        java.io.ByteArrayOutputStream out = new java.io.ByteArrayOutputStream(idsToDecode.length * 4);
        for (int id : idsToDecode) {
            if (id < 0 || id >= tokens.length) throw new IllegalArgumentException("token id " + id + " outside vocabulary of " + tokens.length);
            String t = tokens[id];
            if (specials.containsKey(t)) {
                out.writeBytes(t.getBytes(StandardCharsets.UTF_8));
                continue;
            }
            for (int i = 0; i < t.length(); i++) {
                char ch = t.charAt(i);
                int b = ch < CHAR_BYTE.length ? CHAR_BYTE[ch] : -1;
                if (b < 0) throw new IllegalArgumentException("token " + id + " '" + t + "' is not byte-level");
                out.write(b);
            }
        }
        return out.toByteArray();
    }

    /** Text of the ids; bytes that are not valid UTF-8 become U+FFFD, as GPT-2 decodes. */
    @Override public String decode(int[] idsToDecode) {
        return new String(decodeBytes(idsToDecode), StandardCharsets.UTF_8);
    }

    // ---------------------------------------------------------------- files

    /** From GPT-2's vocab.json and merges.txt (contents); "<|endoftext|>" is special when present. */
    public static ByteLevelBpe fromGpt2Files(String vocabJson, String mergesTxt) {
        Map<String, Integer> vocab = new LinkedHashMap<>();
        try {
            JsonNode v = JSON.readTree(vocabJson);
            if (v == null || !v.isObject()) throw new IllegalArgumentException("vocab.json: expected a JSON object of token -> id");
            for (Iterator<Map.Entry<String, JsonNode>> it = v.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                if (!e.getValue().canConvertToInt()) throw new IllegalArgumentException("vocab.json: id of '" + e.getKey() + "' is not an integer");
                vocab.put(e.getKey(), e.getValue().asInt());
            }
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("vocab.json: not valid JSON (" + e.getOriginalMessage() + ")");
        }
        List<String[]> merges = new ArrayList<>();
        String[] lines = mergesTxt.split("\n");
        for (int i = 0; i < lines.length; i++) {
            String line = lines[i].endsWith("\r") ? lines[i].substring(0, lines[i].length() - 1) : lines[i];
            if (line.isEmpty() || (i == 0 && line.startsWith("#version"))) continue;
            String[] parts = line.split(" ");
            if (parts.length != 2) throw new IllegalArgumentException("merges.txt line " + (i + 1) + ": expected two tokens separated by a space");
            merges.add(parts);
        }
        return new ByteLevelBpe(vocab, merges, vocab.containsKey(END_OF_TEXT) ? List.of(END_OF_TEXT) : List.of());
    }

    /** vocab.json: token -> id in id order. */
    public String vocabJson() {
        ObjectNode v = JSON.createObjectNode();
        for (int i = 0; i < tokens.length; i++) v.put(tokens[i], i);
        return v.toString();
    }

    /** merges.txt with GPT-2's version header. */
    public String mergesTxt() {
        StringBuilder sb = new StringBuilder("#version: 0.2\n");
        for (String[] m : merges) sb.append(m[0]).append(' ').append(m[1]).append('\n');
        return sb.toString();
    }

    /** Hugging Face tokenizers' tokenizer.json for a GPT-2-style byte-level BPE. */
    @Override public String toJson() {
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (Map.Entry<String, Integer> s : specials.entrySet()) {
            ObjectNode t = added.addObject();
            t.put("id", s.getValue());
            t.put("content", s.getKey());
            t.put("single_word", false);
            t.put("lstrip", false);
            t.put("rstrip", false);
            t.put("normalized", true);
            t.put("special", true);
        }
        root.putNull("normalizer");
        root.set("pre_tokenizer", byteLevel(false, true));
        root.set("post_processor", byteLevel(true, false));
        root.set("decoder", byteLevel(true, true));
        ObjectNode model = root.putObject("model");
        model.put("type", "BPE");
        model.putNull("dropout");
        model.putNull("unk_token");
        model.put("continuing_subword_prefix", "");
        model.put("end_of_word_suffix", "");
        model.put("fuse_unk", false);
        model.put("byte_fallback", false);
        ObjectNode vocab = model.putObject("vocab");
        for (int i = 0; i < tokens.length; i++) vocab.put(tokens[i], i);
        ArrayNode m = model.putArray("merges");
        for (String[] pair : merges) m.add(pair[0] + " " + pair[1]);
        return root.toString();
    }

    private static ObjectNode byteLevel(boolean addPrefixSpace, boolean trimOffsets) {
        ObjectNode n = JSON.createObjectNode();
        n.put("type", "ByteLevel");
        n.put("add_prefix_space", addPrefixSpace);
        n.put("trim_offsets", trimOffsets);
        n.put("use_regex", true);
        return n;
    }

    /** Reads Hugging Face's tokenizer.json; only the byte-level BPE that GPT-2 uses is accepted. */
    static ByteLevelBpe fromTokenizerJson(JsonNode root) {
        JsonNode model = root.path("model");
        if (!"BPE".equals(model.path("type").asText()))
            throw new IllegalArgumentException("tokenizer.json: model type '" + model.path("type").asText() + "' is not supported (only BPE)");
        if (!"ByteLevel".equals(root.path("pre_tokenizer").path("type").asText()))
            throw new IllegalArgumentException("tokenizer.json: only the ByteLevel pre-tokenizer (GPT-2's) is supported");
        if (root.path("pre_tokenizer").path("add_prefix_space").asBoolean(false))
            throw new IllegalArgumentException("tokenizer.json: add_prefix_space=true is not supported");
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = model.path("vocab").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        List<String> specials = new ArrayList<>();
        for (JsonNode t : root.path("added_tokens")) {
            vocab.putIfAbsent(t.path("content").asText(), t.path("id").asInt());
            specials.add(t.path("content").asText());
        }
        List<String[]> merges = new ArrayList<>();
        for (JsonNode m : model.path("merges")) {
            if (m.isArray() && m.size() == 2) merges.add(new String[]{m.get(0).asText(), m.get(1).asText()});
            else if (m.isTextual() && m.asText().split(" ").length == 2) merges.add(m.asText().split(" "));
            else throw new IllegalArgumentException("tokenizer.json: malformed merge " + m);
        }
        return new ByteLevelBpe(vocab, merges, specials);
    }

    @Override public boolean equals(Object o) {
        if (!(o instanceof ByteLevelBpe other)) return false;
        if (!java.util.Arrays.equals(tokens, other.tokens) || merges.size() != other.merges.size() || !specials.equals(other.specials)) return false;
        for (int i = 0; i < merges.size(); i++) if (!java.util.Arrays.equals(merges.get(i), other.merges.get(i))) return false;
        return true;
    }

    @Override public int hashCode() { return java.util.Arrays.hashCode(tokens); }
}
