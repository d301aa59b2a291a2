package org.volprov.internal.engine;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Optional;
import org.volprov.ProvisionRequest;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheSink;
import org.volprov.image.ImageFormat;
import org.volprov.image.ImageInfo;
import org.volprov.image.Qcow2Converter;
import org.volprov.volume.VolumeWriter;

/**
 * One way of filling a job's volume from its image: the write path. Each strategy is one
 * implementation, and this interface is the one place that picks one for a job ({@link #beforeFetch},
 * else {@link #choose}). The engine ({@link JobVolume}) does what every strategy shares around it:
 * the WRITING stage, the volume's tail past the image, FINALIZING and the flush (unless the
 * strategy {@link #completesVolume completes the volume} itself), and the one rollback of every failure path
 * ({@link JobVolume#rollback}), which tells the strategy first ({@link #abort}).
 *
 * <p>A fill's life, on the job's thread unless said otherwise:
 * <ol>
 *   <li>{@link #tee}: while the image downloads, the bytes pass through the sink it returns, in
 *       file order, on their way into the cache ({@link ImageFetch#fetch} wraps the cache's sink
 *       with it). From there it may call {@link JobVolume#open()} once it has parsed the image's
 *       header, to have the volume made and opened during the download. It may see no bytes at all:
 *       on a cache hit, or when another job's download fills the entry.
 *   <li>{@link #fill}: once the image is in the cache, complete and verified, and inspected: writes
 *       the image's virtual size onto the volume, from the cache file (a second pass for a strategy
 *       that wrote some of it during the download).
 *   <li>{@link #abort}: the job failed or was cancelled, at any point after the fill was chosen;
 *       before the rollback touches the volume.
 * </ol>
 *
 * <p>Two places choose, one for each kind of strategy. {@link #beforeFetch} picks, from the
 * request and the settings alone, a strategy that consumes the image as a stream while it
 * downloads ({@link DecodingFill}, with the default converter): {@link JobRun} hands its
 * {@link #tee} to {@link ImageFetch#fetch}, the tee decodes what arrives and writes it through the
 * volume's writer ({@link JobVolume#open()}), and {@link #fill} completes from the verified file
 * whatever the stream could not; a failed checksum reaches {@link #abort} and then the rollback,
 * like any failure. When it picks none, {@link #choose} picks a strategy that reads the finished
 * file only, once the image has been inspected and the volume opened, and the download passes
 * through untouched.
 *
 * <p>Implementations are used by one job at a time; errors are {@link ProvisioningException}s
 * (their code reaches the job) or {@link IOException}s (a {@code BACKEND_FAILURE} writing the volume).
 */
interface VolumeFill {

    /**
     * The sink the download writes into instead of {@code cache}: {@code cache} itself, or one that
     * passes every byte on to it unchanged after looking at it. Default: {@code cache}.
     */
    default CacheSink tee(CacheSink cache, JobVolume volume) {
        return cache;
    }

    /**
     * Writes the image's {@code info.virtualSize()} bytes onto the open volume from offset 0,
     * reporting progress through {@link JobVolume#written}.
     *
     * @param image the verified cache file
     */
    void fill(Path image, ImageInfo info, JobVolume volume) throws IOException;

    /** The job stopped; whatever the fill runs on its own (a thread, a process) stops too. Default: nothing runs. */
    default void abort() {
    }

    /**
     * Whether {@link #fill} also writes the volume past the image and flushes it ({@link VolumeWriter#finish()}),
     * which the engine does otherwise. Default: false.
     */
    default boolean completesVolume() {
        return false;
    }

    /**
     * The strategy chosen before the download: with the default converter ({@link Qcow2Converter}),
     * core's decoder fills the volume while the image downloads, for qcow2 and raw images and for
     * every backend (a local path is written in place, an upload stream in guest order, neither
     * through a scratch file). Empty with any other converter (qemu-img, configured explicitly):
     * {@link #choose} picks once the image is in the cache.
     */
    static Optional<VolumeFill> beforeFetch(ProvisionRequest request, JobParts parts) {
        EngineSettings settings = parts.settings();
        if (!(settings.converter() instanceof Qcow2Converter)) {
            return Optional.empty();
        }
        return Optional.of(new DecodingFill(request.format(), request.volumeSizeBytes(), parts.decoding(),
                parts.flushing(), settings.bufferSize()));
    }

    /**
     * The strategy for an inspected image and an opened volume, when {@link #beforeFetch} chose none
     * (a converter other than the default): a qcow2 image is converted onto the volume's local path,
     * or, for backends that only take a stream, to a temporary raw file that is then copied (the
     * converter writes a path); a raw image is copied.
     */
    static VolumeFill choose(ImageInfo info, JobVolume volume, EngineSettings settings) {
        if (info.format() != ImageFormat.QCOW2) {
            return new RawCopyFill(settings.bufferSize());
        }
        if (volume.writer().localPath().isPresent()) {
            return new ConvertInPlaceFill(settings.converter());
        }
        return new ConvertThenCopyFill(settings.converter(), settings.workDirectory(), new RawCopyFill(settings.bufferSize()));
    }
}
