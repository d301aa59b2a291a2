package org.volprov;

import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import org.volprov.job.JobStore;

/**
 * An immutable snapshot of a job. Every change makes a new snapshot through the {@code with*}
 * methods; the {@link JobStore} holds the latest one.
 *
 * @param id the job id, unique within a store
 * @param request what was asked
 * @param state the job's state
 * @param progress the current stage and its byte counts
 * @param errorCode why the job failed, null unless FAILED, CANCELLED or TIMED_OUT
 * @param errorMessage a message a person can act on, null when errorCode is null
 * @param cacheHit whether the image came from the cache without a download by this job
 * @param imageDigest the image's SHA-256, null until known
 * @param volumePath where the volume lives (a path or a backend key), null until created or found
 * @param createdVolume whether this job created the volume (and so may delete it on failure)
 * @param attempts how many times the job was started (a resumed job counts again)
 * @param createdAt when the job was submitted
 * @param startedAt when it last started running, null while pending
 * @param updatedAt when the snapshot was made
 * @param finishedAt when it reached a terminal state, null before
 */
public record Job(
        String id,
        ProvisionRequest request,
        JobState state,
        Progress progress,
        ErrorCode errorCode,
        String errorMessage,
        boolean cacheHit,
        String imageDigest,
        String volumePath,
        boolean createdVolume,
        int attempts,
        Instant createdAt,
        Instant startedAt,
        Instant updatedAt,
        Instant finishedAt) {

    public Job {
        Objects.requireNonNull(id, "id");
        Objects.requireNonNull(request, "request");
        Objects.requireNonNull(state, "state");
        Objects.requireNonNull(progress, "progress");
        Objects.requireNonNull(createdAt, "createdAt");
        Objects.requireNonNull(updatedAt, "updatedAt");
    }

    /** A new pending job. */
    public static Job pending(String id, ProvisionRequest request, Instant now) {
        return new Job(id, request, JobState.PENDING, Progress.of(Stage.QUEUED), null, null, false, null, null,
                false, 0, now, null, now, null);
    }

    /** What the job does: its request's kind. */
    public JobKind kind() {
        return request.kind();
    }

    public Stage stage() {
        return progress.stage();
    }

    public Optional<ErrorCode> error() {
        return Optional.ofNullable(errorCode);
    }

    public Job running(Instant now) {
        return new Job(id, request, JobState.RUNNING, progress, null, null, cacheHit, imageDigest, volumePath,
                createdVolume, attempts + 1, createdAt, now, now, null);
    }

    public Job withProgress(Progress p, Instant now) {
        return new Job(id, request, state, p, errorCode, errorMessage, cacheHit, imageDigest, volumePath,
                createdVolume, attempts, createdAt, startedAt, now, finishedAt);
    }

    public Job withImage(String digest, boolean hit, Instant now) {
        return new Job(id, request, state, progress, errorCode, errorMessage, hit, digest, volumePath,
                createdVolume, attempts, createdAt, startedAt, now, finishedAt);
    }

    public Job withVolume(String path, boolean created, Instant now) {
        return new Job(id, request, state, progress, errorCode, errorMessage, cacheHit, imageDigest, path,
                created, attempts, createdAt, startedAt, now, finishedAt);
    }

    /** Moves to a terminal state. */
    public Job finished(JobState terminal, ErrorCode code, String message, Instant now) {
        if (!terminal.terminal()) {
            throw new IllegalArgumentException(terminal + " is not terminal");
        }
        return new Job(id, request, terminal, progress, code, message, cacheHit, imageDigest, volumePath,
                createdVolume, attempts, createdAt, startedAt, now, now);
    }
}
