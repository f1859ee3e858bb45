package org.sparkformer.driver;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** Credentials never reach a log line or a config dump. */
class RedactSecretsTest {
    static final String SECRET = "AKIAxSUPERxSECRETx42";

    @Test void secretLookingSettingsAreMasked() {
        for (String line : List.of(
                "fs.s3a.secret.key=" + SECRET,
                "setting fs.s3a.access.key = " + SECRET + " for bucket",
                "{\"spark.ssl.keyStorePassword\": \"" + SECRET + "\"}",
                "javax.jdo.option.ConnectionPassword -> " + SECRET,
                "--conf spark.authenticate.secret=" + SECRET + " --conf x=y",
                "hadoop.security.credential.provider.path: " + SECRET,
                "dfs.webhdfs.oauth2.access.token: " + SECRET)) {
            String r = RedactSecrets.redact(line);
            assertFalse(r.contains(SECRET), line + " -> " + r);
            assertTrue(r.contains(RedactSecrets.MASK), r);
        }
        // ordinary settings and text pass unchanged
        for (String line : List.of("fs.s3a.endpoint=http://minio:9000", "step 10/100 | loss 2.31 | tokens 40,960", "spark.executor.memory=4g"))
            assertEquals(line, RedactSecrets.redact(line));
    }

    /** The launcher's Log4j2 configurations: a child process logs a secret through Log4j2; stderr does not show it. */
    @Test void everyLogLineOfBothConfigurationsIsRedacted() throws Exception {
        for (String conf : List.of("log4j2.xml", "log4j2-json.xml")) {
            List<String> cmd = new java.util.ArrayList<>(List.of(java.nio.file.Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "-Dlog4j2.configurationFile=" + ConsoleTest.conf(conf), "-cp", System.getProperty("java.class.path"),
                    LogSomething.class.getName(), SECRET));
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String out = new String(p.getInputStream().readAllBytes());
            assertEquals(0, p.waitFor(), out);
            assertTrue(out.contains("fs.s3a.secret.key"), conf + ": the line was logged: " + out);
            assertFalse(out.contains(SECRET), conf + ": " + out);
        }
    }

    /** A process that logs a Hadoop-style config dump at WARN from a Spark-like logger and at INFO from ours. */
    public static final class LogSomething {
        public static void main(String[] args) {
            org.apache.logging.log4j.LogManager.getLogger("org.apache.spark.SparkConf").warn("config: fs.s3a.secret.key={}, fs.s3a.endpoint=x", args[0]);
            org.apache.logging.log4j.LogManager.getLogger(Trainer.class).info("hadoop: {\"fs.s3a.secret.key\": \"{}\"}", args[0]);
        }
    }
}
