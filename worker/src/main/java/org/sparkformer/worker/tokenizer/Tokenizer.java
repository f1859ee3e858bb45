package org.sparkformer.worker.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.Serializable;

/**
 * Text to token ids and back. Two kinds: {@link CharTokenizer} (one token per code point) and
 * {@link ByteLevelBpe} (GPT-2's byte-level BPE, trained or loaded). Each saves itself as one JSON
 * document, the checkpoint's tokenizer.json; {@link #fromJson} reads either back.
 */
public interface Tokenizer extends Serializable {
    int vocabSize();

    int[] encode(String text);

    String decode(int[] ids);

    /** "char" or "bpe". */
    String kind();

    /** Id inserted between documents when preparing a dataset, or -1 when the vocabulary has none. */
    int documentSeparator();

    /** The tokenizer as one JSON document (for BPE: Hugging Face's tokenizer.json). */
    String toJson();

    static Tokenizer fromJson(String json) {
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(json);
        } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
            throw new IllegalArgumentException("tokenizer is not valid JSON: " + e.getOriginalMessage());
        }
        if (root != null && root.has("model")) return ByteLevelBpe.fromTokenizerJson(root);
        return CharTokenizer.fromJson(json);
    }
}
