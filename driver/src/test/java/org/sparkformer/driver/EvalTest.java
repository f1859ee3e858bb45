package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.sparkformer.worker.tokenizer.CharTokenizer;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/** eval on Spark local[2]: text and dataset inputs, the three numbers consistent, float vs int8. */
class EvalTest {
    static JavaSparkContext sc;
    @TempDir static Path tmp;

    @BeforeAll static void start() { sc = new JavaSparkContext(Trainer.sparkConf("local[2]")); }

    @AfterAll static void stop() { if (sc != null) sc.close(); }

    @Test void evaluatesTextAndDatasetsAndQuantizedModels() throws Exception {
        Path data = TestCorpus.write(tmp, "corpus.txt", TestCorpus.text(1000, 9));
        Path run = tmp.resolve("run");
        new Trainer(SparkTrainingTest.tinyConfig(run, 60, data.toString()), null, false).run(sc);
        String ckpt = run.toString();

        Evaluate.Result r = Evaluate.run(sc, ckpt, data.toString(), 8, 0);
        int t = Checkpoint.load(ckpt, new Configuration(), false).model().blockSize;
        assertTrue(r.tokens() > 0.9 * TestCorpus.text(1000, 9).length(), "most of the text is scored: " + r.tokens());
        assertEquals(0, r.tokens() % t);
        assertEquals(r.tokens(), r.bytes(), "ASCII characters: one byte per token");
        assertEquals(Math.exp(r.meanLoss()), r.perplexity(), 1e-9 * r.perplexity());
        assertEquals(r.meanLoss() / Math.log(2), r.bitsPerByte(), 1e-9);
        assertTrue(r.meanLoss() < Math.log(CharTokenizer.fromText(TestCorpus.text(1000, 9)).vocabSize()), "a trained model beats uniform");

        // the same text spread over 1 partition or 2 gives the same numbers up to window boundaries
        Evaluate.Result capped = Evaluate.run(sc, ckpt, data.toString(), 8, 4000);
        assertTrue(capped.tokens() <= 4000 && capped.tokens() > 3000, "max-tokens caps the evaluation: " + capped.tokens());

        Path ds = tmp.resolve("ds");
        Prepare.run(sc, new Prepare.Options(List.of(data.toString()), ckpt + "/ckpt/last", 0, ds.toString(), 0.2, TextInput.Invalid.FAIL, "text", false));
        Evaluate.Result val = Evaluate.run(sc, ckpt, ds.toString(), 8, 0);
        assertTrue(val.tokens() > 0 && val.tokens() <= 0.2 * r.tokens() + t, "the dataset's val split: " + val.tokens());

        Path q8 = tmp.resolve("q8");
        Main.run(new String[]{"quantize", "--checkpoint", ckpt, "--out", q8.toString()}, new java.io.PrintStream(new java.io.ByteArrayOutputStream()));
        Evaluate.Result rq = Evaluate.run(sc, q8.toString(), data.toString(), 8, 0);
        assertEquals(r.tokens(), rq.tokens());
        assertEquals(r.meanLoss(), rq.meanLoss(), 0.02 * r.meanLoss(), "int8 perplexity within 2%");

        String msg = assertThrows(UserError.class, () -> Evaluate.run(sc, ckpt, tmp.resolve("missing.txt").toString(), 8, 0)).getMessage();
        assertTrue(msg.contains("missing.txt: no such file"), msg);
    }
}
