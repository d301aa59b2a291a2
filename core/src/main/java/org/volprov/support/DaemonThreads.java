package org.volprov.support;

import java.util.concurrent.ThreadFactory;
import java.util.concurrent.atomic.AtomicInteger;

/** Makes the library's threads: daemon threads named {@code <prefix>-<n>}, so that none keeps a JVM alive. */
public final class DaemonThreads {
    private DaemonThreads() {
    }

    /** A factory whose threads are daemons named {@code prefix-1}, {@code prefix-2}, ... */
    public static ThreadFactory named(String prefix) {
        AtomicInteger n = new AtomicInteger();
        return r -> {
            Thread t = new Thread(r, prefix + "-" + n.incrementAndGet());
            t.setDaemon(true);
            return t;
        };
    }
}
