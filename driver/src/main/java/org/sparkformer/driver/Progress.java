package org.sparkformer.driver;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.Logger;

import java.io.PrintStream;
import java.util.Locale;

/**
 * How training shows where it is. On a terminal, one line that redraws after every round (step/total, a
 * bar, loss, tokens/s, ETA), with evaluations printed as lasting lines above it; elsewhere (CI, YARN
 * container logs, pipes) a plain log line per round.
 */
interface Progress {
    record Status(long step, long total, double loss, double lr, double tokensPerSecond, double elapsed, double eta) {}

    void round(Status s);

    /** A line that stays (evaluations, warnings). */
    void event(String line);

    default void close() {}

    static Progress choose(String mode, PrintStream terminal) {
        boolean tty = System.console() != null;
        return switch (mode) {
            case "bar" -> new Bar(terminal);
            case "log" -> new Log();
            default -> tty ? new Bar(terminal) : new Log();
        };
    }

    /** A log line per round. */
    final class Log implements Progress {
        private static final Logger log = LogManager.getLogger(Trainer.class);

        @Override public void round(Status s) {
            log.info("step {}/{} | loss {} | lr {} | {} tok/s | elapsed {} | eta {}", s.step(), s.total(), Trainer.fmt(s.loss()),
                    String.format(Locale.ROOT, "%.2e", s.lr()), String.format(Locale.ROOT, "%,.0f", s.tokensPerSecond()),
                    Trainer.duration(s.elapsed()), Trainer.duration(s.eta()));
        }

        @Override public void event(String line) { log.info(line); }
    }

    /** One redrawn line: carriage return, erase line, then the status. */
    final class Bar implements Progress {
        static final String REDRAW = "\r\u001b[2K";
        private final PrintStream out;
        private String last = "";

        Bar(PrintStream out) { this.out = out; }

        @Override public void round(Status s) {
            int width = 24, filled = (int) (width * s.step() / Math.max(1, s.total()));
            last = String.format(Locale.ROOT, "step %d/%d [%s%s] %3.0f%% | loss %s | %,.0f tok/s | elapsed %s | eta %s",
                    s.step(), s.total(), "#".repeat(filled), ".".repeat(width - filled), 100.0 * s.step() / Math.max(1, s.total()),
                    Trainer.fmt(s.loss()), s.tokensPerSecond(), Trainer.duration(s.elapsed()), Trainer.duration(s.eta()));
            out.print(REDRAW + last);
            out.flush();
        }

        @Override public void event(String line) {
            out.print(REDRAW + line + "\n" + last);
            out.flush();
        }

        @Override public void close() {
            if (!last.isEmpty()) out.println();
            out.flush();
        }
    }
}
