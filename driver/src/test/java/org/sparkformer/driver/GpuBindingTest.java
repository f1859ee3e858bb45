package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * GPU assignment: the discovery script's format and the binding decision. Spark handing fake GPU ids to real executor
 * JVMs, and each replica binding to its own, is checked on LocalClusterTest's cluster.
 */
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
}
