package org.volprov.cache;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** A held entry of a {@link DiskImageCache}; its open file keeps its bytes readable even if something unlinks it meanwhile. */
record EntryLease(Path path, String sha256, long size, boolean hit, CacheIndex.Hold hold, FileChannel file,
        CacheMaintenance maintenance) implements CacheLease {
    private static final Logger LOG = LoggerFactory.getLogger(EntryLease.class);

    @Override
    public void discard() {
        maintenance.markUnusable(sha256);
    }

    @Override
    public void close() {
        try {
            file.close();
        } catch (IOException e) {
            LOG.debug("closing cache entry {}", sha256, e);
        } finally {
            hold.release();
            maintenance.dropIfUnusable(sha256);
        }
    }
}
