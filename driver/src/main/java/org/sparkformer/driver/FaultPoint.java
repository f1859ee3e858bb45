package org.sparkformer.driver;

import java.util.concurrent.atomic.AtomicInteger;

/**
 * Crash tests' hook: with {@code -Dsparkformer.fault=NAME} the process halts (as kill -9 would: no shutdown
 * hooks, nothing flushed) the (skip+1)-th time it reaches the point NAME ({@code -Dsparkformer.fault.skip=N}).
 * Unset, a point costs one property lookup.
 */
final class FaultPoint {
    private static final AtomicInteger hits = new AtomicInteger();

    private FaultPoint() {}

    static void reach(String name) {
        if (!name.equals(System.getProperty("sparkformer.fault"))) return;
        if (hits.getAndIncrement() >= Integer.getInteger("sparkformer.fault.skip", 0)) Runtime.getRuntime().halt(137);
    }
}
