package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.google.protobuf.CodedInputStream;
import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.Iterator;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.*;

/** TensorBoard event files decoded independently of the writer; a run's scalars equal its metrics.jsonl; the report. */
class TensorBoardTest {
    @TempDir static Path tmp;
    static JavaSparkContext sc;

    @BeforeAll static void start() { sc = new JavaSparkContext(Trainer.sparkConf("local[2]")); }

    @AfterAll static void stop() { if (sc != null) sc.close(); }

    /** One decoded Event: step, and its summary value's tag with a float or a text. */
    record Event(double wallTime, long step, String fileVersion, String tag, Float value, String text, String plugin) {}

    /** Reads TFRecords and checks both masked CRC32Cs (CRC32C's known answer checked first). */
    static List<Event> read(Path file) throws IOException {
        java.util.zip.CRC32C check = new java.util.zip.CRC32C();
        check.update("123456789".getBytes(StandardCharsets.US_ASCII));
        assertEquals(0xE3069283L, check.getValue());
        ByteBuffer b = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        List<Event> events = new ArrayList<>();
        while (b.hasRemaining()) {
            byte[] len = new byte[8];
            b.get(len);
            assertEquals(mask(len), b.getInt(), "length CRC");
            byte[] data = new byte[(int) ByteBuffer.wrap(len).order(ByteOrder.LITTLE_ENDIAN).getLong()];
            b.get(data);
            assertEquals(mask(data), b.getInt(), "data CRC");
            events.add(event(data));
        }
        return events;
    }

    static int mask(byte[] d) {
        java.util.zip.CRC32C c = new java.util.zip.CRC32C();
        c.update(d);
        int x = (int) c.getValue();
        return Integer.rotateRight(x, 15) + 0xa282ead8;
    }

    static Event event(byte[] data) throws IOException {
        CodedInputStream in = CodedInputStream.newInstance(data);
        double wall = 0;
        long step = 0;
        String version = null, tag = null, text = null, plugin = null;
        Float value = null;
        for (int t; (t = in.readTag()) != 0; ) {
            switch (t >>> 3) {
                case 1 -> wall = in.readDouble();
                case 2 -> step = in.readInt64();
                case 3 -> version = in.readString();
                case 5 -> {   // Summary { repeated Value value = 1 }
                    CodedInputStream summary = CodedInputStream.newInstance(in.readByteArray());
                    for (int s; (s = summary.readTag()) != 0; ) {
                        assertEquals(1, s >>> 3);
                        CodedInputStream v = CodedInputStream.newInstance(summary.readByteArray());
                        for (int f; (f = v.readTag()) != 0; ) {
                            switch (f >>> 3) {
                                case 1 -> tag = v.readString();
                                case 2 -> value = v.readFloat();
                                case 8 -> {   // TensorProto: dtype 1, shape 2, string_val 8
                                    CodedInputStream tensor = CodedInputStream.newInstance(v.readByteArray());
                                    for (int g; (g = tensor.readTag()) != 0; ) {
                                        if (g >>> 3 == 1) assertEquals(7, tensor.readEnum(), "DT_STRING");
                                        else if (g >>> 3 == 8) text = tensor.readStringRequireUtf8();
                                        else tensor.skipField(g);
                                    }
                                }
                                case 9 -> {   // SummaryMetadata { PluginData plugin_data = 1 { plugin_name = 1 } }
                                    CodedInputStream meta = CodedInputStream.newInstance(v.readByteArray());
                                    meta.readTag();
                                    CodedInputStream pd = CodedInputStream.newInstance(meta.readByteArray());
                                    pd.readTag();
                                    plugin = pd.readString();
                                }
                                default -> v.skipField(f);
                            }
                        }
                    }
                }
                default -> in.skipField(t);
            }
        }
        return new Event(wall, step, version, tag, value, text, plugin);
    }

    @Test void writerFramesScalarsAndText() throws IOException {
        TensorBoardWriter w = new TensorBoardWriter(tmp.resolve("unit").toString(), new Configuration());
        w.scalar("train/loss", 7, 2.5);
        w.text("samples", 7, "héllo\nworld");
        w.flush();
        List<Event> events = read(Path.of(w.file.toUri().getPath()));   // readable before close
        w.close();
        assertTrue(w.file.getName().startsWith("events.out.tfevents."));
        assertEquals(3, events.size());
        assertEquals("brain.Event:2", events.get(0).fileVersion());
        assertEquals(new Event(events.get(1).wallTime(), 7, null, "train/loss", 2.5f, null, null), events.get(1));
        assertEquals("héllo\nworld", events.get(2).text());
        assertEquals("text", events.get(2).plugin());
        assertTrue(Math.abs(events.get(1).wallTime() - System.currentTimeMillis() / 1000.0) < 60);
    }

    @Test void twoHundredStepRunScalarsEqualMetricsAndReportRenders() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(3000, 5));
        Path run = tmp.resolve("run");
        TrainConfig c = SparkTrainingTest.tinyConfig(run, 200, data.toString());
        c.evalInterval = 50;
        c.evalSampleTokens = 30;
        new Trainer(c, null, false).run(sc);

        Path tb;
        try (var files = Files.list(run.resolve("tb"))) { tb = files.filter(p -> p.getFileName().toString().startsWith("events.out.tfevents.")).findFirst().orElseThrow(); }
        Map<String, Float> scalars = new HashMap<>();   // "tag@step" -> value
        List<Event> texts = new ArrayList<>();
        for (Event e : read(tb)) {
            if (e.value() != null) assertNull(scalars.put(e.tag() + "@" + e.step(), e.value()), "one value per tag and step");
            if (e.text() != null) texts.add(e);
        }
        ObjectMapper json = new ObjectMapper();
        int checked = 0;
        List<String> lines = Files.readAllLines(run.resolve("metrics.jsonl"));
        assertEquals(1 + 200 / 5, lines.size());
        for (String line : lines) {
            JsonNode m = json.readTree(line);
            long step = m.get("step").asLong();
            for (Iterator<Map.Entry<String, JsonNode>> it = m.fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> f = it.next();
                String tag = RunLog.TAGS.get(f.getKey());
                if (tag == null) continue;
                assertEquals((float) f.getValue().asDouble(), scalars.get(tag + "@" + step), tag + " at step " + step);
                checked++;
            }
            for (Iterator<Map.Entry<String, JsonNode>> it = m.path(RunLog.EXECUTOR_STEP_MS).fields(); it.hasNext(); ) {
                Map.Entry<String, JsonNode> e = it.next();
                assertEquals((float) e.getValue().asDouble(), scalars.get("executor/" + e.getKey() + "/step_ms@" + step));
                checked++;
            }
            if (step > 0) {
                for (String field : List.of("train_loss", "lr", "grad_norm", "tokens_per_s", "mfu", "sync_ms", "task_ms_median"))
                    assertTrue(m.has(field), field + " in " + line);
                assertTrue(m.get("grad_norm").asDouble() > 0 && m.get("mfu").asDouble() > 0, line);
                assertFalse(m.path(RunLog.EXECUTOR_STEP_MS).isEmpty(), line);
            }
        }
        assertEquals(scalars.size(), checked, "every scalar in the event file is in metrics.jsonl");
        assertTrue(scalars.containsKey("val/loss@200") && scalars.containsKey("train/loss@0"));
        assertEquals(List.of(0L, 50L, 100L, 150L, 200L), texts.stream().map(Event::step).toList());

        // the report: self-contained page with its charts, and loss.png an image
        String html = Files.readString(run.resolve("report.html"));
        assertEquals(4, html.split("src=\"data:image/png;base64,", -1).length - 1);
        assertTrue(html.contains("best val loss") && html.contains("averagingFrequency"), "final numbers and config");
        java.awt.image.BufferedImage png = javax.imageio.ImageIO.read(run.resolve("loss.png").toFile());
        assertEquals(900, png.getWidth());
        assertEquals(420, png.getHeight());
        String again = Main.run(new String[]{"report", "--run", run.toString()}, new java.io.PrintStream(new java.io.ByteArrayOutputStream())) == 0 ? "ok" : "";
        assertEquals("ok", again);
    }
}
