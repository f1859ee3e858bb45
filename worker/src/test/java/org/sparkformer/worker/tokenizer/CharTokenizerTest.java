package org.sparkformer.worker.tokenizer;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.*;

class CharTokenizerTest {
    @Test void roundTripsTextIncludingSupplementaryCharacters() {
        String text = "hello, wörld 😀\n\tend";
        CharTokenizer t = CharTokenizer.fromText(text);
        assertEquals(text, t.decode(t.encode(text)));
        assertEquals(text.codePoints().distinct().count(), t.vocabSize());
    }

    @Test void unseenCharacterIsAClearError() {
        CharTokenizer t = CharTokenizer.fromText("abc");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.encode("abz"));
        assertTrue(e.getMessage().contains("'z' (U+007A) at position 2"), e.getMessage());
    }

    @Test void jsonRoundTripAndBadJsonRejected() {
        CharTokenizer t = CharTokenizer.fromText("the quick brown fox");
        assertEquals(t, CharTokenizer.fromJson(t.toJson()));
        assertThrows(IllegalArgumentException.class, () -> CharTokenizer.fromJson("{\"type\":\"bpe\"}"));
        assertThrows(IllegalArgumentException.class, () -> CharTokenizer.fromJson("not json"));
        assertThrows(IllegalArgumentException.class, () -> CharTokenizer.fromJson("{\"type\":\"char\",\"codepoints\":[-4]}"));
    }
}
