package org.volprov.testing;

import java.nio.channels.ReadableByteChannel;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/** A real {@link VolumeBackend} passed through, for tests to override one call and inject a fault. */
public class ForwardingVolumeBackend implements VolumeBackend {
    protected final VolumeBackend delegate;

    public ForwardingVolumeBackend(VolumeBackend delegate) {
        this.delegate = delegate;
    }

    /** {@code backend} with writers that offer no local path: they are written as a streamed upload is. */
    public static VolumeBackend withoutLocalPaths(VolumeBackend backend) {
        return new ForwardingVolumeBackend(backend) {
            @Override
            public VolumeWriter openWriter(VolumeInfo volume) {
                return new ForwardingVolumeWriter(delegate.openWriter(volume)) {
                    @Override
                    public Optional<Path> localPath() {
                        return Optional.empty();
                    }
                };
            }
        };
    }

    @Override
    public Optional<VolumeInfo> find(String name) {
        return delegate.find(name);
    }

    @Override
    public VolumeInfo create(String name, long capacityBytes) {
        return delegate.create(name, capacityBytes);
    }

    @Override
    public long capacityFor(long requestedBytes) {
        return delegate.capacityFor(requestedBytes);
    }

    @Override
    public VolumeInfo resize(String name, long capacityBytes) {
        return delegate.resize(name, capacityBytes);
    }

    @Override
    public VolumeWriter openWriter(VolumeInfo volume) {
        return delegate.openWriter(volume);
    }

    @Override
    public boolean readsBack() {
        return delegate.readsBack();
    }

    @Override
    public ReadableByteChannel openReader(VolumeInfo volume) {
        return delegate.openReader(volume);
    }

    @Override
    public boolean delete(String name) {
        return delegate.delete(name);
    }
}
