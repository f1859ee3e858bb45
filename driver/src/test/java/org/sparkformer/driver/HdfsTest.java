package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.hdfs.MiniDFSCluster;
import org.apache.spark.api.java.JavaSparkContext;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.charset.StandardCharsets;
import java.util.List;

import static org.junit.jupiter.api.Assertions.*;

/**
 * Real HDFS, in process (Hadoop's MiniDFSCluster: a NameNode and a DataNode on loopback): prepare reads its
 * text from HDFS and writes the dataset there, training reads the shards from HDFS and checkpoints to HDFS,
 * and the checkpoint loads back from HDFS.
 */
class HdfsTest {
    @TempDir static java.nio.file.Path tmp;
    static MiniDFSCluster cluster;
    static JavaSparkContext sc;
    static String hdfs;

    @BeforeAll static void start() throws Exception {
        Configuration conf = new Configuration();
        conf.set(MiniDFSCluster.HDFS_MINIDFS_BASEDIR, tmp.resolve("hdfs").toString());
        cluster = new MiniDFSCluster.Builder(conf).numDataNodes(1).build();
        cluster.waitActive();
        hdfs = cluster.getURI().toString();
        sc = new JavaSparkContext(Trainer.sparkConf("local[2]"));
    }

    @AfterAll static void stop() {
        if (sc != null) sc.close();
        if (cluster != null) cluster.shutdown();
    }

    @Test void prepareTrainAndCheckpointOnHdfs() throws Exception {
        FileSystem fs = cluster.getFileSystem();
        for (int i = 0; i < 2; i++)
            try (FSDataOutputStream out = fs.create(new Path("/corpus/part-" + i + ".txt"))) {
                out.write(TestCorpus.text(1500, i).getBytes(StandardCharsets.UTF_8));
            }
        Prepare.Summary s = Prepare.run(sc, new Prepare.Options(List.of(hdfs + "/corpus"), "bpe", 300, hdfs + "/datasets/grammar",
                0.1, TextInput.Invalid.FAIL, "text", false));
        assertTrue(s.out().startsWith("hdfs://"), s.out());
        assertTrue(fs.exists(new Path("/datasets/grammar/manifest.json")));
        assertTrue(fs.exists(new Path("/datasets/grammar/train/shard-00000.bin")));
        assertTrue(fs.exists(new Path("/datasets/grammar/train/shard-00001.bin")));

        String run = hdfs + "/runs/grammar";
        TrainConfig c = SparkTrainingTest.tinyConfig(new java.io.File("unused").toPath(), 20, hdfs + "/datasets/grammar");
        c.out = run;
        Trainer.Result r = new Trainer(c, null, false).run(sc);
        assertEquals(20, r.steps());
        assertTrue(r.finalValLoss() < r.firstValLoss(), r.firstValLoss() + " -> " + r.finalValLoss());
        assertTrue(fs.exists(new Path("/runs/grammar/ckpt/last/params.bin")));
        assertTrue(fs.exists(new Path("/runs/grammar/metrics.jsonl")));

        Checkpoint.Loaded loaded = Checkpoint.load(run, new Configuration(), true);
        assertEquals(20, loaded.state().step);
        assertEquals(300, loaded.tokenizer().vocabSize());
        assertEquals("bpe", loaded.tokenizer().kind());
    }
}
