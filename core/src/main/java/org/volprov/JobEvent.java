package org.volprov;

/**
 * Something that happened to a job.
 *
 * @param kind what changed
 * @param job the job's snapshot after the change
 */
public record JobEvent(Kind kind, Job job) {
    public enum Kind {
        /** The job's state changed (submitted, started, finished). */
        STATE,
        /** The job entered a new stage. */
        STAGE,
        /** Bytes moved within the current stage. */
        PROGRESS
    }
}
