package org.sparkformer.driver;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.deeplearning4j.nn.graph.ComputationGraph;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;
import org.sparkformer.worker.generate.KvCache;
import org.sparkformer.worker.generate.NextToken;
import org.sparkformer.worker.generate.Recompute;
import org.sparkformer.worker.generate.Sampler;
import org.sparkformer.worker.model.Gpt;
import org.sparkformer.worker.model.GptConfig;

import java.io.PrintStream;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * {@code sparkformer bench --generate [--preset P | --checkpoint DIR] [--new-tokens 256] [--threads K]}:
 * greedy generation from a one-token prompt with the KV cache and with full recomputation, after a short
 * warm-up of each. Prints one JSON line: tokens/s of both, the speed-up, and whether the outputs are identical.
 * Without a checkpoint the model is the preset's, freshly initialised (vocabulary 65).
 */
final class GenerateBench {
    private GenerateBench() {}

    static int run(Map<String, String> flags, PrintStream out) {
        Main.allowFlags(flags, "bench --generate", "generate", "preset", "checkpoint", "new-tokens", "threads");
        int newTokens = Main.intFlag(flags, "new-tokens", 256), threads = Main.intFlag(flags, "threads", 0);
        if (newTokens < 1) throw new UserError("--new-tokens must be >= 1");
        if (threads > 0) Nd4j.getEnvironment().setMaxThreads(threads);
        ComputationGraph graph;
        GptConfig model;
        if (flags.containsKey("checkpoint")) {
            Checkpoint.Loaded m = Checkpoint.load(flags.get("checkpoint"), new Configuration(), false);
            graph = m.graph();
            model = m.model();
        } else {
            TrainConfig cfg = new TrainConfig();
            if (flags.containsKey("preset")) cfg.set("preset", flags.get("preset"), "--preset");
            model = cfg.model(65);
            graph = Gpt.build(model, Optimizer.updater(cfg), 0, DataType.FLOAT);
        }
        int[] prompt = {0};
        NextToken cached = new KvCache(graph, model), full = new Recompute(graph, model.blockSize);
        new Sampler(cached).generate(prompt, 16, Sampler.Settings.greedy(), null);   // warm-up (JIT, allocations)
        new Sampler(full).generate(prompt, 16, Sampler.Settings.greedy(), null);
        long t0 = System.nanoTime();
        int[] a = new Sampler(cached).generate(prompt, newTokens, Sampler.Settings.greedy(), null);
        double cachedS = (System.nanoTime() - t0) / 1e9;
        t0 = System.nanoTime();
        int[] b = new Sampler(full).generate(prompt, newTokens, Sampler.Settings.greedy(), null);
        double fullS = (System.nanoTime() - t0) / 1e9;
        ObjectNode r = new ObjectMapper().createObjectNode();
        r.put("model", model.toString());
        r.put("new_tokens", newTokens);
        r.put("kv_cache_tokens_per_s", Math.round(newTokens / cachedS * 10) / 10.0);
        r.put("recompute_tokens_per_s", Math.round(newTokens / fullS * 10) / 10.0);
        r.put("speedup", Math.round(fullS / cachedS * 100) / 100.0);
        r.put("identical_greedy_output", Arrays.equals(a, b));
        out.println(r);
        return 0;
    }
}
