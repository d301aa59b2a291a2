package org.volprov.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import com.github.benmanes.caffeine.cache.Ticker;
import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.time.Clock;
import java.time.Duration;
import java.time.Instant;
import java.util.Objects;
import java.util.Optional;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;

/**
 * An {@link ImageSource} that remembers {@link #stat} answers for a short time (default 2 s) and
 * {@link #publishedChecksum} answers per object version (ref and ETag, default 60 s), so that a
 * burst of jobs for one image makes one round trip each. Concurrent calls for the same ref share
 * one call to the delegate. Failures are not remembered. {@link #open} goes to the delegate; when
 * it says the object changed ({@code IMAGE_CHANGED}), everything remembered about the object is
 * forgotten, so the fresh {@code stat} the engine then makes reaches the delegate. Thread-safe;
 * {@link #close()} closes the delegate.
 *
 * <p>The checksum is keyed by the ETag that the (memoized) stat returns, so a replaced object gets
 * its new checksum as soon as the stat answer expires.
 *
 * <pre>{@code
 * ImageSource source = CachingImageSource.builder(minioSource).statTtl(Duration.ofSeconds(2)).build();
 * }</pre>
 */
public final class CachingImageSource implements ImageSource {
    private final ImageSource delegate;
    private final Cache<ImageRef, ObjectInfo> stats;
    private final Cache<VersionKey, Optional<String>> checksums;
    private final Duration statTtl;
    private final Duration checksumTtl;

    private record VersionKey(ImageRef ref, String etag) {
    }

    private CachingImageSource(Builder b) {
        this.delegate = b.delegate;
        this.statTtl = b.statTtl;
        this.checksumTtl = b.checksumTtl;
        Clock clock = b.clock;
        Ticker ticker = clock == null ? Ticker.systemTicker() : () -> nanos(clock.instant());
        this.stats = Caffeine.newBuilder().ticker(ticker).expireAfterWrite(statTtl)
                .maximumSize(b.maxRefs).executor(Runnable::run).build();
        this.checksums = Caffeine.newBuilder().ticker(ticker).expireAfterWrite(checksumTtl)
                .maximumSize(b.maxRefs).executor(Runnable::run).build();
    }

    private static long nanos(Instant i) {
        return i.getEpochSecond() * 1_000_000_000L + i.getNano();
    }

    /** A builder around {@code delegate}. */
    public static Builder builder(ImageSource delegate) {
        return new Builder(delegate);
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        Objects.requireNonNull(ref, "ref");
        return stats.get(ref, delegate::stat);
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        Objects.requireNonNull(ref, "ref");
        String etag = stat(ref).etag();
        return checksums.get(new VersionKey(ref, etag), k -> delegate.publishedChecksum(k.ref()));
    }

    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        InputStream in;
        try {
            in = delegate.open(ref, etag, offset, length);
        } catch (ProvisioningException e) {
            forgetIfChanged(ref, e);
            throw e;
        }
        return new FilterInputStream(in) {
            @Override
            public int read() throws IOException {
                try {
                    return super.read();
                } catch (ProvisioningException e) {
                    forgetIfChanged(ref, e);
                    throw e;
                }
            }

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    return super.read(b, off, len);
                } catch (ProvisioningException e) {
                    forgetIfChanged(ref, e);
                    throw e;
                }
            }
        };
    }

    private void forgetIfChanged(ImageRef ref, ProvisioningException e) {
        if (e.code() == ErrorCode.IMAGE_CHANGED) {
            invalidate(ref);
        }
    }

    @Override
    public Optional<URI> endpoint() {
        return delegate.endpoint();
    }

    /** Forgets everything remembered about {@code ref}, e.g. after a checksum mismatch. */
    public void invalidate(ImageRef ref) {
        stats.invalidate(ref);
        checksums.asMap().keySet().removeIf(k -> k.ref().equals(ref));
    }

    @Override
    public void close() {
        delegate.close();
    }

    @Override
    public String toString() {
        return "CachingImageSource[" + delegate + ", statTtl=" + statTtl + ", checksumTtl=" + checksumTtl + "]";
    }

    /** Builds a {@link CachingImageSource}; each option is checked when set. */
    public static final class Builder {
        private final ImageSource delegate;
        private Duration statTtl = Duration.ofSeconds(2);
        private Duration checksumTtl = Duration.ofSeconds(60);
        private long maxRefs = 10_000;
        private Clock clock;

        private Builder(ImageSource delegate) {
            this.delegate = Objects.requireNonNull(delegate, "delegate");
        }

        /** How long a stat answer is reused; positive; default 2 s. */
        public Builder statTtl(Duration statTtl) {
            this.statTtl = positive(statTtl, "statTtl");
            return this;
        }

        /** How long a published checksum is reused for one ETag; positive; default 60 s. */
        public Builder checksumTtl(Duration checksumTtl) {
            this.checksumTtl = positive(checksumTtl, "checksumTtl");
            return this;
        }

        /** How many refs are remembered at most; positive; default 10 000. */
        public Builder maxRefs(long maxRefs) {
            if (maxRefs <= 0) {
                throw new IllegalArgumentException("maxRefs must be positive, was " + maxRefs);
            }
            this.maxRefs = maxRefs;
            return this;
        }

        /** The clock the time-to-live is measured against; default the system's monotonic time. */
        public Builder clock(Clock clock) {
            this.clock = Objects.requireNonNull(clock, "clock");
            return this;
        }

        public CachingImageSource build() {
            return new CachingImageSource(this);
        }

        private static Duration positive(Duration d, String name) {
            Objects.requireNonNull(d, name);
            if (d.isZero() || d.isNegative()) {
                throw new IllegalArgumentException(name + " must be positive, was " + d);
            }
            return d;
        }
    }
}
