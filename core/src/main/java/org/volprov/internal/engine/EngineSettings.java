package org.volprov.internal.engine;

import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;
import java.util.Objects;
import java.util.concurrent.Executor;
import java.util.concurrent.ScheduledExecutorService;
import org.volprov.ImageRef;
import org.volprov.ProvisionRequest;
import org.volprov.Provisioner;
import org.volprov.ProvisioningException;
import org.volprov.RetryPolicy;
import org.volprov.Sleeper;
import org.volprov.Ticker;
import org.volprov.cache.ImageCache;
import org.volprov.image.ImageConverter;
import org.volprov.job.JobQueue;
import org.volprov.job.JobStore;
import org.volprov.source.ImageSource;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeGuard;

/**
 * An engine's validated settings, built once by {@link Provisioner.Builder#build()}. The parts the
 * builder made itself are marked as the engine's ({@code ownsCache}, {@code ownsJobStore}). Public
 * only so that the builder can hand it to {@link Engine#start}; not an API.
 *
 * @param executor runs jobs; null: the engine owns a pool of {@code maxConcurrentJobs} threads
 * @param scheduler runs the engine's periodic tasks; null: the engine owns one thread per task
 * @param queue the fleet's queue (also the job store), or null
 * @param queuePoll how often the queue is polled; null without a queue
 * @param volumeGuard keeps two jobs off one volume; null: the default, which guards this process only
 * @param stateDirectory where ends the store did not take are kept; null when the engine has none
 * @param verifyWrittenVolume whether each written volume is read back and checked ({@link VolumeReadBack})
 */
public record EngineSettings(
        ImageSource source,
        ImageCache cache,
        boolean ownsCache,
        VolumeBackend backend,
        JobStore jobStore,
        boolean ownsJobStore,
        ImageConverter converter,
        VolumeGuard volumeGuard,
        int maxConcurrentJobs,
        int queueCapacity,
        Duration jobTimeout,
        RetryPolicy retryPolicy,
        Clock clock,
        Ticker ticker,
        Sleeper sleeper,
        Executor executor,
        ScheduledExecutorService scheduler,
        Provisioner.RecoveryMode recoveryMode,
        Provisioner.ShutdownMode shutdownMode,
        Duration shutdownGrace,
        long maxVolumeBytes,
        long sizeToleranceBytes,
        Duration watchdogInterval,
        Path workDirectory,
        int bufferSize,
        int downloadParallelism,
        long downloadPartSize,
        boolean requirePublishedChecksum,
        JobQueue queue,
        Duration queuePoll,
        String engineId,
        Duration jobLease,
        Path stateDirectory,
        boolean verifyWrittenVolume) {

    public EngineSettings {
        Objects.requireNonNull(source, "source");
        Objects.requireNonNull(cache, "cache");
        Objects.requireNonNull(backend, "backend");
        Objects.requireNonNull(jobStore, "jobStore");
        Objects.requireNonNull(converter, "converter");
        if (volumeGuard == null) {
            volumeGuard = new InProcessVolumeGuard();
        }
        Objects.requireNonNull(clock, "clock");
        Objects.requireNonNull(ticker, "ticker");
        Objects.requireNonNull(sleeper, "sleeper");
        Objects.requireNonNull(engineId, "engineId");
    }

    /**
     * The checks of {@link Provisioner#validate} that depend on this engine.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming the field
     */
    void validate(ProvisionRequest request) {
        Objects.requireNonNull(request, "request");
        if (request.volumeSizeBytes() > maxVolumeBytes) {
            throw ProvisioningException.invalid("volumeSizeBytes", "must be at most " + maxVolumeBytes
                    + " bytes (the configured maximum)");
        }
        ImageRef.parse(request.imageUri(), source.endpoint());
    }

    /** How often jobs of engines whose lease ran out are looked for: a third of the lease. */
    Duration recoveryInterval() {
        return jobLease.dividedBy(3);
    }

    long watchdogMillis() {
        return watchdogInterval.toMillis();
    }
}
