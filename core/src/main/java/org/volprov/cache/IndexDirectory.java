package org.volprov.cache;

import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.time.Clock;
import java.time.Duration;

/** The cache directory as its index sees it after load; a rescan spares young files when the directory is shared. */
final class IndexDirectory implements CacheIndex.Directory {
    private final CacheFiles files;
    private final Duration staleTempAfter;
    private final Clock clock;

    /** @param staleTempAfter null when the directory is not shared */
    IndexDirectory(CacheFiles files, Duration staleTempAfter, Clock clock) {
        this.files = files;
        this.staleTempAfter = staleTempAfter;
        this.clock = clock;
    }

    @Override
    public Path path() {
        return files.directory();
    }

    @Override
    public CacheIndex.Contents scan() {
        return (staleTempAfter == null ? files.scan(false) : files.scan(false, clock.instant().minus(staleTempAfter)))
                .contents();
    }

    @Override
    public boolean contains(String sha256) {
        return Files.exists(files.entryPath(sha256), LinkOption.NOFOLLOW_LINKS);
    }
}
