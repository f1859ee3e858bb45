# Sourced by the launchers: the JVM flags Spark and ND4J need on Java 17 (see ../shared/NOTES.md), and Aeron's
# timeout for --sync sharing (Aeron rejects its own default). Trainer.JAVA17_FLAGS gives executors the same.
JAVA17_OPENS=()
for p in java.lang java.lang.invoke java.lang.reflect java.io java.net java.nio java.util java.util.concurrent \
    java.util.concurrent.atomic jdk.internal.ref sun.nio.ch sun.nio.cs sun.security.action sun.util.calendar; do
  JAVA17_OPENS+=("--add-opens=java.base/$p=ALL-UNNAMED")
done
JAVA17_OPENS+=(-Djdk.reflect.useDirectMethodHandle=false -Daeron.publication.unblock.timeout=60000000000)
