package org.volprov.cache;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.source.PublishedChecksum;

/**
 * The sweep that rebuilds a cache's picture from its directory at open (and, for a shared index,
 * after an outage): what {@link CacheFiles} wrote and a crash may have left half done.
 */
final class CacheSweep {
    private static final Logger LOG = LoggerFactory.getLogger(CacheSweep.class);

    private final CacheFiles files;

    CacheSweep(CacheFiles files) {
        this.files = files;
    }

    /**
     * Sweeps the directory and returns what is valid. Removes temp files, metadata without data,
     * data without (or with unreadable) metadata, data whose size differs from its metadata, aliases
     * whose entry is gone, and any file whose name this layout never produces. With {@code verify},
     * also re-hashes every entry and removes those whose content does not match their name.
     *
     * <p>Removes temp files, unknown files and metadata without data only
     * when they were last modified before {@code sweepBefore}: in a directory shared by several
     * processes, a young temp file is another process's download in progress and a young
     * {@code .meta} without data is an entry being installed. Everything else that a writer never
     * leaves behind (data of the wrong size, data without metadata) is removed whatever its age.
     */
    CacheFiles.Scan scan(boolean verify, Instant sweepBefore) {
        Objects.requireNonNull(sweepBefore, "sweepBefore");
        List<Path> data = new ArrayList<>();
        List<Path> metas = new ArrayList<>();
        List<Path> aliases = new ArrayList<>();
        int removed = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(files.directory())) {
            for (Path p : ds) {
                String name = p.getFileName().toString();
                if (name.equals(DiskImageCache.LOCK_FILE) || name.equals(DiskImageCache.STATE_DIRECTORY)) {
                    continue;
                }
                if (PublishedChecksum.isDigest(name)) {
                    data.add(p);
                } else if (name.endsWith(CacheFiles.META) && PublishedChecksum.isDigest(strip(name, CacheFiles.META))) {
                    metas.add(p);
                } else if (name.endsWith(CacheFiles.ALIAS) && PublishedChecksum.isDigest(strip(name, CacheFiles.ALIAS))) {
                    aliases.add(p);
                } else if (olderThan(p, sweepBefore)) {
                    // Temp files of a process that died, or something that does not belong here.
                    removed += CacheFiles.deleteQuietly(p) ? 1 : 0;
                }
            }
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot list cache directory " + files.directory() + ": " + e, e);
        }
        List<CacheIndex.Entry> entries = new ArrayList<>();
        Set<String> kept = new HashSet<>();
        for (Path p : data) {
            String sha = p.getFileName().toString();
            Optional<CacheIndex.Entry> e = readEntry(p, sha, verify);
            if (e.isPresent()) {
                entries.add(e.get());
                kept.add(sha);
            } else {
                removed += CacheFiles.deleteQuietly(p) ? 1 : 0;
                removed += CacheFiles.deleteQuietly(files.metaPath(sha)) ? 1 : 0;
            }
        }
        for (Path m : metas) {
            if (!kept.contains(strip(m.getFileName().toString(), CacheFiles.META)) && olderThan(m, sweepBefore)) {
                removed += CacheFiles.deleteQuietly(m) ? 1 : 0;
            }
        }
        List<CacheIndex.Alias> found = new ArrayList<>();
        for (Path a : aliases) {
            Optional<CacheIndex.Alias> alias = readAlias(a);
            if (alias.isPresent() && kept.contains(alias.get().sha256())) {
                found.add(alias.get());
            } else {
                removed += CacheFiles.deleteQuietly(a) ? 1 : 0;
            }
        }
        if (removed > 0) {
            files.fsyncDirectory();
        }
        entries.sort(Comparator.comparing(CacheIndex.Entry::lastUsed));
        return new CacheFiles.Scan(List.copyOf(entries), List.copyOf(found), removed);
    }

    private static boolean olderThan(Path p, Instant cutoff) {
        if (cutoff.equals(Instant.MAX)) {
            return true;
        }
        try {
            return Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toInstant().isBefore(cutoff);
        } catch (IOException e) {
            return false; // gone already, or unreadable: leave it to a later sweep
        }
    }

    private Optional<CacheIndex.Entry> readEntry(Path data, String sha, boolean verify) {
        try {
            Properties meta = CacheFiles.readProperties(files.metaPath(sha));
            long size = Long.parseLong(meta.getProperty("size", "-1"));
            BasicFileAttributes attrs = Files.readAttributes(data, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!attrs.isRegularFile() || !sha.equals(meta.getProperty("sha256")) || attrs.size() != size) {
                LOG.warn("dropping cache entry {}: size {} on disk, {} in its metadata", sha, attrs.size(), size);
                return Optional.empty();
            }
            if (verify && !sha.equals(CacheFiles.hash(data))) {
                LOG.warn("dropping cache entry {}: its content no longer hashes to its name", sha);
                return Optional.empty();
            }
            return Optional.of(new CacheIndex.Entry(sha, size, attrs.lastModifiedTime().toInstant()));
        } catch (NoSuchFileException e) {
            LOG.warn("dropping cache entry {}: no metadata", sha);
            return Optional.empty();
        } catch (IOException | NumberFormatException e) {
            LOG.warn("dropping cache entry {}: {}", sha, e.toString());
            return Optional.empty();
        }
    }

    private Optional<CacheIndex.Alias> readAlias(Path p) {
        try {
            Properties props = CacheFiles.readProperties(p);
            String identity = props.getProperty("identity");
            String sha = props.getProperty("sha256");
            if (identity == null || !PublishedChecksum.isDigest(sha)
                    || !p.getFileName().toString().equals(CacheFiles.aliasName(identity))) {
                return Optional.empty();
            }
            return Optional.of(new CacheIndex.Alias(identity, sha));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    private static String strip(String name, String suffix) {
        return name.substring(0, name.length() - suffix.length());
    }
}
