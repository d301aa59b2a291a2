package org.volprov.testing;

import java.io.InputStream;
import java.util.Optional;
import org.volprov.ImageRef;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;

/** A real {@link ImageSource} passed through, for tests to override one call and inject a fault. */
public class ForwardingImageSource implements ImageSource {
    protected final ImageSource delegate;

    public ForwardingImageSource(ImageSource delegate) {
        this.delegate = delegate;
    }

    @Override
    public ObjectInfo stat(ImageRef ref) {
        return delegate.stat(ref);
    }

    @Override
    public Optional<String> publishedChecksum(ImageRef ref) {
        return delegate.publishedChecksum(ref);
    }

    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        return delegate.open(ref, etag, offset, length);
    }
}
