package org.sparkformer.worker.tokenizer;

import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.*;

class ByteLevelBpeTest {
    /** GPT-2's own files, or the test is skipped with a message. */
    static ByteLevelBpe gpt2() throws IOException {
        Path dir = SharedData.find("gpt2");
        Assumptions.assumeTrue(dir != null, "GPT-2's vocab.json/merges.txt not found under ../shared/data/gpt2: GPT-2 checks skipped");
        return ByteLevelBpe.fromGpt2Files(Files.readString(dir.resolve("vocab.json")), Files.readString(dir.resolve("merges.txt")));
    }

    /** texts.txt (escaped, one per line) and expected.tsv, written by reference.py from GPT-2's algorithm in Python. */
    static List<String> referenceTexts() throws IOException {
        return Arrays.stream(resource("texts.txt").split("\n")).map(ByteLevelBpeTest::unescape).toList();
    }

    private static String resource(String name) throws IOException {
        try (var in = ByteLevelBpeTest.class.getResourceAsStream("/gpt2/" + name)) {
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }

    private static String unescape(String s) {
        StringBuilder out = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c == '\\' && i + 1 < s.length()) {
                char n = s.charAt(++i);
                out.append(switch (n) { case 'n' -> '\n'; case 't' -> '\t'; case 'r' -> '\r'; default -> n; });
            } else out.append(c);
        }
        return out.toString();
    }

    @Test void gpt2EncodesLikeGpt2() throws IOException {
        ByteLevelBpe bpe = gpt2();
        List<String> texts = referenceTexts();
        String[] expected = resource("expected.tsv").split("\n");
        assertEquals(texts.size(), expected.length);
        for (int i = 0; i < texts.size(); i++) {
            int[] want = Arrays.stream(expected[i].trim().split(" ")).mapToInt(Integer::parseInt).toArray();
            int[] got = bpe.encode(texts.get(i));
            assertArrayEquals(want, got, "text " + (i + 1) + ": " + texts.get(i));
            assertEquals(texts.get(i), bpe.decode(got));
        }
        // published vectors (tiktoken's tests for GPT-2's r50k vocabulary)
        assertArrayEquals(new int[]{31373, 995}, bpe.encode("hello world"));
        assertArrayEquals(new int[]{31373, 220, 50256}, bpe.encode("hello <|endoftext|>"));
        assertEquals(50257, bpe.vocabSize());
        assertEquals(50256, bpe.documentSeparator());
    }

    @Test void gpt2RoundTripsAnyBytesAndAnyText() throws IOException {
        roundTrips(gpt2(), 400);
    }

    @Test void trainedRoundTripsAnyBytesAndAnyText() {
        roundTrips(trained(300), 400);
    }

    private static void roundTrips(ByteLevelBpe bpe, int cases) {
        Random rnd = new Random(7);
        for (int c = 0; c < cases; c++) {
            byte[] bytes = new byte[rnd.nextInt(64)];
            rnd.nextBytes(bytes);
            assertArrayEquals(bytes, bpe.decodeBytes(bpe.encodeBytes(bytes)), "bytes " + Arrays.toString(bytes));
            StringBuilder sb = new StringBuilder();
            for (int i = rnd.nextInt(40); i > 0; i--) {
                int cp = switch (rnd.nextInt(4)) {
                    case 0 -> 32 + rnd.nextInt(95);
                    case 1 -> " \t\n\r\u00a0\u3000".charAt(rnd.nextInt(6));
                    case 2 -> 0xA0 + rnd.nextInt(0x3000);
                    default -> 0x1F300 + rnd.nextInt(0x300);
                };
                if (Character.isSurrogate((char) cp)) continue;
                sb.appendCodePoint(cp);
            }
            String s = sb.toString();
            assertEquals(s, bpe.decode(bpe.encode(s)), "text " + s);
        }
    }

    static final String CORPUS = "the cat sat on the mat. the dog sat on the log. that cat, this dog; the end.\n".repeat(20)
            + "Numbers 123 456 and ünïcödé wörds, emoji 😀😀 and <|endoftext|> separators.\n";

    static ByteLevelBpe trained(int vocabSize) {
        Map<String, Long> counts = new HashMap<>();
        for (String doc : CORPUS.split(java.util.regex.Pattern.quote(ByteLevelBpe.END_OF_TEXT)))
            BpeTrainer.pieces(doc, p -> counts.merge(p, 1L, Long::sum));
        return BpeTrainer.train(counts, vocabSize, List.of(ByteLevelBpe.END_OF_TEXT));
    }

    @Test void trainingIsDeterministicAndCompresses() {
        ByteLevelBpe a = trained(280), b = trained(280);
        assertEquals(a, b);
        assertEquals(280, a.vocabSize());
        assertEquals(279, a.documentSeparator());
        // a small corpus runs out of pairs seen twice before a large vocabulary is full: training stops there
        assertTrue(trained(1000).vocabSize() < 1000);
        int[] ids = a.encode(CORPUS);
        assertTrue(ids.length < CORPUS.getBytes(StandardCharsets.UTF_8).length / 2, "merges should at least halve the token count: " + ids.length);
        assertEquals(CORPUS, a.decode(ids));
        assertTrue(Arrays.stream(ids).anyMatch(i -> i == 279), "the special token is matched in text");
        // the first merge is the most frequent adjacent byte pair, counted here by brute force
        Map<String, Long> pairs = new HashMap<>();
        for (String doc : CORPUS.split(java.util.regex.Pattern.quote(ByteLevelBpe.END_OF_TEXT)))
            BpeTrainer.pieces(doc, p -> {
                byte[] bs = p.getBytes(StandardCharsets.UTF_8);
                for (int i = 0; i + 1 < bs.length; i++)
                    pairs.merge(ByteLevelBpe.BYTE_CHAR[bs[i] & 0xFF] + " " + ByteLevelBpe.BYTE_CHAR[bs[i + 1] & 0xFF], 1L, Long::sum);
            });
        long max = pairs.values().stream().mapToLong(Long::longValue).max().orElseThrow();
        String first = a.merges().get(0)[0] + " " + a.merges().get(0)[1];
        assertEquals(max, pairs.get(first), "first merge " + first + " is a most frequent pair");
    }

    @Test void hfFilesRoundTrip() {
        ByteLevelBpe a = trained(280);
        assertEquals(a, Tokenizer.fromJson(a.toJson()));
        ByteLevelBpe fromFiles = ByteLevelBpe.fromGpt2Files(a.vocabJson(), a.mergesTxt());
        assertEquals(a, fromFiles);
        assertTrue(a.mergesTxt().startsWith("#version: 0.2\n"));
    }

    @Test void byteTokensFollowGpt2Order() throws IOException {
        ByteLevelBpe ours = trained(260), gpt2 = gpt2();
        for (int i = 0; i < 256; i++) assertEquals(gpt2.token(i), ours.token(i), "byte token " + i);
    }

    @Test void badVocabularySizeAndFilesAreClearErrors() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trained(256));
        assertTrue(e.getMessage().contains("below 256 byte tokens + 1 special"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ByteLevelBpe.fromGpt2Files("{\"a\":0}", ""));
        assertTrue(e.getMessage().contains("lacks the byte token"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ByteLevelBpe.fromGpt2Files("[1,2]", ""));
        assertTrue(e.getMessage().contains("vocab.json"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> Tokenizer.fromJson("{\"model\":{\"type\":\"WordPiece\"}}"));
    }

    @Test void streamingDecoderHoldsBackSplitCharacters() {
        ByteLevelBpe bpe = trained(270);
        String text = "ünïcödé 😀 wörds";
        StringBuilder streamed = new StringBuilder();
        StreamingDecoder dec = new StreamingDecoder(bpe);
        for (int id : bpe.encode(text)) {
            String part = dec.push(id);
            assertFalse(part.contains("\uFFFD"), "printed a half character: " + part);
            streamed.append(part);
        }
        assertEquals(text, streamed.toString());
        // byte by byte: the emoji's four bytes arrive as four byte tokens
        StreamingDecoder bytes = new StreamingDecoder(bpe);
        StringBuilder out = new StringBuilder();
        for (int id : bpe.encodeBytes("a😀".getBytes(StandardCharsets.UTF_8))) out.append(bytes.push(id));
        assertEquals("a😀", out.toString());
    }
}
