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
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Instant;
import java.util.HexFormat;
import java.util.List;
import java.util.Objects;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.Executor;
import java.util.function.LongConsumer;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.source.PublishedChecksum;
import org.volprov.support.IoErrors;

/**
 * The file half of a disk image cache: temp files, fsync, rename into place, metadata and
 * identity-alias files. The hashing sink is a {@link Fill}, the sweep at open a {@link CacheSweep}.
 * It knows nothing about budgets, LRU order or leases; those belong to a {@link CacheIndex}, which
 * sees the directory only through the values and the {@link CacheIndex.Directory} it is given.
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
final class CacheFiles {
    private static final Logger LOG = LoggerFactory.getLogger(CacheFiles.class);
    static final String META = ".meta";
    static final String ALIAS = ".alias";
    private static final String TMP = ".tmp";
    private static final int READ_BUFFER = 1 << 20;
    private static final SecureRandom RANDOM = new SecureRandom();
    static final HexFormat HEX = HexFormat.of();

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
    static CacheFiles open(Path dir) {
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
    Path directory() {
        return dir;
    }

    /** Where the entry with digest {@code sha256} lives (whether or not it exists). */
    Path entryPath(String sha256) {
        requireDigest(sha256);
        return dir.resolve(sha256);
    }

    /** Bytes the file system under the directory can still give this process. */
    long usableSpace() {
        try {
            return Files.getFileStore(dir).getUsableSpace();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read free space of " + dir + ": " + e, e);
        }
    }

    /**
     * Sweeps the directory and returns what is valid; see {@link CacheSweep#scan}. Call only while
     * no other process uses the directory; {@link #scan(boolean, Instant)} is for a directory that
     * others write to at the same time.
     */
    Scan scan(boolean verify) {
        return scan(verify, Instant.MAX);
    }

    /** Like {@link #scan(boolean)}, sparing young files; see {@link CacheSweep#scan}. */
    Scan scan(boolean verify, Instant sweepBefore) {
        return new CacheSweep(this).scan(verify, sweepBefore);
    }

    /** What a scan found and kept (entries oldest first, aliases whose entry exists), and how many files it removed. */
    record Scan(List<CacheIndex.Entry> entries, List<CacheIndex.Alias> aliases, int removed) {
        CacheIndex.Contents contents() {
            return new CacheIndex.Contents(entries, aliases);
        }
    }

    /**
     * A new temp file of {@code size} bytes to fill. The caller {@link Fill#close() closes} it in a
     * finally block; a fill that was not {@link #install installed} is deleted then.
     *
     * @param cancellation checked before every write, so a cancelled download stops at the next chunk
     * @param onBytes told how many bytes each write added (for statistics); may be a no-op
     */
    Fill newFill(long size, Cancellation cancellation, LongConsumer onBytes) {
        return newFill(size, cancellation, onBytes, null);
    }

    /**
     * Like {@link #newFill(long, Cancellation, LongConsumer)}, hashing and writing on
     * {@code hashing} while the caller goes on, so that the download, the hash and the write
     * overlap instead of adding up; the bytes are hashed and written in the order they came, from
     * copies (at most {@value Fill#HASH_SLICES} slices of {@value Fill#HASH_SLICE} bytes per
     * fill), and the file is flushed in the background as it grows. Null does it all on the
     * writing thread.
     */
    Fill newFill(long size, Cancellation cancellation, LongConsumer onBytes, Executor hashing) {
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
    Path install(Fill fill) {
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
            fill.markInstalled();
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
    Optional<FileChannel> openEntry(String sha256) {
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
    void writeAlias(String identity, String sha256) {
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
    void deleteAlias(String identity) {
        deleteQuietly(dir.resolve(aliasName(identity)));
    }

    /**
     * Removes the entry with digest {@code sha256}: data first, so that a crash between the two
     * deletes leaves metadata without data, which the next scan sweeps. The caller makes sure no
     * one holds it.
     */
    void delete(String sha256) {
        requireDigest(sha256);
        deleteQuietly(entryPath(sha256));
        deleteQuietly(metaPath(sha256));
    }

    /** Marks the entry as used now, so that the LRU order survives a restart. Best effort. */
    void touch(String sha256) {
        try {
            Files.setLastModifiedTime(entryPath(sha256), java.nio.file.attribute.FileTime.from(Instant.now()));
        } catch (IOException e) {
            LOG.debug("cannot touch cache entry {}", sha256, e);
        }
    }

    /** The SHA-256 of a file, lower-case hex. */
    static String hash(Path file) throws IOException {
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

    Path metaPath(String sha256) {
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

    static Properties readProperties(Path p) throws IOException {
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

    static boolean deleteQuietly(Path p) {
        try {
            return Files.deleteIfExists(p);
        } catch (IOException e) {
            LOG.warn("cannot delete {}: {}", p, e.toString());
            return false;
        }
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
}
