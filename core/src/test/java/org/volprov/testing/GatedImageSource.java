package org.volprov.testing;

import java.io.FilterInputStream;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.volprov.ImageRef;
import org.volprov.source.ImageSource;

/**
 * A real {@link ImageSource} whose downloads stop at their first read until {@link #release} is
 * counted down: a job held mid-download, for tests that cancel, time out or abandon it there.
 * {@link #opened} counts down when a download has opened its stream. A held read gives up with an
 * {@link IOException} when its stream is closed.
 */
public final class GatedImageSource extends ForwardingImageSource {
    public final CountDownLatch opened = new CountDownLatch(1);
    public final CountDownLatch release = new CountDownLatch(1);

    public GatedImageSource(ImageSource delegate) {
        super(delegate);
    }

    @Override
    public InputStream open(ImageRef ref, String etag, long offset, long length) {
        InputStream in = delegate.open(ref, etag, offset, length);
        opened.countDown();
        return new FilterInputStream(in) {
            private volatile boolean closed;

            @Override
            public int read(byte[] b, int off, int len) throws IOException {
                try {
                    while (!release.await(50, TimeUnit.MILLISECONDS)) {
                        if (closed) {
                            throw new IOException("closed");
                        }
                    }
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new IOException(e);
                }
                return super.read(b, off, len);
            }

            @Override
            public void close() throws IOException {
                closed = true;
                super.close();
            }
        };
    }
}
