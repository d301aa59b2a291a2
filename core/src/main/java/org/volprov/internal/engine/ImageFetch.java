package org.volprov.internal.engine;

import java.util.Optional;
import java.util.function.UnaryOperator;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.Stage;
import org.volprov.cache.CacheKey;
import org.volprov.cache.CacheLease;
import org.volprov.cache.CacheSink;
import org.volprov.cache.ImageFiller;
import org.volprov.image.ImageFormat;
import org.volprov.internal.qcow2.HeaderCheck;
import org.volprov.source.ObjectInfo;
import org.volprov.support.Retrier;

/**
 * Gets a job's image into the cache: the object's version and published checksum, a cache hit or
 * a download (judged from its first bytes, restarted when the object is replaced meanwhile). Used
 * by the job's thread.
 */
final class ImageFetch {
    private static final Logger LOG = LoggerFactory.getLogger(ImageFetch.class);
    /** How often a job starts over when its object is replaced during the download, before it fails. */
    static final int MAX_IMAGE_RESTARTS = 3;

    private final JobParts parts;
    private final EngineSettings settings;
    private final Retrier retrier;
    private final JobTracker tracker;
    private final Cancellation cancellation;
    private final String jobId;
    private final ImageFormat format;

    ImageFetch(JobParts parts, JobTracker tracker, Cancellation cancellation) {
        this.parts = parts;
        this.settings = parts.settings();
        this.retrier = parts.retrier();
        this.tracker = tracker;
        this.cancellation = cancellation;
        this.jobId = tracker.job().id();
        this.format = tracker.job().request().format();
    }

    /**
     * A lease on the image: a cache hit, or a download of the object version {@code stat} named.
     * When the object changes during the download ({@code IMAGE_CHANGED}: the source refused a read
     * conditional on that version), the cache has kept nothing of it, and the job starts over from a
     * fresh {@code stat} and checksum, at most {@link #MAX_IMAGE_RESTARTS} times.
     *
     * @param tee what the download's bytes pass through on their way into the cache, in file order
     *     (a streaming {@link VolumeFill#tee}); the identity when nothing watches them
     */
    CacheLease fetch(ImageRef ref, UnaryOperator<CacheSink> tee) {
        for (int restarts = 0; ; restarts++) {
            ObjectInfo info = retrier.call("reading " + ref, () -> settings.source().stat(ref), cancellation);
            Optional<String> published = publishedChecksum(ref);
            CacheKey key = new CacheKey(ref, info.etag(), info.size(), published);
            Optional<CacheLease> hit = settings.cache().lookup(key);
            if (hit.isPresent()) {
                return hit.get();
            }
            tracker.stage(Stage.DOWNLOADING, info.size());
            Download download = new Download(settings.source(), ref, info.etag(), retrier, settings.clock(),
                    cancellation, done -> tracker.progress(Stage.DOWNLOADING, done, info.size()), settings.bufferSize(),
                    settings.downloadParallelism(), settings.downloadPartSize(), parts.downloads());
            try {
                // The image is judged from its first bytes: an unusable one stops the download and is not cached.
                // The tee sees only bytes the header check let through.
                ImageFiller judged = HeaderCheck.before(download, format);
                return settings.cache().admit(key, sink -> judged.fill(tee.apply(sink)), cancellation);
            } catch (ProvisioningException e) {
                if (e.code() != ErrorCode.IMAGE_CHANGED) {
                    throw e;
                }
                if (restarts == MAX_IMAGE_RESTARTS) {
                    throw new ProvisioningException(ErrorCode.IMAGE_CHANGED, ref + " kept changing while it was"
                            + " downloaded: it was replaced during each of " + (restarts + 1) + " downloads, and nothing"
                            + " of it was kept (last: " + e.getMessage() + "); publish images atomically and do not"
                            + " replace one while hosts may be reading it (upload each version under a new key, or"
                            + " replace it in one PUT or copy), then submit again", e);
                }
                LOG.info("job {}: {} changed during its download; starting over from a fresh stat: {}", jobId, ref,
                        e.getMessage());
                cancellation.checkpoint();
                tracker.stage(Stage.RESOLVING, 0);
            }
        }
    }

    /**
     * The published checksum. A sibling the source refuses, of an object it has just let us stat,
     * counts as not published: a policy that grants {@code GetObject} without {@code ListBucket}
     * makes S3 answer 403, not 404, for a missing object. With {@code requirePublishedChecksum}, an
     * image without a readable checksum fails the job instead.
     */
    private Optional<String> publishedChecksum(ImageRef ref) {
        ImageRef sibling = ref.checksumSibling();
        Optional<String> published;
        try {
            published = retrier.call("reading " + sibling, () -> settings.source().publishedChecksum(ref), cancellation);
        } catch (ProvisioningException e) {
            if (e.code() != ErrorCode.ACCESS_DENIED) {
                throw e;
            }
            if (settings.requirePublishedChecksum()) {
                throw new ProvisioningException(ErrorCode.CHECKSUM_MISSING, "the source refused " + sibling + " and the"
                        + " engine requires a published checksum (requirePublishedChecksum): publish " + sibling
                        + " and let the source's credentials read it (S3 answers 403, not 404, for a missing object"
                        + " when the policy does not grant s3:ListBucket); the source said: " + e.getMessage(), e);
            }
            if (parts.refusedChecksumSiblings().first(ref)) {
                LOG.warn("the source refused {} although it serves {}; taking the image as having no published"
                        + " checksum (S3 answers 403, not 404, for a missing object when the policy does not grant"
                        + " s3:ListBucket); requirePublishedChecksum(true) fails such jobs instead; the source said: {}",
                        sibling, ref, e.getMessage());
            }
            return Optional.empty();
        }
        if (published.isEmpty() && settings.requirePublishedChecksum()) {
            throw new ProvisioningException(ErrorCode.CHECKSUM_MISSING, "no SHA-256 is published for " + ref + ": "
                    + sibling + " is absent or holds no digest, and the engine requires one"
                    + " (requirePublishedChecksum); publish it as a bare digest or a sha256sum line");
        }
        return published;
    }
}
