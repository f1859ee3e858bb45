package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import org.apache.spark.internal.config.ConfigEntry$;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;

/**
 * deploy/kubernetes: the SparkApplication manifest, the spark-submit example and the Dockerfile name things
 * that exist: the main class, the paths inside the image (the dist tarball's layout), config keys Spark knows,
 * sparkformer flags the CLI accepts, and the GPU request with its discovery script.
 */
class KubernetesManifestTest {
    static final Path ROOT = GpuBindingTest.root();
    /** /opt/sparkformer/<path> in the image is <path> of the dist tarball: lib/ holds the jar, the rest mirrors the repository. */
    static final Pattern IMAGE_PATH = Pattern.compile("/opt/sparkformer/([A-Za-z0-9_./-]+)");

    static void checkImagePath(String rel) throws Exception {
        if (rel.equals("lib/sparkformer-dist.jar")) {
            String pom = Files.readString(ROOT.resolve("deploy/dist/pom.xml")), tarball = Files.readString(ROOT.resolve("deploy/dist/tarball.xml"));
            assertTrue(pom.contains("<outputFile>${project.build.directory}/sparkformer-dist.jar</outputFile>"), "the dist build makes sparkformer-dist.jar");
            assertTrue(tarball.contains("sparkformer-dist.jar</source><outputDirectory>lib</outputDirectory>"), "the tarball puts it in lib/");
        } else {
            assertTrue(Files.exists(ROOT.resolve(rel)), "/opt/sparkformer/" + rel + " comes from " + rel + " in the repository");
            String top = rel.split("/")[0];
            assertTrue(Files.readString(ROOT.resolve("deploy/dist/tarball.xml")).contains("../../" + top + "</directory>"), top + "/ is in the tarball");
        }
    }

    /** A key Spark defines (core keys through its ConfigEntry registry), or one of the families it reads by prefix. */
    static void checkSparkKey(String key) {
        if (key.matches("spark\\.(executor|driver|task)\\.resource\\.gpu\\.(amount|discoveryScript|vendor)")) return;
        if (key.startsWith("spark.executorEnv.") || key.startsWith("spark.kubernetes.")) return;   // prefix families; Kubernetes keys live in spark-kubernetes
        if (key.equals(ExecutorMemory.OFF_HEAP)) return;
        org.apache.spark.internal.config.package$.MODULE$.EXECUTOR_MEMORY();     // loads Spark's core entries into the registry
        org.apache.spark.internal.config.Kryo$.MODULE$.KRYO_USER_REGISTRATORS();  // and the Kryo ones
        assertNotNull(ConfigEntry$.MODULE$.findEntry(key), "Spark knows " + key);
    }

    static void checkArguments(List<String> args) {
        assertEquals("train", args.get(0));
        for (String a : args.subList(1, args.size()))
            if (a.startsWith("--")) assertTrue(TrainConfig.isKey(a.substring(2)), "train accepts " + a);
    }

    /** deploy/yarn/spark-defaults.conf: every key one Spark (core or its YARN module) or our driver reads. */
    @Test void yarnDefaultsNameKeysSparkKnows() throws Exception {
        org.apache.spark.deploy.yarn.config.package$.MODULE$.MAX_APP_ATTEMPTS();   // loads spark-yarn's entries
        List<String> keys = new ArrayList<>();
        for (String line : Files.readAllLines(GpuBindingTest.root().resolve("deploy/yarn/spark-defaults.conf"))) {
            if (line.isBlank() || line.startsWith("#")) continue;
            String key = line.trim().split("\\s+")[0];
            keys.add(key);
            if (key.equals("spark.master") || key.startsWith("spark.yarn.appMasterEnv.")) continue;
            checkSparkKey(key);
        }
        assertTrue(keys.containsAll(List.of("spark.master", "spark.submit.deployMode", ExecutorMemory.OFF_HEAP)), keys.toString());
    }

    @Test void sparkApplicationManifestNamesWhatExists() throws Exception {
        JsonNode app = new ObjectMapper(new YAMLFactory()).readTree(ROOT.resolve("deploy/kubernetes/sparkformer-train.yaml").toFile());
        assertEquals("SparkApplication", app.get("kind").asText());
        assertEquals("sparkoperator.k8s.io/v1beta2", app.get("apiVersion").asText());
        JsonNode spec = app.get("spec");
        assertEquals(Main.class.getName(), spec.get("mainClass").asText());
        Class.forName(spec.get("mainClass").asText());
        String jar = spec.get("mainApplicationFile").asText();
        assertTrue(jar.startsWith("local:///opt/sparkformer/"), jar);
        checkImagePath(jar.substring("local:///opt/sparkformer/".length()));
        assertEquals(org.apache.spark.package$.MODULE$.SPARK_VERSION(), spec.get("sparkVersion").asText(), "the Spark version we build against");
        List<String> args = new ArrayList<>();
        spec.get("arguments").forEach(a -> args.add(a.asText()));
        checkArguments(args);
        for (Iterator<Map.Entry<String, JsonNode>> it = spec.get("sparkConf").fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            checkSparkKey(e.getKey());
            Matcher m = IMAGE_PATH.matcher(e.getValue().asText());
            while (m.find()) checkImagePath(m.group(1));
        }
        // GPUs: the executor asks Kubernetes for one, Spark hands it to one task, the discovery script finds it
        assertEquals("nvidia.com/gpu", spec.at("/executor/gpu/name").asText());
        assertEquals(1, spec.at("/executor/gpu/quantity").asInt());
        assertEquals("1", spec.at("/sparkConf/spark.task.resource.gpu.amount").asText());
        assertEquals("/opt/sparkformer/scripts/gpu-discovery.sh", spec.at("/sparkConf/spark.executor.resource.gpu.discoveryScript").asText());
        // the executors get the same JVM flags as our own launcher gives them
        assertTrue(spec.at("/sparkConf/spark.executor.extraJavaOptions").asText().contains(Trainer.JAVA17_FLAGS), "executor flags = Trainer.JAVA17_FLAGS");
        // driver and executors log through our configuration, its masking plugin on their class path from the start
        for (String role : List.of("driver", "executor")) {
            assertEquals(jar.substring("local://".length()), spec.at("/sparkConf/spark." + role + ".extraClassPath").asText(), role);
            assertTrue(spec.at("/sparkConf/spark." + role + ".extraJavaOptions").asText().contains("-Dlog4j2.configurationFile=/opt/sparkformer/conf/log4j2-json.xml"), role);
        }
    }

    @Test void dockerfileAndSubmitExampleAgree() throws Exception {
        String docker = Files.readString(ROOT.resolve("deploy/kubernetes/Dockerfile"));
        assertTrue(docker.lines().anyMatch(l -> l.matches("FROM eclipse-temurin:17\\S*")), "Temurin 17 base");
        assertTrue(docker.contains("ARG SPARK_VERSION=" + org.apache.spark.package$.MODULE$.SPARK_VERSION()));
        assertTrue(docker.contains("ADD deploy/dist/target/sparkformer-${SPARKFORMER_VERSION}.tar.gz /opt/"), "the dist tarball");
        assertTrue(Files.readString(ROOT.resolve("pom.xml")).contains("<version>" + docker.lines().filter(l -> l.startsWith("ARG SPARKFORMER_VERSION="))
                .findFirst().orElseThrow().substring("ARG SPARKFORMER_VERSION=".length()) + "</version>"), "the image's version is the project's");
        assertTrue(docker.contains("ln -s \"/opt/sparkformer-${SPARKFORMER_VERSION}\" /opt/sparkformer"));
        String submit = Files.readString(ROOT.resolve("deploy/kubernetes/submit-k8s.sh"));
        assertTrue(submit.contains("--master \"k8s://$K8S_API\"") && submit.contains("--deploy-mode cluster"));
        Matcher m = IMAGE_PATH.matcher(submit);
        int paths = 0;
        while (m.find()) { checkImagePath(m.group(1)); paths++; }
        assertTrue(paths >= 2, "jar and discovery script");
        Matcher conf = Pattern.compile("--conf (spark\\.[A-Za-z0-9_.]+)=").matcher(submit);
        while (conf.find()) checkSparkKey(conf.group(1));
    }
}
