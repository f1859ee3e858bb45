package org.sparkformer.driver;

import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.sparkformer.worker.tokenizer.ByteLevelBpe;
import org.sparkformer.worker.tokenizer.Tokenizer;

import java.io.FileNotFoundException;
import java.io.IOException;

/**
 * Tokenizers on disk, at any Hadoop URI: {@code gpt2:FOLDER} (GPT-2's vocab.json + merges.txt), a
 * tokenizer.json (ours or Hugging Face's), or a folder holding either (a prepared dataset, a checkpoint, a
 * Hugging Face model folder).
 */
final class TokenizerFiles {
    static final String JSON = "tokenizer.json", VOCAB = "vocab.json", MERGES = "merges.txt";

    private TokenizerFiles() {}

    static Tokenizer load(String spec, Configuration hadoop, String flag) {
        String where = spec.startsWith("gpt2:") ? spec.substring(5) : spec;
        if (where.isEmpty()) throw new UserError(flag + " gpt2: needs the folder of GPT-2's vocab.json and merges.txt (gpt2:FOLDER)");
        Path p = new Path(where);
        try {
            FileSystem fs = p.getFileSystem(hadoop);
            if (!fs.exists(p)) throw new UserError(flag + " " + spec + ": no such file or folder");
            if (fs.getFileStatus(p).isFile()) return fromJson(fs, p, flag);
            if (!spec.startsWith("gpt2:") && fs.exists(new Path(p, JSON))) return fromJson(fs, new Path(p, JSON), flag);
            Path vocab = new Path(p, VOCAB), merges = new Path(p, MERGES);
            if (fs.exists(vocab) && fs.exists(merges)) {
                try {
                    return ByteLevelBpe.fromGpt2Files(HadoopFiles.readText(fs, vocab), HadoopFiles.readText(fs, merges));
                } catch (IllegalArgumentException e) {
                    throw new UserError(flag + " " + p + ": " + e.getMessage());
                }
            }
            throw new UserError(flag + " " + spec + ": no " + JSON + ", nor " + VOCAB + " + " + MERGES + ", in that folder");
        } catch (FileNotFoundException e) {
            throw new UserError(flag + " " + spec + ": missing file (" + e.getMessage() + ")");
        } catch (IOException e) {
            throw new UserError(flag + " " + spec + ": cannot read (" + e.getMessage() + ")");
        }
    }

    private static Tokenizer fromJson(FileSystem fs, Path file, String flag) throws IOException {
        try {
            return Tokenizer.fromJson(HadoopFiles.readText(fs, file));
        } catch (IllegalArgumentException e) {
            throw new UserError(flag + " " + file + ": " + e.getMessage());
        }
    }

    /** tokenizer.json, and for BPE also Hugging Face's vocab.json + merges.txt. */
    static void save(Tokenizer tokenizer, FileSystem fs, Path dir) throws IOException {
        HadoopFiles.writeText(fs, new Path(dir, JSON), tokenizer.toJson());
        if (tokenizer instanceof ByteLevelBpe bpe) {
            HadoopFiles.writeText(fs, new Path(dir, VOCAB), bpe.vocabJson());
            HadoopFiles.writeText(fs, new Path(dir, MERGES), bpe.mergesTxt());
        }
    }
}
