package org.volprov;

import java.util.Optional;
import java.util.Set;

/**
 * Which jobs to list. Empty fields match everything.
 *
 * @param states the states to include; empty for all
 * @param volumeName only jobs for this volume
 * @param correlationId only jobs with this correlation id
 * @param limit at most this many jobs, newest first
 */
public record JobFilter(Set<JobState> states, Optional<String> volumeName, Optional<String> correlationId, int limit) {
    public static final int DEFAULT_LIMIT = 100;

    public JobFilter {
        states = Set.copyOf(states == null ? Set.of() : states);
        volumeName = volumeName == null ? Optional.empty() : volumeName;
        correlationId = correlationId == null ? Optional.empty() : correlationId;
        if (limit <= 0) {
            throw new IllegalArgumentException("limit must be greater than 0");
        }
    }

    public static JobFilter all() {
        return new JobFilter(Set.of(), Optional.empty(), Optional.empty(), DEFAULT_LIMIT);
    }

    public static JobFilter inStates(JobState... states) {
        return new JobFilter(Set.of(states), Optional.empty(), Optional.empty(), DEFAULT_LIMIT);
    }

    public JobFilter withVolumeName(String name) {
        return new JobFilter(states, Optional.of(name), correlationId, limit);
    }

    public JobFilter withCorrelationId(String id) {
        return new JobFilter(states, volumeName, Optional.of(id), limit);
    }

    public JobFilter withLimit(int max) {
        return new JobFilter(states, volumeName, correlationId, max);
    }

    /** Whether {@code job} passes this filter, ignoring the limit. */
    public boolean matches(Job job) {
        return (states.isEmpty() || states.contains(job.state()))
                && volumeName.map(v -> v.equals(job.request().volumeName())).orElse(true)
                && correlationId.map(c -> c.equals(job.request().correlationId())).orElse(true);
    }
}
