package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.spark.SparkConf;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** GPU assignment: the discovery script's format, the binding decision, and Spark handing fake GPU ids to real executor JVMs. */
class GpuBindingTest {
    @TempDir Path tmp;

    static Path root() {
        Path p = Path.of("").toAbsolutePath();
        return Files.exists(p.resolve("scripts")) ? p : p.getParent();
    }

    static Path executable(Path file, String text) throws Exception {
        Files.writeString(file, text);
        Files.setPosixFilePermissions(file, PosixFilePermissions.fromString("rwxr-xr-x"));
        return file;
    }

    static String run(List<String> cmd, String path) throws Exception {
        ProcessBuilder pb = new ProcessBuilder(cmd).redirectErrorStream(true);
        pb.environment().put("PATH", path);
        Process p = pb.start();
        String out = new String(p.getInputStream().readAllBytes()).trim();
        assertEquals(0, p.waitFor(), out);
        return out;
    }

    @Test void discoveryScriptSpeaksSparksJsonFromNvidiaSmi() throws Exception {
        Path script = root().resolve("scripts/gpu-discovery.sh");
        Path bin = Files.createDirectories(tmp.resolve("bin"));
        // no nvidia-smi: a CPU machine has no GPUs
        JsonNode none = new ObjectMapper().readTree(run(List.of("bash", script.toString()), bin + ":/usr/bin:/bin"));
        assertEquals("gpu", none.get("name").asText());
        assertEquals(0, none.get("addresses").size());
        // a fake nvidia-smi that reports two devices, as the real one prints them (index per line)
        executable(bin.resolve("nvidia-smi"), "#!/bin/sh\nprintf ' 0\\n 1\\n'\n");
        JsonNode two = new ObjectMapper().readTree(run(List.of("bash", script.toString()), bin + ":/usr/bin:/bin"));
        assertEquals("[\"0\",\"1\"]", two.get("addresses").toString());
    }

    @Test void decision() {
        assertEquals("ND4J CPU backend (unchanged)", GpuBinding.decide(null, true, 0));
        assertTrue(GpuBinding.decide("3", true, 0).contains("CPU path unchanged"));
        assertEquals("ND4J CUDA device 1", GpuBinding.decide("1", false, 2));
        assertThrows(IllegalStateException.class, () -> GpuBinding.decide("2", false, 2));
        assertThrows(IllegalStateException.class, () -> GpuBinding.decide("gpu0", false, 2));
    }

    /** Standalone workers discover two fake GPUs; each executor gets one, each task one: the replicas log it and stay on the CPU. */
    @Test void eachReplicaLearnsTheGpuSparkAssignedIt() throws Exception {
        Path fake = executable(tmp.resolve("fake-gpus.sh"), "#!/bin/sh\necho '{\"name\":\"gpu\",\"addresses\":[\"3\",\"7\"]}'\n");
        SparkConf conf = LocalClusterTest.cluster()
                .set("spark.worker.resource.gpu.amount", "2")
                .set("spark.worker.resource.gpu.discoveryScript", fake.toString())
                .set("spark.executor.resource.gpu.amount", "1")
                .set("spark.executor.resource.gpu.discoveryScript", fake.toString())
                .set("spark.task.resource.gpu.amount", "1");
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(1000, 8));
        Path run = tmp.resolve("run");
        TrainConfig c = SparkTrainingTest.tinyConfig(run, 10, data.toString());
        c.samples = 0;
        try (JavaSparkContext sc = new JavaSparkContext(conf)) {
            Trainer.Result r = new Trainer(c, null, false).run(sc);
            assertTrue(r.finalValLoss() < r.firstValLoss(), "the CPU path trains as before");
        }
        List<String> devices = new ArrayList<>();
        for (String line : Files.readAllLines(run.resolve("metrics.jsonl"))) {
            JsonNode m = new ObjectMapper().readTree(line);
            m.path("devices").forEach(d -> devices.add(d.asText()));
        }
        assertEquals(2, devices.size(), devices.toString());
        for (String d : devices) {
            assertTrue(d.matches("executor [01]: GPU [37] assigned, ND4J backend is CPU: not bound, CPU path unchanged.*"), d);
        }
    }
}
