package org.volprov.cache;

import java.io.InputStream;
import java.util.Optional;
import java.util.concurrent.atomic.AtomicInteger;
import org.volprov.ImageRef;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;

/** Counts the calls that reach a real source. */
final class CountingImageSource implements ImageSource {
    final AtomicInteger stats = new AtomicInteger();
    final AtomicInteger checksums = new AtomicInteger();
    final AtomicInteger opens = new AtomicInteger();
    private final ImageSource delegate;

    CountingImageSource(ImageSource delegate) {
        this.delegate = delegate;
    }

    int total() {
        return stats.get() + checksums.get() + opens.get();
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        stats.incrementAndGet();
        return delegate.stat(ref);
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        checksums.incrementAndGet();
        return delegate.publishedChecksum(ref);
    }

    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        opens.incrementAndGet();
        return delegate.open(ref, etag, offset, length);
    }
}
