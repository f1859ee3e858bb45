package org.sparkformer.driver;

import org.apache.logging.log4j.core.Core;
import org.apache.logging.log4j.core.LogEvent;
import org.apache.logging.log4j.core.appender.rewrite.RewritePolicy;
import org.apache.logging.log4j.core.config.plugins.Plugin;
import org.apache.logging.log4j.core.config.plugins.PluginFactory;
import org.apache.logging.log4j.core.impl.Log4jLogEvent;
import org.apache.logging.log4j.message.SimpleMessage;

import java.util.regex.Pattern;

/**
 * Log4j2 rewrite policy (conf/log4j2*.xml route every appender through it): values of settings whose names say
 * they are secrets ({@code fs.s3a.secret.key}, {@code *.password}, tokens, access keys, credentials) are replaced
 * before any layout sees the message, whoever logged it (our code, Spark, Hadoop). {@link #redact} serves
 * config dumps too.
 */
@Plugin(name = "RedactSecrets", category = Core.CATEGORY_NAME, elementType = "rewritePolicy", printObject = true)
public final class RedactSecrets implements RewritePolicy {
    static final String MASK = "*****(redacted)";
    /** name (containing a secret-ish word) = value, name: value, "name": "value", name -> value. */
    private static final Pattern SECRET = Pattern.compile(
            "(?i)([\\w.\\-]*(?:secret|password|passwd|pwd|token|credential|access[._-]?key|private[._-]?key)[\\w.\\-]*\"?)"
                    + "(\\s*(?:=|:|->)\\s*\"?)(?!\\*{5})([^\\s,;\"'&}\\]\\)]+)");

    @PluginFactory
    public static RedactSecrets create() {
        return new RedactSecrets();
    }

    public static String redact(String text) {
        return text == null ? null : SECRET.matcher(text).replaceAll(m -> java.util.regex.Matcher.quoteReplacement(m.group(1) + m.group(2) + MASK));
    }

    @Override
    public LogEvent rewrite(LogEvent event) {
        String message = event.getMessage().getFormattedMessage();
        String redacted = redact(message);
        if (redacted.equals(message)) return event;
        return new Log4jLogEvent.Builder(event).setMessage(new SimpleMessage(redacted)).build();
    }
}
