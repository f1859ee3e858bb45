package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.*;

/** Distillation on Spark local[2]: teacher logits made on the executors, the student learns from them. */
class DistillTest {
    static JavaSparkContext sc;
    @TempDir static Path tmp;

    @BeforeAll static void start() { sc = new JavaSparkContext(Trainer.sparkConf("local[2]")); }

    @AfterAll static void stop() { if (sc != null) sc.close(); }

    static TrainConfig student(Path out, String data) {
        TrainConfig c = SparkTrainingTest.tinyConfig(out, 40, data);
        c.nEmbd = 16;
        c.nHead = 2;
        c.evalInterval = 20;
        return c.validate();
    }

    @Test void distilledStudentBeatsTheSameStudentFromScratch() throws Exception {
        String data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(3000, 21)).toString();
        Path teacher = tmp.resolve("teacher");
        TrainConfig t = SparkTrainingTest.tinyConfig(teacher, 100, data);
        t.nEmbd = 64;
        t.evalInterval = 50;
        Trainer.Result tr = new Trainer(t.validate(), null, false).run(sc);

        Trainer.Result scratch = new Trainer(student(tmp.resolve("scratch"), data), null, false).run(sc);
        TrainConfig d = student(tmp.resolve("distilled"), data);
        d.teacher = teacher.toString();
        d.distillAlpha = 0.5;
        d.distillTemperature = 2.0;
        Trainer.Result distilled = new Trainer(d, null, false).run(sc);
        assertTrue(distilled.finalValLoss() < scratch.finalValLoss(),
                "teacher " + tr.finalValLoss() + ", distilled " + distilled.finalValLoss() + " vs scratch " + scratch.finalValLoss());
        // the student is an ordinary checkpoint: its config records the distillation, its vocabulary is the teacher's
        Checkpoint.Loaded s = Checkpoint.load(tmp.resolve("distilled").toString(), new Configuration(), false);
        assertEquals(0.5, s.model().distillAlpha);
        assertEquals(Checkpoint.load(teacher.toString(), new Configuration(), false).tokenizer(), s.tokenizer());

        TrainConfig wide = student(tmp.resolve("wide"), data);
        wide.teacher = teacher.toString();
        wide.blockSize = 32;
        String msg = assertThrows(UserError.class, () -> new Trainer(wide, null, false).run(sc)).getMessage();
        assertTrue(msg.contains("block size 16 is below the student's 32"), msg);
    }
}
