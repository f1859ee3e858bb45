package org.sparkformer.driver;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;
import static org.sparkformer.driver.GradientSharingTest.executorsOf;
import static org.sparkformer.driver.GradientSharingTest.sharingTrain;

/** --sync sharing whose mesh cannot form (a `sparkformer train` process, as in GradientSharingTest) fails in bounded time with the reason. */
class GradientSharingFailureTest {
    @TempDir Path tmp;

    @Test void aMeshThatCannotFormFailsInBoundedTimeWithTheReason() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(2000, 8));
        // executors advertise an address that is not theirs (TEST-NET-2): their Aeron endpoints cannot bind or be reached
        long t0 = System.nanoTime();
        ConsoleTest.Exited e = ConsoleTest.exec(sharingTrain(data, tmp.resolve("run-broken"), 20,
                List.of("-Dspark.executorEnv.DL4J_VOID_IP=198.51.100.7"), "--sync-timeout", "8"), 150);
        assertEquals(2, e.code(), e.out() + e.err());
        List<String> said = e.err().lines().filter(l -> l.startsWith("sparkformer: ")).toList();
        assertEquals(1, said.size(), e.err());
        assertTrue(said.get(0).startsWith("sparkformer: --sync sharing:"), said.get(0));
        assertTrue((System.nanoTime() - t0) / 1e9 < 120, "failed within bounded time");
        assertEquals(List.of(), executorsOf(tmp.resolve("run-broken")), "no executor JVM outlives its run");
    }
}
