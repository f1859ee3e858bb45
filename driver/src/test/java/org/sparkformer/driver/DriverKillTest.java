package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/**
 * kill -9 of the driver process after a checkpoint, then --resume: on one replica with dropout 0 the resumed
 * run's per-step losses equal the uninterrupted run's to 1e-6 (Adam state, data position and LR schedule
 * position all restored).
 */
class DriverKillTest {
    @TempDir Path tmp;

    Path data() throws Exception {
        Path data = tmp.resolve("corpus.txt");
        return Files.exists(data) ? data : TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(1500, 12));
    }

    String[] flags(String... extra) {
        List<String> flags = new ArrayList<>(List.of("--steps", "40", "--eval-interval", "40"));
        flags.addAll(List.of(extra));
        return flags.toArray(String[]::new);
    }

    static Map<Long, Double> losses(Path run) throws Exception {
        Map<Long, Double> out = new TreeMap<>();
        ObjectMapper json = new ObjectMapper();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = json.readTree(line);
            if (m.has("train_loss") && m.get("step").asLong() > 0) out.put(m.get("step").asLong(), m.get("train_loss").asDouble());
        }
        return out;
    }

    @Test void resumeAfterKillMinus9MatchesTheUninterruptedRun() throws Exception {
        Path full = tmp.resolve("full"), killed = tmp.resolve("killed");
        ConsoleTest.trainHere(data(), full, flags());   // the uninterrupted run: in this JVM

        Process p = new ProcessBuilder(ConsoleTest.childTrain(data(), killed, List.of(), flags())).redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();
        long deadline = System.currentTimeMillis() + 120_000;
        while (p.isAlive() && System.currentTimeMillis() < deadline && !Files.exists(killed.resolve("ckpt/last/config.json")))
            Thread.sleep(20);
        assertTrue(p.isAlive(), "the run ended before it could be killed");
        p.destroyForcibly();   // SIGKILL: no shutdown hooks, nothing flushed
        assertTrue(p.waitFor(30, TimeUnit.SECONDS));
        long at = Checkpoint.load(killed.toString(), new org.apache.hadoop.conf.Configuration(), false).state().step;
        assertTrue(at > 0 && at < 40, "killed after a checkpoint, before the end: step " + at);

        ConsoleTest.trainHere(data(), killed, flags("--resume", killed.toString()));
        Map<Long, Double> a = losses(full), b = losses(killed);
        assertEquals(a.keySet(), b.keySet());
        for (long step : a.keySet()) assertEquals(a.get(step), b.get(step), 1e-6, "train loss at step " + step + " (killed at " + at + ")");
    }
}
