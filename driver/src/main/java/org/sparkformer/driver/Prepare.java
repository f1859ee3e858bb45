package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileStatus;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.apache.hadoop.io.LongWritable;
import org.apache.hadoop.io.Text;
import org.apache.hadoop.mapreduce.lib.input.TextInputFormat;
import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;
import org.apache.spark.TaskContext;
import org.apache.spark.api.java.JavaNewHadoopRDD;
import org.apache.spark.api.java.JavaSparkContext;
import org.apache.spark.broadcast.Broadcast;
import org.apache.spark.util.SerializableConfiguration;
import org.sparkformer.worker.data.IntList;
import org.sparkformer.worker.io.TokenShard;
import org.sparkformer.worker.tokenizer.BpeTrainer;
import org.sparkformer.worker.tokenizer.ByteLevelBpe;
import org.sparkformer.worker.tokenizer.CharTokenizer;
import org.sparkformer.worker.tokenizer.Tokenizer;
import scala.Tuple2;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashMap;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code sparkformer prepare}: text at Hadoop URIs to a tokenized dataset. Executors read the input splits,
 * check the UTF-8, (for char/bpe) count characters or GPT-2 regex pieces for the driver to build the
 * vocabulary, then tokenize their splits and write one train and one val shard each (the last
 * val-fraction of a split's tokens is validation). The driver writes the tokenizer and manifest.json; all
 * of it goes under a temporary folder that is renamed to --out at the end.
 */
final class Prepare {
    private static final Logger log = LogManager.getLogger(Prepare.class);
    private static final ObjectMapper JSON = new ObjectMapper();
    static final long SPLIT_BYTES = 16L << 20;   // input split size: parallelism for a few large files

    record Options(List<String> inputs, String tokenizer, int vocabSize, String out, double valFraction,
                   TextInput.Invalid invalidUtf8, String textField, boolean overwrite) {}

    record Summary(String out, String tokenizerKind, int vocabSize, long trainTokens, long valTokens, int shards,
                   long bytes, long invalidBytes, double seconds) {}

    private Prepare() {}

    static Summary run(JavaSparkContext sc, Options o) throws IOException {
        long t0 = System.nanoTime();
        Configuration hadoop = sc.hadoopConfiguration();
        Path out = new Path(o.out());
        FileSystem outFs = out.getFileSystem(hadoop);
        out = outFs.makeQualified(out);
        FsCommit.refuseExisting(outFs, out, o.out(), o.overwrite());

        Map<String, Long> files = listInputs(o.inputs(), hadoop);
        Configuration readConf = new Configuration(hadoop);
        readConf.set("textinputformat.record.delimiter", "\n");
        readConf.setLong("mapreduce.input.fileinputformat.split.maxsize", SPLIT_BYTES);
        @SuppressWarnings("unchecked")
        JavaNewHadoopRDD<LongWritable, Text> lines = (JavaNewHadoopRDD<LongWritable, Text>) sc.newAPIHadoopFile(
                String.join(",", files.keySet()), TextInputFormat.class, LongWritable.class, Text.class, readConf);
        TextInput input = new TextInput(o.inputs(), o.invalidUtf8(), o.textField(), files);

        Tokenizer tokenizer = buildTokenizer(sc, lines, input, o, hadoop);
        int width = TokenShard.bytesPerToken(tokenizer.vocabSize());
        log.info("tokenizer {} with {} tokens; writing {} shards", tokenizer.kind(), tokenizer.vocabSize(), width == 2 ? "uint16" : "int32");

        Path tmp = FsCommit.temporary(out);
        outFs.mkdirs(tmp);
        try {
            Broadcast<Tokenizer> tok = sc.broadcast(tokenizer);
            Broadcast<SerializableConfiguration> conf = sc.broadcast(new SerializableConfiguration(hadoop));
            String tmpUri = tmp.toString();
            double valFraction = o.valFraction();
            List<String> written = lines.mapPartitionsWithInputSplit((split, records) -> {
                String entry;
                try {
                    entry = writeShards(input.read(split, records), tok.value(), valFraction, width,
                            TaskContext.getPartitionId(), tmpUri, conf.value().value());
                } catch (UserError e) {
                    entry = JSON.createObjectNode().put("error", e.getMessage()).toString();
                }
                return Collections.singletonList(entry).iterator();
            }, true).collect();
            ObjectNode manifest = manifest(o, tokenizer, width, files, written);
            TokenizerFiles.save(tokenizer, outFs, tmp);
            String tokJson = HadoopFiles.readText(outFs, new Path(tmp, TokenizerFiles.JSON));
            ((ObjectNode) manifest.get("tokenizer")).put("sha256", TokenDataset.sha256(tokJson));
            long train = manifest.path("train").path("tokens").asLong(), val = manifest.path("val").path("tokens").asLong();
            if (train + val == 0) throw new UserError("--input " + String.join(",", o.inputs()) + ": no text (empty input)");
            HadoopFiles.writeText(outFs, new Path(tmp, TokenDataset.MANIFEST), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(manifest));
            FsCommit.replace(outFs, tmp, out);
            return new Summary(out.toString(), tokenizer.kind(), tokenizer.vocabSize(), train, val,
                    manifest.path("train").path("shards").size() + manifest.path("val").path("shards").size(),
                    manifest.path("input").path("bytes").asLong(), manifest.path("input").path("invalid_utf8_bytes").asLong(),
                    (System.nanoTime() - t0) / 1e9);
        } finally {
            if (outFs.exists(tmp)) outFs.delete(tmp, true);
        }
    }

    /** Every input file (globs and folders expanded, hidden files skipped), qualified, with its length. */
    static Map<String, Long> listInputs(List<String> inputs, Configuration hadoop) throws IOException {
        Map<String, Long> files = new LinkedHashMap<>();
        for (String uri : inputs) {
            Path p = new Path(uri);
            FileSystem fs = p.getFileSystem(hadoop);
            FileStatus[] matched = fs.globStatus(p);
            if (matched == null || matched.length == 0) throw new UserError("--input " + uri + ": no such file or folder");
            List<FileStatus> found = new ArrayList<>();
            for (FileStatus s : matched) collect(fs, s, found);
            found.sort(java.util.Comparator.comparing(s -> s.getPath().toString()));
            for (FileStatus s : found) files.put(fs.makeQualified(s.getPath()).toString(), s.getLen());
        }
        if (files.values().stream().mapToLong(Long::longValue).sum() == 0)
            throw new UserError("--input " + String.join(",", inputs) + ": no text (empty input)");
        return files;
    }

    private static void collect(FileSystem fs, FileStatus s, List<FileStatus> out) throws IOException {
        String name = s.getPath().getName();
        if (name.startsWith(".") || name.startsWith("_")) return;
        if (s.isDirectory()) for (FileStatus c : fs.listStatus(s.getPath())) collect(fs, c, out);
        else out.add(s);
    }

    private static Tokenizer buildTokenizer(JavaSparkContext sc, JavaNewHadoopRDD<LongWritable, Text> lines, TextInput input,
                                            Options o, Configuration hadoop) {
        switch (o.tokenizer()) {
            case "char": {
                Map<String, Long> chars = count(lines, input, false);
                return new CharTokenizer(chars.keySet().stream().mapToInt(c -> c.codePointAt(0)).sorted().toArray());
            }
            case "bpe": {
                List<String> specials = List.of(ByteLevelBpe.END_OF_TEXT);
                if (o.vocabSize() < BpeTrainer.minVocabSize(specials))
                    throw new UserError("--vocab-size " + o.vocabSize() + ": must be at least " + BpeTrainer.minVocabSize(specials)
                            + " (256 byte tokens + " + specials.size() + " special)");
                Map<String, Long> counts = count(lines, input, true);
                long t = System.nanoTime();
                ByteLevelBpe bpe = BpeTrainer.train(counts, o.vocabSize(), specials);
                log.info("BPE: {} distinct pieces, {} merges learned in {} s", counts.size(), bpe.merges().size(),
                        String.format(Locale.ROOT, "%.1f", (System.nanoTime() - t) / 1e9));
                if (bpe.vocabSize() < o.vocabSize())
                    log.warn("the input has too few repeated pairs for {} tokens: vocabulary is {}", o.vocabSize(), bpe.vocabSize());
                return bpe;
            }
            default:
                if (o.tokenizer().equals("gpt2"))
                    throw new UserError("--tokenizer gpt2: give the folder of GPT-2's vocab.json and merges.txt as gpt2:FOLDER");
                return TokenizerFiles.load(o.tokenizer(), hadoop, "--tokenizer");
        }
    }

    /** Marks a user error found on an executor: it travels back as data (no task retries, no stack trace in logs). */
    private static final String ERROR = "\u0000error: ";

    /**
     * Counts over all input on the executors: code points (char) or GPT-2 regex pieces (bpe; special-token
     * text excluded). Pieces never hold NUL (a NUL byte is refused), so the error key cannot collide.
     */
    private static Map<String, Long> count(JavaNewHadoopRDD<LongWritable, Text> lines, TextInput input, boolean pieces) {
        Map<String, Long> counts = new HashMap<>(lines.mapPartitionsWithInputSplit((split, records) -> {
            Map<String, Long> local = new HashMap<>();
            try {
                for (String doc : input.read(split, records).documents()) {
                    if (!pieces) {
                        doc.codePoints().forEach(cp -> local.merge(new String(Character.toChars(cp)), 1L, Long::sum));
                        continue;
                    }
                    for (String part : doc.split(java.util.regex.Pattern.quote(ByteLevelBpe.END_OF_TEXT), -1))
                        BpeTrainer.pieces(part, p -> local.merge(p, 1L, Long::sum));
                }
            } catch (UserError e) {
                return List.of(new Tuple2<>(ERROR + e.getMessage(), 1L)).iterator();
            }
            List<Tuple2<String, Long>> pairs = new ArrayList<>(local.size());
            local.forEach((k, v) -> pairs.add(new Tuple2<>(k, v)));
            return pairs.iterator();
        }, true).mapToPair(t -> t).reduceByKey(Long::sum).collectAsMap());
        counts.keySet().stream().filter(k -> k.startsWith(ERROR)).sorted().findFirst()
                .ifPresent(k -> { throw new UserError(k.substring(ERROR.length())); });
        if (counts.isEmpty()) throw new UserError("--input " + String.join(",", input.inputs()) + ": no text (empty input)");
        return counts;
    }

    /** On an executor: tokenizes a split and writes its train and val shards; returns their manifest entry. */
    private static String writeShards(TextInput.Chunk chunk, Tokenizer tokenizer, double valFraction, int width, int partition,
                                      String tmpUri, Configuration hadoop) throws IOException {
        IntList ids = new IntList(1024);
        int separator = tokenizer.documentSeparator();
        for (int d = 0; d < chunk.documents().size(); d++) {
            String doc = chunk.documents().get(d);
            try {
                if (tokenizer instanceof ByteLevelBpe bpe) bpe.encode(doc, ids);
                else ids.addAll(tokenizer.encode(doc));
            } catch (IllegalArgumentException e) {
                throw new UserError("--input " + chunk.file() + ": " + e.getMessage() + " (tokenizer given by --tokenizer)");
            }
            boolean complete = d < chunk.documents().size() - 1 || chunk.endsDocument();
            if (separator >= 0 && complete) ids.add(separator);
        }
        int[] tokens = ids.toArray();
        int nVal = (int) Math.round(tokens.length * valFraction);
        ObjectNode entry = JSON.createObjectNode();
        entry.put("partition", partition);
        entry.put("file", chunk.file());
        entry.put("bytes", chunk.bytes());
        entry.put("invalid_utf8_bytes", chunk.invalidBytes());
        entry.put("documents", chunk.documents().size());
        String name = String.format(Locale.ROOT, "shard-%05d.bin", partition);
        FileSystem fs = new Path(tmpUri).getFileSystem(hadoop);
        for (String split : new String[]{"train", "val"}) {
            int from = split.equals("train") ? 0 : tokens.length - nVal, to = split.equals("train") ? tokens.length - nVal : tokens.length;
            if (to <= from) continue;
            try (FSDataOutputStream out = fs.create(new Path(tmpUri + "/" + split + "/" + name), true)) {
                ObjectNode s = entry.putObject(split);
                s.put("path", split + "/" + name);
                s.put("crc32", TokenShard.write(out, tokens, from, to, width));
                s.put("tokens", to - from);
            }
        }
        return entry.toString();
    }

    private static ObjectNode manifest(Options o, Tokenizer tokenizer, int width, Map<String, Long> files, List<String> written)
            throws IOException {
        List<JsonNode> entries = new ArrayList<>();
        for (String w : written) entries.add(JSON.readTree(w));
        for (JsonNode e : entries) if (e.has("error")) throw new UserError(e.get("error").asText());
        entries.sort(java.util.Comparator.comparingInt(e -> e.path("partition").asInt()));
        ObjectNode m = JSON.createObjectNode();
        m.put("format", TokenDataset.FORMAT);
        m.put("version", 1);
        ObjectNode t = m.putObject("tokenizer");
        t.put("kind", tokenizer.kind());
        t.put("source", o.tokenizer());
        t.put("file", TokenizerFiles.JSON);
        t.put("vocab_size", tokenizer.vocabSize());
        t.put("document_separator", tokenizer.documentSeparator());
        m.put("dtype", width == 2 ? "uint16" : "int32");
        m.put("val_fraction", o.valFraction());
        ObjectNode in = m.putObject("input");
        ArrayNode uris = in.putArray("uris");
        o.inputs().forEach(uris::add);
        in.put("files", files.size());
        long bytes = 0, invalid = 0, docs = 0;
        for (JsonNode e : entries) {
            bytes += e.path("bytes").asLong();
            invalid += e.path("invalid_utf8_bytes").asLong();
            docs += e.path("documents").asLong();
        }
        in.put("bytes", bytes);
        in.put("documents", docs);
        in.put("invalid_utf8", o.invalidUtf8().name().toLowerCase(Locale.ROOT));
        in.put("invalid_utf8_bytes", invalid);
        for (String split : new String[]{"train", "val"}) {
            ObjectNode s = m.putObject(split);
            ArrayNode shards = s.putArray("shards");
            long total = 0;
            for (JsonNode e : entries) {
                if (!e.has(split)) continue;
                shards.add(e.get(split));
                total += e.get(split).path("tokens").asLong();
            }
            s.put("tokens", total);
        }
        return m;
    }

    static String describe(Summary s) {
        return String.format(Locale.ROOT, "prepared %s: %s tokenizer, vocab %,d; %,d train + %,d val tokens in %d shards from %,d bytes"
                        + "%s in %.1f s (%.1f MB/s)", s.out(), s.tokenizerKind(), s.vocabSize(), s.trainTokens(), s.valTokens(), s.shards(),
                s.bytes(), s.invalidBytes() > 0 ? String.format(Locale.ROOT, " (%,d invalid UTF-8 bytes)", s.invalidBytes()) : "",
                s.seconds(), s.bytes() / 1e6 / s.seconds());
    }
}
