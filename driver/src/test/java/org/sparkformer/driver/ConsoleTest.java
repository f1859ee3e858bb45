package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.*;

/** What a person (a terminal) and a log collector (a pipe, JSON logs) see of a real training process. */
class ConsoleTest {
    @TempDir Path tmp;

    /** This JVM's flags (Spark's --add-opens, -XX: and -D options, the log config) and class path, running Main with args. */
    static List<String> java(String logConfig, String... args) {
        List<String> cmd = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java").toString()));
        for (String a : ManagementFactory.getRuntimeMXBean().getInputArguments())
            if (a.startsWith("--add-opens") || a.startsWith("-XX:") || (a.startsWith("-D") && !a.startsWith("-Dlog4j2.configurationFile"))) cmd.add(a);
        cmd.add("-Dlog4j2.configurationFile=" + logConfig);
        cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), Main.class.getName()));
        cmd.addAll(List.of(args));
        return cmd;
    }

    /** Training on one local replica of a tiny model, checkpointing every 10 steps; flags added. */
    static String[] trainArgs(Path data, Path out, String... flags) {
        List<String> args = new ArrayList<>(List.of("train", "--data", data.toString(), "--out", out.toString(), "--master", "local[1]",
                "--workers", "1", "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "8",
                "--averaging-frequency", "5", "--checkpoint-interval", "10",
                "--samples", "0", "--eval-sample-tokens", "0", "--tensorboard", "none", "--progress", "log"));
        args.addAll(List.of(flags));
        return args.toArray(String[]::new);
    }

    /** {@link #trainArgs} as a process of its own (one that can be killed or halted), JVM options added. */
    static List<String> childTrain(Path data, Path out, List<String> jvm, String... flags) {
        List<String> cmd = java(conf("log4j2.xml").toString(), trainArgs(data, out, flags));
        cmd.addAll(1, jvm);
        return cmd;
    }

    /** {@link #trainArgs} in this JVM (where no process needs to die, a JVM start is saved); must succeed. */
    static void trainHere(Path data, Path out, String... flags) throws Exception {
        assertEquals(0, Main.run(trainArgs(data, out, flags), new java.io.PrintStream(new java.io.ByteArrayOutputStream())));
    }

    static Path conf(String name) {
        for (Path dir = Path.of("").toAbsolutePath(); dir != null; dir = dir.getParent())
            if (Files.exists(dir.resolve("conf").resolve(name))) return dir.resolve("conf").resolve(name);
        throw new AssertionError("conf/" + name + " not found");
    }

    String[] trainArgs(String out) throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(800, 4));
        return new String[]{"train", "--data", data.toString(), "--out", tmp.resolve(out).toString(), "--master", "local[1]",
                "--n-layer", "1", "--n-head", "2", "--n-embd", "32", "--block-size", "16", "--batch-size", "8",
                "--steps", "20", "--eval-interval", "10", "--averaging-frequency", "5", "--samples", "0", "--eval-sample-tokens", "0"};
    }

    static String[] run(List<String> cmd) throws Exception {
        Exited e = exec(cmd, 180);
        assertEquals(0, e.code(), e.out() + e.err());
        return new String[]{e.out(), e.err()};
    }

    /** How a child process ended: its exit code and what it printed. */
    record Exited(int code, String out, String err) {}

    /** Runs a child process for at most the given time; one still running then is killed with its children (a failure). */
    static Exited exec(List<String> cmd, int seconds) throws Exception {
        Path outFile = Files.createTempFile("out", ".txt"), errFile = Files.createTempFile("err", ".txt");
        Process p = new ProcessBuilder(cmd).redirectOutput(outFile.toFile()).redirectError(errFile.toFile()).start();
        boolean finished = p.waitFor(seconds, TimeUnit.SECONDS);
        if (!finished) {
            p.descendants().forEach(ProcessHandle::destroyForcibly);
            p.destroyForcibly();
            p.waitFor(30, TimeUnit.SECONDS);
        }
        String out = Files.readString(outFile, StandardCharsets.UTF_8), err = Files.readString(errFile, StandardCharsets.UTF_8);
        assertTrue(finished, "still running after " + seconds + " s (killed): " + out + err);
        return new Exited(p.exitValue(), out, err);
    }

    @Test void pipedOutputGetsPlainJsonLogLines() throws Exception {
        String[] r = run(java(conf("log4j2-json.xml").toString(), trainArgs("piped")));
        assertFalse(r[0].contains("\u001b[2K"), "no redraws into a pipe");
        ObjectMapper json = new ObjectMapper();
        List<String> messages = new ArrayList<>();
        for (String line : r[1].split("\n")) {
            if (line.isBlank()) continue;
            JsonNode n = json.readTree(line);   // every log line is one JSON object
            assertTrue(n.has("@timestamp") && n.has("log.level"), line);
            messages.add(n.path("message").asText());
        }
        for (int step : new int[]{5, 10, 15, 20})
            assertTrue(messages.stream().anyMatch(m -> m.startsWith("step " + step + "/20 | loss")), "a line per round: " + messages);
    }

    @Test void terminalGetsOneRedrawnLine() throws Exception {
        Assumptions.assumeTrue(Files.isExecutable(Path.of("/usr/bin/script")), "util-linux script(1) not installed: no pseudo-terminal");
        StringBuilder shell = new StringBuilder();
        for (String a : java(conf("log4j2.xml").toString(), trainArgs("tty"))) shell.append('\'').append(a.replace("'", "'\\''")).append("' ");
        shell.append("2>/dev/null");
        String[] r = run(List.of("/usr/bin/script", "-qec", shell.toString(), "/dev/null"));
        String tty = r[0];
        for (int step : new int[]{5, 10, 15, 20})
            assertTrue(tty.contains(Progress.Bar.REDRAW + "step " + step + "/20 ["), "redrawn status for step " + step + ": " + tty);
        assertTrue(tty.contains(Progress.Bar.REDRAW + "step 10/20 | loss"), "evaluations stay as lines");
        assertTrue(tty.contains("done: 20 steps"));
    }
}
