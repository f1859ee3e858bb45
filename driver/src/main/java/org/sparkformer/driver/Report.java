package org.sparkformer.driver;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.hadoop.conf.Configuration;
import org.apache.hadoop.fs.FSDataOutputStream;
import org.apache.hadoop.fs.FileSystem;
import org.apache.hadoop.fs.Path;
import org.knowm.xchart.BitmapEncoder;
import org.knowm.xchart.XYChart;
import org.knowm.xchart.XYChartBuilder;
import org.knowm.xchart.XYSeries;
import org.knowm.xchart.style.markers.SeriesMarkers;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code sparkformer report --run DIR} (also written at the end of training): report.html, one
 * self-contained page (charts embedded as PNG data), and loss.png. Charts: train and val loss against
 * steps and against tokens, the learning rate, and throughput over time; tables: final numbers and the
 * run's configuration, from metrics.jsonl and the last checkpoint's config.json.
 */
final class Report {
    private static final ObjectMapper JSON = new ObjectMapper();

    private Report() {}

    /** Writes report.html and loss.png into the run folder; returns the report's URI. */
    static String write(String runUri, Configuration hadoop) throws IOException {
        Path run = new Path(runUri);
        FileSystem fs = run.getFileSystem(hadoop);
        Path metricsFile = new Path(run, "metrics.jsonl");
        if (!fs.exists(metricsFile)) throw new UserError("--run " + runUri + ": no metrics.jsonl (not a training run folder?)");
        List<JsonNode> rows = new ArrayList<>();
        for (String line : HadoopFiles.readText(fs, metricsFile).split("\n")) {
            if (line.isBlank()) continue;
            try {
                rows.add(JSON.readTree(line));
            } catch (com.fasterxml.jackson.core.JsonProcessingException e) {
                throw new UserError("--run " + metricsFile + ": a line is not valid JSON (" + e.getOriginalMessage() + ")");
            }
        }
        if (rows.isEmpty()) throw new UserError("--run " + metricsFile + ": empty");
        JsonNode config = null;
        Path ckpt = new Path(run, "ckpt/last/" + Checkpoint.CONFIG);
        if (fs.exists(ckpt)) config = JSON.readTree(HadoopFiles.readText(fs, ckpt));

        byte[] lossPng = png(chart("Loss", "step", "loss (nats/token)", rows, "step", List.of("train_loss", "val_loss")));
        byte[] tokensPng = png(chart("Loss against tokens", "tokens", "loss (nats/token)", rows, "tokens", List.of("train_loss", "val_loss")));
        byte[] lrPng = png(chart("Learning rate", "step", "lr", rows, "step", List.of("lr")));
        byte[] speedPng = png(chart("Throughput", "elapsed (s)", "tokens/s", rows, "elapsed_s", List.of("tokens_per_s")));
        try (FSDataOutputStream out = fs.create(new Path(run, "loss.png"), true)) { out.write(lossPng); }

        StringBuilder html = new StringBuilder();
        html.append("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sparkformer run ").append(esc(run.getName()))
                .append("</title>\n<style>body{font-family:sans-serif;max-width:980px;margin:2em auto;color:#222}")
                .append("table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}")
                .append("img{max-width:100%;border:1px solid #eee;margin:0.5em 0}</style></head><body>\n");
        html.append("<h1>sparkformer run ").append(esc(run.getName())).append("</h1>\n<p>").append(esc(run.toString())).append("</p>\n");
        html.append("<h2>Final numbers</h2>\n").append(table(finalNumbers(rows)));
        html.append("<h2>Loss</h2>\n").append(img(lossPng, "train and val loss against steps")).append(img(tokensPng, "loss against tokens"));
        html.append("<h2>Learning rate</h2>\n").append(img(lrPng, "learning rate schedule"));
        html.append("<h2>Throughput</h2>\n").append(img(speedPng, "tokens per second over time"));
        if (config != null) {
            html.append("<h2>Configuration</h2>\n").append(table(flat(config.path("train")))).append("<h3>Model</h3>\n").append(table(flat(config.path("model"))));
        }
        html.append("</body></html>\n");
        Path report = new Path(run, "report.html");
        HadoopFiles.writeText(fs, report, html.toString());
        return fs.makeQualified(report).toString();
    }

    private static XYChart chart(String title, String xTitle, String yTitle, List<JsonNode> rows, String x, List<String> series) {
        XYChart c = new XYChartBuilder().width(900).height(420).title(title).xAxisTitle(xTitle).yAxisTitle(yTitle).build();
        c.getStyler().setLegendPosition(org.knowm.xchart.style.Styler.LegendPosition.InsideNE);
        c.getStyler().setAntiAlias(true);
        for (String name : series) {
            List<Double> xs = new ArrayList<>(), ys = new ArrayList<>();
            for (JsonNode r : rows)
                if (r.has(name) && r.get(name).isNumber() && r.has(x) && !(name.equals("tokens_per_s") && r.get(name).asDouble() == 0)) {
                    xs.add(r.get(x).asDouble());
                    ys.add(r.get(name).asDouble());
                }
            if (xs.isEmpty()) continue;
            XYSeries s = c.addSeries(name.replace("_loss", "").replace('_', ' '), xs, ys);
            s.setMarker(name.equals("val_loss") ? SeriesMarkers.CIRCLE : SeriesMarkers.NONE);
        }
        return c;
    }

    private static byte[] png(XYChart chart) throws IOException {
        return BitmapEncoder.getBitmapBytes(chart, BitmapEncoder.BitmapFormat.PNG);
    }

    private static Map<String, String> finalNumbers(List<JsonNode> rows) {
        JsonNode last = rows.get(rows.size() - 1);
        Map<String, String> m = new LinkedHashMap<>();
        m.put("steps", last.path("step").asText());
        m.put("tokens", String.format(Locale.ROOT, "%,d", last.path("tokens").asLong()));
        m.put("final train loss", fmt(last.path("train_loss")));
        double firstVal = Double.NaN, lastVal = Double.NaN, bestVal = Double.POSITIVE_INFINITY, speed = 0;
        int speeds = 0;
        for (JsonNode r : rows) {
            if (r.has("val_loss")) {
                double v = r.get("val_loss").asDouble();
                if (Double.isNaN(firstVal)) firstVal = v;
                lastVal = v;
                bestVal = Math.min(bestVal, v);
            }
            if (r.path("tokens_per_s").asDouble() > 0) {
                speed += r.get("tokens_per_s").asDouble();
                speeds++;
            }
        }
        m.put("val loss (first → last)", String.format(Locale.ROOT, "%.4f → %.4f", firstVal, lastVal));
        m.put("best val loss", String.format(Locale.ROOT, "%.4f", bestVal));
        m.put("mean tokens/s", speeds == 0 ? "-" : String.format(Locale.ROOT, "%,.0f", speed / speeds));
        m.put("elapsed", Trainer.duration(last.path("elapsed_s").asDouble()));
        return m;
    }

    private static Map<String, String> flat(JsonNode node) {
        Map<String, String> m = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = node.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            m.put(e.getKey(), e.getValue().isTextual() ? e.getValue().asText() : e.getValue().toString());
        }
        return m;
    }

    private static String fmt(JsonNode v) { return v.isNumber() ? String.format(Locale.ROOT, "%.4f", v.asDouble()) : "-"; }

    private static String table(Map<String, String> rows) {
        StringBuilder t = new StringBuilder("<table>\n");
        rows.forEach((k, v) -> t.append("<tr><th>").append(esc(k)).append("</th><td>").append(esc(v)).append("</td></tr>\n"));
        return t.append("</table>\n").toString();
    }

    private static String img(byte[] png, String alt) {
        return "<img alt=\"" + esc(alt) + "\" src=\"data:image/png;base64," + Base64.getEncoder().encodeToString(png) + "\">\n";
    }

    private static String esc(String s) {
        return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\"", "&quot;");
    }
}
