package org.volprov.benchmarks;

import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.State;

/**
 * Bytes moved by a benchmark, reported by JMH as the secondary metric {@code bytes}. Counted as
 * operations, JMH divides it by the same measured time as the primary score, so in throughput
 * mode it reads as bytes per second (JMH labels the unit {@code ops/s}). Setup time is not in it.
 */
@AuxCounters(AuxCounters.Type.OPERATIONS)
@State(Scope.Thread)
public class Bytes {
    public long bytes;
}
