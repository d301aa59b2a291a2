package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.security.SecureRandom;
import java.time.Duration;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.ProvisioningException;
import org.volprov.job.JobJson;
import org.volprov.support.Json;

/**
 * Job ends the job store did not take, kept on local disk until it does, so that a process that
 * exits meanwhile does not leave its finished jobs looking unfinished. One file per job,
 * {@code <sha256 of the job id>.end}, holding the terminal snapshot and the engine that held the
 * job; written to a temp file, fsynced, renamed into place and the directory fsynced. Several
 * engines of one host may share the directory: each writes only its own jobs' files, and any of
 * them may write any file's end to the store (fenced by the holder it names) and then delete it.
 * Thread-safe.
 */
final class EndJournal {
    private static final Logger LOG = LoggerFactory.getLogger(EndJournal.class);
    private static final String END = ".end";
    private static final String TMP = ".tmp";
    /** A temp file older than this was left by a process that died while writing it. */
    private static final Duration STALE_TEMP = Duration.ofMinutes(10);
    private static final SecureRandom RANDOM = new SecureRandom();
    private static final HexFormat HEX = HexFormat.of();

    private final Path dir;

    /** A kept end: the job's terminal snapshot, and the engine that held the job when it ended. */
    record Entry(String engine, Job end) {
    }

    /**
     * The journal in {@code dir}, created when missing; temp files that a dead process left are swept.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the directory cannot be created
     */
    EndJournal(Path dir) {
        this.dir = dir.toAbsolutePath().normalize();
        try {
            Files.createDirectories(this.dir);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot create the engine's state directory "
                    + this.dir + ": " + e, e);
        }
        sweepTemps(Instant.now().minus(STALE_TEMP));
    }

    Path directory() {
        return dir;
    }

    /**
     * Writes {@code end} durably. Throws when it cannot: the caller then has the end in memory only.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when the file cannot be written
     */
    void keep(String engine, Job end) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("engine", engine);
        m.put("job", JobJson.jobObject(end));
        byte[] bytes = Json.write(m).getBytes(StandardCharsets.UTF_8);
        byte[] name = new byte[16];
        RANDOM.nextBytes(name);
        Path tmp = dir.resolve(HEX.formatHex(name) + TMP);
        try {
            try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE, StandardOpenOption.CREATE_NEW)) {
                ByteBuffer buf = ByteBuffer.wrap(bytes);
                while (buf.hasRemaining()) {
                    ch.write(buf);
                }
                ch.force(true);
            }
            Files.move(tmp, file(end.id()), StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            fsyncDirectory();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot keep the end of job " + end.id()
                    + " in " + dir + ": " + e, e);
        } finally {
            deleteQuietly(tmp);
        }
    }

    /** Deletes the kept end of job {@code jobId}, when there is one. */
    void forget(String jobId) {
        if (deleteQuietly(file(jobId))) {
            try {
                fsyncDirectory();
            } catch (IOException e) {
                // At worst the end is written again later, which the store takes as the same end.
                LOG.debug("cannot fsync {} after forgetting the end of job {}", dir, jobId, e);
            }
        }
    }

    /** Every kept end, of this engine and of others that share the directory. Unreadable files are skipped. */
    List<Entry> entries() {
        List<Entry> found = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*" + END)) {
            for (Path p : ds) {
                try {
                    found.add(read(p));
                } catch (IOException | RuntimeException e) {
                    LOG.warn("cannot read the kept job end {}; it is left in place: {}", p, e.toString());
                }
            }
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot list the engine's state directory "
                    + dir + ": " + e, e);
        }
        return found;
    }

    private static Entry read(Path p) throws IOException {
        if (Files.size(p) > (1 << 20)) {
            throw new IOException("larger than 1 MiB");
        }
        Object parsed = Json.parse(Files.readString(p, StandardCharsets.UTF_8));
        if (!(parsed instanceof Map<?, ?> m) || !(m.get("engine") instanceof String engine)
                || !(m.get("job") instanceof Map<?, ?> job)) {
            throw new IllegalArgumentException("not a kept job end");
        }
        Job end = JobJson.job(job);
        if (!end.state().terminal()) {
            throw new IllegalArgumentException("job " + end.id() + " is " + end.state() + ", not ended");
        }
        return new Entry(engine, end);
    }

    // Named by a digest of the id: a job id comes from whoever queued the job, and never reaches a path.
    private Path file(String jobId) {
        try {
            byte[] d = MessageDigest.getInstance("SHA-256").digest(jobId.getBytes(StandardCharsets.UTF_8));
            return dir.resolve(HEX.formatHex(d) + END);
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JVM", e);
        }
    }

    private void sweepTemps(Instant before) {
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, "*" + TMP)) {
            for (Path p : ds) {
                try {
                    if (Files.getLastModifiedTime(p, LinkOption.NOFOLLOW_LINKS).toInstant().isBefore(before)) {
                        Files.deleteIfExists(p);
                    }
                } catch (IOException e) {
                    LOG.debug("cannot sweep {}", p, e);
                }
            }
        } catch (IOException e) {
            LOG.warn("cannot list the engine's state directory {}: {}", dir, e.toString());
        }
    }

    private void fsyncDirectory() throws IOException {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        }
    }

    private static boolean deleteQuietly(Path p) {
        try {
            return Files.deleteIfExists(p);
        } catch (IOException e) {
            LOG.debug("cannot delete {}", p, e);
            return false;
        }
    }
}
