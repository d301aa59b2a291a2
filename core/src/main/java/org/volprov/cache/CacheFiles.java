package org.volprov.cache;

import java.io.IOException;
import java.io.InputStream;
import java.io.Reader;
import java.io.StringReader;
import java.io.StringWriter;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.CancellationException;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.source.PublishedChecksum;
import org.volprov.support.IoErrors;

/**
 * The file half of a disk image cache: temp files, the hashing sink, fsync, rename into place,
 * metadata and identity-alias files, and the sweep that rebuilds the picture from disk at open.
 * It knows nothing about budgets, LRU order or leases; those belong to a {@link CacheIndex}. A
 * second cache implementation (a shared index in Redis) reuses this class unchanged.
 *
 * <p>Layout of the directory (flat, one file system, every name derived from a SHA-256 so that
 * nothing from a request reaches a path):
 *
 * <pre>
 * &lt;dir&gt;/&lt;sha256&gt;        the image bytes as downloaded (a compressed qcow2 stays compressed), read-only
 * &lt;dir&gt;/&lt;sha256&gt;.meta   properties: sha256, size; written and fsynced before the data file is renamed in
 * &lt;dir&gt;/&lt;h&gt;.alias        properties: identity, sha256; h = SHA-256 of the identity (bucket/key@etag#size)
 * &lt;dir&gt;/&lt;random&gt;.tmp     a download or small file being written; removed by {@link #scan}
 * &lt;dir&gt;/lock             held by the cache that owns the directory (held shared by each of several
 *                         processes when they share it, see DiskImageCache.Builder#sharedDirectory)
 * &lt;dir&gt;/state/           the engine's own state, never swept (DiskImageCache#STATE_DIRECTORY)
 * </pre>
 *
 * <p>Crash safety: a data file only ever appears under its digest name through an atomic rename
 * after its bytes were written, fsynced and verified, and after its {@code .meta} was made durable;
 * the directory is fsynced after each rename. So a crash leaves temp files (swept), a {@code .meta}
 * without data (swept) or a complete entry. {@link #scan} also drops data whose size differs from
 * its metadata, and with {@code verify} re-hashes every entry.
 *
 * <p>Thread-safe: distinct fills run in parallel; a {@link Fill} is used by one thread at a time.
 */
public final class CacheFiles {
    private static final Logger LOG = LoggerFactory.getLogger(CacheFiles.class);
    private static final String META = ".meta";
    private static final String ALIAS = ".alias";
    private static final String TMP = ".tmp";
    private static final int READ_BUFFER = 1 << 20;
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final HexFormat HEX = HexFormat.of();

    private final Path dir;
    private final ChannelOpener opener;

    /** Opens the channel a fill writes to; replaced in tests that need a failing disk without a small file system. */
    @FunctionalInterface
    interface ChannelOpener {
        FileChannel open(Path path, Set<? extends OpenOption> options) throws IOException;
    }

    private CacheFiles(Path dir, ChannelOpener opener) {
        this.dir = dir;
        this.opener = opener;
    }

    /**
     * The file store in {@code dir}, created when missing. Opening changes nothing on disk;
     * {@link #scan} sweeps.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the directory cannot be created
     */
    public static CacheFiles open(Path dir) {
        return open(dir, (p, o) -> FileChannel.open(p, o));
    }

    static CacheFiles open(Path dir, ChannelOpener opener) {
        Objects.requireNonNull(dir, "directory");
        Path abs = dir.toAbsolutePath().normalize();
        try {
            Files.createDirectories(abs);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot create cache directory " + abs + ": " + e, e);
        }
        return new CacheFiles(abs, opener);
    }

    /** The cache directory, absolute. */
    public Path directory() {
        return dir;
    }

    /** Where the entry with digest {@code sha256} lives (whether or not it exists). */
    public Path entryPath(String sha256) {
        requireDigest(sha256);
        return dir.resolve(sha256);
    }

    /** Bytes the file system under the directory can still give this process. */
    public long usableSpace() {
        try {
            return Files.getFileStore(dir).getUsableSpace();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read free space of " + dir + ": " + e, e);
        }
    }

    /** An entry found on disk. {@code lastUsed} is the data file's modification time. */
    public record Entry(String sha256, long size, Instant lastUsed) {
    }

    /** An identity alias found on disk: the object version {@code identity} has content {@code sha256}. */
    public record Alias(String identity, String sha256) {
    }

    /** What {@link #scan} found and kept: entries oldest first, and the aliases whose entry exists. */
    public record Contents(List<Entry> entries, List<Alias> aliases, int removed) {
    }

    /**
     * Sweeps the directory and returns what is valid. Removes temp files, metadata without data,
     * data without (or with unreadable) metadata, data whose size differs from its metadata, aliases
     * whose entry is gone, and any file whose name this layout never produces. With {@code verify},
     * also re-hashes every entry and removes those whose content does not match their name.
     * Call only while no other process uses the directory; {@link #scan(boolean, Instant)} is for
     * a directory that others write to at the same time.
     */
    public Contents scan(boolean verify) {
        return scan(verify, Instant.MAX);
    }

    /**
     * Like {@link #scan(boolean)}, but removes temp files, unknown files and metadata without data
     * only when they were last modified before {@code sweepBefore}: in a directory shared by several
     * processes, a young temp file is another process's download in progress and a young
     * {@code .meta} without data is an entry being installed. Everything else that a writer never
     * leaves behind (data of the wrong size, data without metadata) is removed whatever its age.
     */
    public Contents scan(boolean verify, Instant sweepBefore) {
        Objects.requireNonNull(sweepBefore, "sweepBefore");
        List<Path> data = new ArrayList<>();
        List<Path> metas = new ArrayList<>();
        List<Path> aliases = new ArrayList<>();
        int removed = 0;
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir)) {
            for (Path p : ds) {
                String name = p.getFileName().toString();
                if (name.equals(DiskImageCache.LOCK_FILE) || name.equals(DiskImageCache.STATE_DIRECTORY)) {
                    continue;
                }
                if (PublishedChecksum.isDigest(name)) {
                    data.add(p);
                } else if (name.endsWith(META) && PublishedChecksum.isDigest(strip(name, META))) {
                    metas.add(p);
                } else if (name.endsWith(ALIAS) && PublishedChecksum.isDigest(strip(name, ALIAS))) {
                    aliases.add(p);
                } else if (olderThan(p, sweepBefore)) {
                    // Temp files of a process that died, or something that does not belong here.
                    removed += deleteQuietly(p) ? 1 : 0;
                }
            }
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot list cache directory " + dir + ": " + e, e);
        }
        List<Entry> entries = new ArrayList<>();
        java.util.Set<String> kept = new java.util.HashSet<>();
        for (Path p : data) {
            String sha = p.getFileName().toString();
            Optional<Entry> e = readEntry(p, sha, verify);
            if (e.isPresent()) {
                entries.add(e.get());
                kept.add(sha);
            } else {
                removed += deleteQuietly(p) ? 1 : 0;
                removed += deleteQuietly(metaPath(sha)) ? 1 : 0;
            }
        }
        for (Path m : metas) {
            if (!kept.contains(strip(m.getFileName().toString(), META)) && olderThan(m, sweepBefore)) {
                removed += deleteQuietly(m) ? 1 : 0;
            }
        }
        List<Alias> found = new ArrayList<>();
        for (Path a : aliases) {
            Optional<Alias> alias = readAlias(a);
            if (alias.isPresent() && kept.contains(alias.get().sha256())) {
                found.add(alias.get());
            } else {
                removed += deleteQuietly(a) ? 1 : 0;
            }
        }
        if (removed > 0) {
            fsyncDirectory();
        }
        entries.sort(Comparator.comparing(Entry::lastUsed));
        return new Contents(List.copyOf(entries), List.copyOf(found), removed);
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

    private Optional<Entry> readEntry(Path data, String sha, boolean verify) {
        try {
            Properties meta = readProperties(metaPath(sha));
            long size = Long.parseLong(meta.getProperty("size", "-1"));
            BasicFileAttributes attrs = Files.readAttributes(data, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
            if (!attrs.isRegularFile() || !sha.equals(meta.getProperty("sha256")) || attrs.size() != size) {
                LOG.warn("dropping cache entry {}: size {} on disk, {} in its metadata", sha, attrs.size(), size);
                return Optional.empty();
            }
            if (verify && !sha.equals(hash(data))) {
                LOG.warn("dropping cache entry {}: its content no longer hashes to its name", sha);
                return Optional.empty();
            }
            return Optional.of(new Entry(sha, size, attrs.lastModifiedTime().toInstant()));
        } catch (NoSuchFileException e) {
            LOG.warn("dropping cache entry {}: no metadata", sha);
            return Optional.empty();
        } catch (IOException | NumberFormatException e) {
            LOG.warn("dropping cache entry {}: {}", sha, e.toString());
            return Optional.empty();
        }
    }

    private Optional<Alias> readAlias(Path p) {
        try {
            Properties props = readProperties(p);
            String identity = props.getProperty("identity");
            String sha = props.getProperty("sha256");
            if (identity == null || !PublishedChecksum.isDigest(sha)
                    || !p.getFileName().toString().equals(aliasName(identity))) {
                return Optional.empty();
            }
            return Optional.of(new Alias(identity, sha));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /**
     * A new temp file of {@code size} bytes to fill. The caller {@link Fill#close() closes} it in a
     * finally block; a fill that was not {@link #install installed} is deleted then.
     *
     * @param cancellation checked before every write, so a cancelled download stops at the next chunk
     * @param onBytes told how many bytes each write added (for statistics); may be a no-op
     */
    public Fill newFill(long size, Cancellation cancellation, LongConsumer onBytes) {
        return newFill(size, cancellation, onBytes, null);
    }

    /**
     * Like {@link #newFill(long, Cancellation, LongConsumer)}, hashing on {@code hashing} while the
     * caller writes, so that hashing and writing overlap instead of adding up; the bytes are hashed
     * in the order they were written, from copies (at most {@value Fill#HASH_SLICES} slices of
     * {@value Fill#HASH_SLICE} bytes per fill). Null hashes on the writing thread.
     */
    public Fill newFill(long size, Cancellation cancellation, LongConsumer onBytes, Executor hashing) {
        if (size < 0) {
            throw new IllegalArgumentException("size must not be negative");
        }
        Path tmp = newTempPath();
        try {
            FileChannel ch = opener.open(tmp, Set.of(StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW));
            return new Fill(tmp, ch, size, Objects.requireNonNull(cancellation, "cancellation"),
                    Objects.requireNonNull(onBytes, "onBytes"), hashing);
        } catch (IOException e) {
            IoErrors.translate(e, "cannot create a cache file in " + dir);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot create a cache file in " + dir + ": " + e, e);
        }
    }

    /**
     * Makes a verified fill an entry: writes and fsyncs its metadata, renames the data into place
     * and fsyncs the directory. When an entry with the same digest exists already (the same content
     * reached under another identity) the existing file is kept and the fill is left as it is: its
     * caller closes it (which deletes it) once it holds the entry, or installs it again if the
     * existing file was evicted meanwhile.
     *
     * @return the entry's path
     * @throws ProvisioningException {@code INSUFFICIENT_SPACE} or {@code BACKEND_FAILURE}
     */
    public Path install(Fill fill) {
        String sha = fill.verifiedDigest();
        Path target = entryPath(sha);
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
            return target;
        }
        Properties meta = new Properties();
        meta.setProperty("sha256", sha);
        meta.setProperty("size", Long.toString(fill.size));
        try {
            writeSmallFile(metaPath(sha), meta);
            try {
                fill.tmp.toFile().setReadOnly();
                Files.move(fill.tmp, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("the cache directory does not support atomic rename", e);
            }
            fill.installed = true;
            fsyncDirectory();
            return target;
        } catch (IOException e) {
            IoErrors.translate(e, "cannot install cache entry " + sha);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot install cache entry " + sha + ": " + e, e);
        } finally {
            fill.close();
        }
    }

    /**
     * Opens the data file of the entry {@code sha256} for reading, or returns empty when it is not
     * there. A cache opens it once it holds the entry in its index, which no longer evicts it then:
     * a file missing at that point was removed behind the index's back (by hand, or by an eviction
     * that raced with the entry's install), and the entry is to be dropped.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the file is there but cannot be opened
     */
    public Optional<FileChannel> openEntry(String sha256) {
        Path p = entryPath(sha256);
        try {
            return Optional.of(FileChannel.open(p, StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS));
        } catch (NoSuchFileException e) {
            return Optional.empty();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot open cache entry " + p + ": " + e, e);
        }
    }

    /** Records that object version {@code identity} has content {@code sha256}, durably. */
    public void writeAlias(String identity, String sha256) {
        requireDigest(sha256);
        Properties p = new Properties();
        p.setProperty("identity", Objects.requireNonNull(identity, "identity"));
        p.setProperty("sha256", sha256);
        try {
            writeSmallFile(dir.resolve(aliasName(identity)), p);
            fsyncDirectory();
        } catch (IOException e) {
            IoErrors.translate(e, "cannot record the digest of " + identity);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot record the digest of " + identity + ": " + e, e);
        }
    }

    /** Removes the alias of {@code identity}, if any. */
    public void deleteAlias(String identity) {
        deleteQuietly(dir.resolve(aliasName(identity)));
    }

    /**
     * Removes the entry with digest {@code sha256}: data first, so that a crash between the two
     * deletes leaves metadata without data, which the next scan sweeps. The caller makes sure no
     * one holds it.
     */
    public void delete(String sha256) {
        requireDigest(sha256);
        deleteQuietly(entryPath(sha256));
        deleteQuietly(metaPath(sha256));
    }

    /** Marks the entry as used now, so that the LRU order survives a restart. Best effort. */
    public void touch(String sha256) {
        try {
            Files.setLastModifiedTime(entryPath(sha256), java.nio.file.attribute.FileTime.from(Instant.now()));
        } catch (IOException e) {
            LOG.debug("cannot touch cache entry {}", sha256, e);
        }
    }

    /** The SHA-256 of a file, lower-case hex. */
    public static String hash(Path file) throws IOException {
        MessageDigest md = sha256();
        byte[] buf = new byte[READ_BUFFER];
        try (InputStream in = Files.newInputStream(file)) {
            int n;
            while ((n = in.read(buf)) > 0) {
                md.update(buf, 0, n);
            }
        }
        return HEX.formatHex(md.digest());
    }

    /** The name of the alias file of {@code identity}: a digest of it, so the identity never reaches a path. */
    static String aliasName(String identity) {
        return HEX.formatHex(sha256().digest(identity.getBytes(StandardCharsets.UTF_8))) + ALIAS;
    }

    private Path metaPath(String sha256) {
        return dir.resolve(sha256 + META);
    }

    private Path newTempPath() {
        byte[] b = new byte[16];
        RANDOM.nextBytes(b);
        return dir.resolve(HEX.formatHex(b) + TMP);
    }

    private void writeSmallFile(Path target, Properties content) throws IOException {
        StringWriter w = new StringWriter();
        content.store(w, null);
        byte[] bytes = w.toString().getBytes(StandardCharsets.UTF_8);
        Path tmp = newTempPath();
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                ByteBuffer buf = ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } finally {
            deleteQuietly(tmp);
        }
    }

    private static Properties readProperties(Path p) throws IOException {
        Properties props = new Properties();
        try (Reader r = new StringReader(Files.readString(p, StandardCharsets.UTF_8))) {
            props.load(r);
        }
        return props;
    }

    void fsyncDirectory() {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot fsync cache directory " + dir + ": " + e, e);
        }
    }

    private static boolean deleteQuietly(Path p) {
        try {
            return Files.deleteIfExists(p);
        } catch (IOException e) {
            LOG.warn("cannot delete {}: {}", p, e.toString());
            return false;
        }
    }

    private static String strip(String name, String suffix) {
        return name.substring(0, name.length() - suffix.length());
    }

    private static void requireDigest(String sha256) {
        if (!PublishedChecksum.isDigest(sha256)) {
            throw new IllegalArgumentException("sha256 must be 64 lower-case hex characters");
        }
    }

    static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }

    @Override
    public String toString() {
        return "CacheFiles[" + dir + "]";
    }

    /**
     * One download in progress: a temp file in the cache directory and the SHA-256 of what was
     * written so far. Writes append; {@link #position()} is exact, so a filler that lost its source
     * resumes there without anything being hashed twice. Used by one thread at a time.
     */
    public static final class Fill implements CacheSink, AutoCloseable {
        static final int HASH_SLICE = 1 << 20;
        static final int HASH_SLICES = 4;
        /** Writes smaller than this are hashed in place: a hand-over would cost more than it saves. */
        private static final int HASH_INLINE_BELOW = 64 * 1024;

        private final Path tmp;
        private final FileChannel channel;
        private final long size;
        private final Cancellation cancellation;
        private final LongConsumer onBytes;
        private final MessageDigest digest = sha256();
        private final Executor hashing;
        private final ArrayBlockingQueue<ByteBuffer> spareSlices = new ArrayBlockingQueue<>(HASH_SLICES);
        private int slicesMade;
        /** The last hash task; each runs after the one before, so the digest sees the bytes in order. */
        private CompletableFuture<Void> hashed = CompletableFuture.completedFuture(null);
        private long position;
        private String verified;
        private boolean closed;
        private boolean installed;
        private IOException writeFailure;

        private Fill(Path tmp, FileChannel channel, long size, Cancellation cancellation, LongConsumer onBytes,
                Executor hashing) {
            this.tmp = tmp;
            this.channel = channel;
            this.size = size;
            this.cancellation = cancellation;
            this.onBytes = onBytes;
            this.hashing = hashing;
        }

        @Override
        public long position() {
            return position;
        }

        @Override
        public long size() {
            return size;
        }

        @Override
        public void write(ByteBuffer src) throws IOException {
            if (closed || verified != null) {
                throw new IllegalStateException("the fill is finished");
            }
            if (writeFailure != null) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "an earlier write to " + tmp + " failed",
                        writeFailure);
            }
            cancellation.checkpoint();
            int n = src.remaining();
            if (position + n > size) {
                throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the source sent more than the "
                        + size + " bytes it announced");
            }
            // Hashed from a duplicate (or a copy of it) so the hash and the file see the same bytes.
            hash(src.duplicate());
            try {
                while (src.hasRemaining()) {
                    channel.write(src);
                }
            } catch (IOException e) {
                // The fill cannot continue: its hash may hold bytes the file does not. A disk fault is
                // reported unchecked so that a filler retrying source IOExceptions cannot take it for
                // a broken connection and write on.
                writeFailure = e;
                IoErrors.translate(e, "cannot write cache file " + tmp.getFileName());
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot write cache file " + tmp + ": " + e, e);
            }
            position += n;
            onBytes.accept(n);
        }

        private void hash(ByteBuffer data) {
            if (hashing == null || data.remaining() < HASH_INLINE_BELOW) {
                awaitHashed();
                digest.update(data);
                return;
            }
            while (data.hasRemaining()) {
                ByteBuffer slice = spareSlice();
                int len = Math.min(slice.capacity(), data.remaining());
                ByteBuffer part = data.duplicate();
                part.limit(part.position() + len);
                slice.clear();
                slice.put(part).flip();
                data.position(data.position() + len);
                hashed = hashed.thenRunAsync(() -> {
                    digest.update(slice);
                    spareSlices.add(slice);
                }, hashing);
            }
        }

        /** A free slice: a new one while fewer than {@link #HASH_SLICES} exist, else the next one hashed. */
        private ByteBuffer spareSlice() {
            ByteBuffer b = spareSlices.poll();
            if (b != null) {
                return b;
            }
            if (slicesMade < HASH_SLICES) {
                slicesMade++;
                return ByteBuffer.allocateDirect(HASH_SLICE);
            }
            while (true) {
                try {
                    b = spareSlices.poll(100, TimeUnit.MILLISECONDS);
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while hashing " + tmp, e);
                }
                if (b != null) {
                    return b;
                }
                if (hashed.isCompletedExceptionally()) {
                    awaitHashed(); // throws the failure
                }
            }
        }

        /** Waits for every queued hash task; afterwards the digest holds all bytes written. */
        private void awaitHashed() {
            try {
                hashed.join();
            } catch (CompletionException | CancellationException e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "hashing " + tmp + " failed: "
                        + e.getCause(), e.getCause() == null ? e : e.getCause());
            }
        }

        /**
         * Finishes the fill: checks the size, fsyncs the file and compares its digest with
         * {@code expected} when there is one. On any failure the temp file is deleted.
         *
         * @return the digest, lower-case hex
         * @throws ProvisioningException {@code CHECKSUM_MISMATCH}, {@code SOURCE_UNAVAILABLE} when
         *     fewer than {@link #size()} bytes were written, or {@code INSUFFICIENT_SPACE}
         */
        public String finish(Optional<String> expected) {
            if (writeFailure != null) {
                throw new IllegalStateException("a write of this fill failed", writeFailure);
            }
            try {
                if (position != size) {
                    throw new ProvisioningException(ErrorCode.SOURCE_UNAVAILABLE, "the download ended after "
                            + position + " of " + size + " bytes");
                }
                try {
                    channel.force(true);
                    channel.close();
                } catch (IOException e) {
                    IoErrors.translate(e, "cannot flush cache file");
                    throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot flush cache file: " + e, e);
                }
                awaitHashed();
                String actual = HEX.formatHex(digest.digest());
                if (expected.isPresent() && !expected.get().equals(actual)) {
                    throw new ProvisioningException(ErrorCode.CHECKSUM_MISMATCH, "the downloaded bytes hash to "
                            + actual + ", the published SHA-256 is " + expected.get());
                }
                verified = actual;
                return actual;
            } catch (RuntimeException e) {
                close();
                throw e;
            }
        }

        /** Whether {@link CacheFiles#install} moved this fill into place (rather than keeping an existing file). */
        boolean installed() {
            return installed;
        }

        String verifiedDigest() {
            if (verified == null) {
                throw new IllegalStateException("finish() the fill before installing it");
            }
            return verified;
        }

        /** Deletes the temp file unless it was installed; idempotent. */
        @Override
        public void close() {
            if (closed) {
                return;
            }
            closed = true;
            try {
                channel.close();
            } catch (IOException e) {
                LOG.debug("closing {}", tmp, e);
            }
            if (!installed) {
                deleteQuietly(tmp);
            }
        }
    }
}
