package org.sparkformer.worker.data;

import java.util.Arrays;

/** A growable int array: token streams without boxing. */
public final class IntList {
    private int[] a;
    private int n;

    public IntList(int capacity) { a = new int[Math.max(1, capacity)]; }

    public void add(int v) {
        if (n == a.length) a = Arrays.copyOf(a, Math.max(16, a.length * 2));
        a[n++] = v;
    }

    public void addAll(int[] vs) {
        if (n + vs.length > a.length) a = Arrays.copyOf(a, Math.max(n + vs.length, a.length * 2));
        System.arraycopy(vs, 0, a, n, vs.length);
        n += vs.length;
    }

    public int size() { return n; }

    public int get(int i) { return a[i]; }

    public int[] toArray() { return Arrays.copyOf(a, n); }
}
