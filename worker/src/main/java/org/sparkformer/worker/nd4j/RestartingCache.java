package org.sparkformer.worker.nd4j;

import java.util.concurrent.ConcurrentHashMap;

/** A concurrent map of at most {@code max} entries that starts again when full: keys that vary without end cannot grow it. */
final class RestartingCache<K, V> {
    private final int max;
    private volatile ConcurrentHashMap<K, V> map = new ConcurrentHashMap<>();

    RestartingCache(int max) { this.max = max; }

    V get(K key) { return map.get(key); }

    /** Keeps the first value given for a key (two threads may make one each: either will do). */
    void put(K key, V value) {
        ConcurrentHashMap<K, V> m = map;
        if (m.size() >= max) map = m = new ConcurrentHashMap<>();
        m.putIfAbsent(key, value);
    }

    int size() { return map.size(); }

    void clear() { map = new ConcurrentHashMap<>(); }
}
