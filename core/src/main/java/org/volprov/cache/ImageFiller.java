package org.volprov.cache;

import java.io.IOException;
import org.volprov.ProvisioningException;

/** Writes an image's bytes into a cache sink: the download. */
@FunctionalInterface
public interface ImageFiller {
    /**
     * Writes bytes from {@code sink.position()} up to {@code sink.size()}. May throw a
     * {@link ProvisioningException} (its code reaches the job) or an {@link IOException}.
     */
    void fill(CacheSink sink) throws IOException;
}
