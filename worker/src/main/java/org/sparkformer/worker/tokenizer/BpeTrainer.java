package org.sparkformer.worker.tokenizer;

import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.Set;
import java.util.TreeMap;

/**
 * Learns a byte-level BPE from piece counts (GPT-2 regex pieces and how often each occurs, counted
 * wherever the text is: on Spark's executors for a dataset). Starts from the 256 byte tokens in GPT-2's
 * order and repeatedly merges the most frequent adjacent pair, weighted by piece counts, until the
 * vocabulary (specials included) reaches the asked size or no pair occurs twice. Ties go to the pair of
 * smaller ids, so the same counts always give the same vocabulary.
 */
public final class BpeTrainer {
    private BpeTrainer() {}

    public static int minVocabSize(List<String> specials) { return 256 + specials.size(); }

    /** Pieces of text as GPT-2's pre-tokenizer cuts them (for counting). */
    public static void pieces(CharSequence text, java.util.function.Consumer<String> sink) {
        java.util.regex.Matcher m = ByteLevelBpe.PIECES.matcher(text);
        while (m.find()) sink.accept(m.group());
    }

    public static ByteLevelBpe train(Map<String, Long> pieceCounts, int vocabSize, List<String> specials) {
        if (vocabSize < minVocabSize(specials))
            throw new IllegalArgumentException("vocabulary size " + vocabSize + " is below 256 byte tokens + " + specials.size() + " special tokens");
        List<String> tokens = new ArrayList<>();
        Map<String, Integer> ids = new HashMap<>();
        for (int i = 0; i < 256; i++) {
            String t = String.valueOf(ByteLevelBpe.BYTE_CHAR[ByteLevelBpe.BYTE_ORDER[i]]);
            tokens.add(t);
            ids.put(t, i);
        }
        int[] byteId = new int[256];
        for (int i = 0; i < 256; i++) byteId[ByteLevelBpe.BYTE_ORDER[i]] = i;

        // words in a fixed order (sorted), as byte-token id sequences, with their counts
        TreeMap<String, Long> sorted = new TreeMap<>(pieceCounts);
        int nWords = sorted.size();
        int[][] words = new int[nWords][];
        long[] counts = new long[nWords];
        int w = 0;
        for (Map.Entry<String, Long> e : sorted.entrySet()) {
            byte[] b = e.getKey().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            words[w] = new int[b.length];
            for (int i = 0; i < b.length; i++) words[w][i] = byteId[b[i] & 0xFF];
            counts[w++] = e.getValue();
        }

        Map<Long, Long> pairCount = new HashMap<>();
        Map<Long, Set<Integer>> pairWords = new HashMap<>();
        for (int i = 0; i < nWords; i++) countPairs(words[i], counts[i], i, +1, pairCount, pairWords);
        PriorityQueue<long[]> queue = new PriorityQueue<>(BpeTrainer::byCountThenIds);
        for (Map.Entry<Long, Long> e : pairCount.entrySet()) queue.add(new long[]{e.getValue(), e.getKey()});

        List<String[]> merges = new ArrayList<>();
        int target = vocabSize - specials.size();
        while (tokens.size() < target && !queue.isEmpty()) {
            long[] top = queue.poll();
            long key = top[1];
            Long current = pairCount.get(key);
            if (current == null || current != top[0]) continue;   // stale entry
            if (current < 2) break;
            int a = (int) (key >>> 32), b = (int) key;
            String merged = tokens.get(a) + tokens.get(b);
            Integer id = ids.get(merged);   // two merges can spell the same string: one id for it
            if (id == null) {
                id = tokens.size();
                tokens.add(merged);
                ids.put(merged, id);
            }
            merges.add(new String[]{tokens.get(a), tokens.get(b)});
            Set<Integer> touched = pairWords.remove(key);
            pairCount.remove(key);
            Set<Long> changed = new HashSet<>();
            for (int wi : touched) {
                int[] word = words[wi];
                changed.addAll(countPairs(word, counts[wi], wi, -1, pairCount, pairWords));
                words[wi] = mergePair(word, a, b, id);
                changed.addAll(countPairs(words[wi], counts[wi], wi, +1, pairCount, pairWords));
            }
            for (long k : changed) {
                Long c = pairCount.get(k);
                if (c != null && c > 0) queue.add(new long[]{c, k});
            }
        }
        Map<String, Integer> vocab = new LinkedHashMap<>();
        for (int i = 0; i < tokens.size(); i++) vocab.put(tokens.get(i), i);
        for (String s : specials) {
            if (vocab.containsKey(s)) throw new IllegalArgumentException("special token " + s + " collides with a learned token");
            vocab.put(s, vocab.size());
        }
        return new ByteLevelBpe(vocab, merges, specials);
    }

    private static int byCountThenIds(long[] x, long[] y) {
        int c = Long.compare(y[0], x[0]);
        return c != 0 ? c : Long.compare(x[1], y[1]);
    }

    /** Adds (sign +1) or removes (-1) a word's adjacent pairs; returns the pairs touched. */
    private static List<Long> countPairs(int[] word, long count, int wordIndex, int sign,
                                         Map<Long, Long> pairCount, Map<Long, Set<Integer>> pairWords) {
        List<Long> touched = new ArrayList<>(word.length);
        for (int i = 0; i + 1 < word.length; i++) {
            long key = ((long) word[i] << 32) | word[i + 1];
            long c = pairCount.getOrDefault(key, 0L) + sign * count;
            if (c <= 0) pairCount.remove(key);
            else pairCount.put(key, c);
            if (sign > 0) pairWords.computeIfAbsent(key, k -> new HashSet<>()).add(wordIndex);
            touched.add(key);
        }
        return touched;
    }

    private static int[] mergePair(int[] word, int a, int b, int merged) {
        int[] out = new int[word.length];
        int n = 0;
        for (int i = 0; i < word.length; i++) {
            if (i + 1 < word.length && word[i] == a && word[i + 1] == b) { out[n++] = merged; i++; }
            else out[n++] = word[i];
        }
        return java.util.Arrays.copyOf(out, n);
    }
}
