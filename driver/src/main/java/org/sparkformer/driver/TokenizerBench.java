package org.sparkformer.driver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.Map;

/**
 * {@code sparkformer bench --tokenizer DIR|gpt2:FOLDER [--input FILE] [--max-mb M]}: encoding speed on one
 * thread (= per core), after 3 s of JIT warm-up on another instance. "cold" is a fresh tokenizer's first pass
 * (every distinct piece merged once, as on new text); "warm" repeats the pass with the piece cache filled. Default input: the JDK's sources,
 * first 16 MB. Prints one JSON line.
 */
final class TokenizerBench {
    private TokenizerBench() {}

    static int run(Map<String, String> flags, PrintStream out) {
        Main.allowFlags(flags, "bench --tokenizer", "tokenizer", "input", "max-mb");
        Configuration hadoop = new Configuration();
        String spec = flags.get("tokenizer");
        String input = flags.getOrDefault("input", "");
        String text = Corpus.read(input.isEmpty() ? Corpus.defaultJdkSources() : input, hadoop, "--input");
        int maxChars = Main.intFlag(flags, "max-mb", 16) << 20;
        if (text.length() > maxChars) text = text.substring(0, maxChars);
        double mb = text.getBytes(StandardCharsets.UTF_8).length / 1e6;

        // JIT warm-up on a throwaway instance (its piece cache is its own), so "cold" measures new text, not the JIT
        Tokenizer jit = TokenizerFiles.load(spec, hadoop, "--tokenizer");
        String warmText = text.substring(0, Math.min(text.length(), 2 << 20));
        for (long end = System.nanoTime() + 3_000_000_000L; System.nanoTime() < end; ) jit.encode(warmText);
        Tokenizer cold = TokenizerFiles.load(spec, hadoop, "--tokenizer");
        long t0 = System.nanoTime();
        int tokens = cold.encode(text).length;
        double coldSeconds = (System.nanoTime() - t0) / 1e9;
        double warmSeconds = Double.MAX_VALUE;
        for (int i = 0; i < 3; i++) {
            long t = System.nanoTime();
            cold.encode(text);
            warmSeconds = Math.min(warmSeconds, (System.nanoTime() - t) / 1e9);
        }
        ObjectNode r = new ObjectMapper().createObjectNode();
        r.put("tokenizer", spec);
        r.put("kind", cold.kind());
        r.put("vocab_size", cold.vocabSize());
        r.put("input_mb", Math.round(mb * 100) / 100.0);
        r.put("tokens", tokens);
        r.put("bytes_per_token", Math.round(mb * 1e6 / tokens * 100) / 100.0);
        r.put("cold_mb_per_s", Math.round(mb / coldSeconds * 100) / 100.0);
        r.put("warm_mb_per_s", Math.round(mb / warmSeconds * 100) / 100.0);
        r.put("threads", 1);
        out.println(r);
        return 0;
    }
}
