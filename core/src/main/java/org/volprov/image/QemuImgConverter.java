package org.volprov.image;

import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Objects;
import java.util.function.LongConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.internal.qcow2.FormatProbe;
import org.volprov.support.IoErrors;
import org.volprov.support.Json;

/**
 * An {@link ImageConverter} on {@code qemu-img}: {@code info} and {@code check} to inspect,
 * {@code convert -n -O raw} to write in place. The format is always passed explicitly, never probed
 * by qemu-img, so a raw image can never be mistaken for another format. Raw images are inspected
 * without qemu-img.
 *
 * <p>An image is hostile until checked, and qemu-img reads it: so every qemu-img runs bounded.
 * <ul>
 * <li>Under {@code prlimit} (util-linux), as OpenStack and KubeVirt CDI run it: {@code info} and
 *     {@code check} with at most 1 GiB of address space and 30 s of CPU time, {@code convert} with
 *     at most 4 GiB of address space (its CPU time grows with the image; the job's timeout bounds
 *     it); no core dumps. Where {@code prlimit} is missing, one warning says so and qemu-img runs
 *     without these limits.
 * <li>Its output is read up to 1 MiB per stream; an image that makes qemu-img print more is
 *     refused ({@code UNSUPPORTED_IMAGE}).
 * <li>The size is compared with the volume before {@code check} runs, so an image too large for
 *     its volume is refused before its metadata is walked.
 * <li>A cancelled job kills its qemu-img, whether it inspects or converts.
 * <li>Each qemu-img carries the identity of this JVM in its environment, and {@link #endOrphans()}
 *     (which the engine calls at start and before it recovers
 *     another engine's jobs) kills the qemu-img processes that a JVM which is gone (killed
 *     with SIGKILL, say) left running; those of live JVMs (other engines of the host) are left alone.
 * </ul>
 *
 * <p>Thread-safe.
 */
public final class QemuImgConverter implements ImageConverter {
    private static final Pattern PROGRESS = Pattern.compile("\\((\\d+(?:\\.\\d+)?)/100%\\)");
    private static final Duration INSPECT_TIMEOUT = Duration.ofSeconds(120);

    private final String qemuImg;
    private final QemuImgLimits limits;
    private final int maxOutputBytes;

    /** Uses {@code qemu-img} from the {@code PATH}, with the default limits. */
    public QemuImgConverter() {
        this(new Builder());
    }

    private QemuImgConverter(Builder b) {
        this.qemuImg = b.executable;
        this.maxOutputBytes = b.maxOutputBytes;
        this.limits = QemuImgLimits.of(b.limited ? b.prlimit : null, b.inspectAddressSpace, b.inspectCpuTime,
                b.convertAddressSpace);
    }

    public static Builder builder() {
        return new Builder();
    }

    /**
     * Ends the {@code qemu-img} processes that an engine on this host started and left running when
     * its JVM died (SIGKILL, OOM): they would go on writing into a volume that recovery is about to
     * delete or rewrite. Those of live JVMs are left alone. Linux only (found through {@code /proc});
     * elsewhere nothing is done. The engine calls it at start and before it takes over another
     * engine's jobs, whatever its converter.
     *
     * @return how many it ended
     */
    public static int endOrphans() {
        return QemuImgChildren.endOrphans();
    }

    /** Whether qemu-img runs under {@code prlimit}'s limits (false where {@code prlimit} is missing). */
    public boolean limited() {
        return limits.active();
    }

    @Override
    public ImageInfo inspect(Path image, ImageFormat requested) {
        return inspect(image, requested, Long.MAX_VALUE, Cancellation.none());
    }

    @Override
    public ImageInfo inspect(Path image, ImageFormat requested, long volumeSizeBytes, Cancellation cancellation) {
        ImageFormat detected = FormatProbe.check(requested, FormatProbe.detect(image));
        long fileSize;
        try {
            fileSize = Files.size(image);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read image " + image, e);
        }
        if (detected == ImageFormat.RAW) {
            return new ImageInfo(ImageFormat.RAW, fileSize, fileSize).requireFits(volumeSizeBytes);
        }
        cancellation.checkpoint();
        Result info = inspectWith("info", image, cancellation);
        if (info.exit != 0) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "qemu-img cannot read the image: "
                    + firstLines(info.err) + limits.exitNote(info.exit));
        }
        Map<?, ?> json = parse(info.out, "info");
        if (json.get("backing-filename") != null || json.get("full-backing-filename") != null) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE,
                    "the image has a backing file (" + json.get("backing-filename") + "); flatten it with qemu-img convert");
        }
        if (Boolean.TRUE.equals(json.get("encrypted"))) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the image is encrypted");
        }
        if (json.get("format-specific") instanceof Map<?, ?> fs && fs.get("data") instanceof Map<?, ?> data
                && data.get("data-file") != null) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the image has an external data file");
        }
        if (!(json.get("virtual-size") instanceof Long virtualSize) || virtualSize < 0) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "qemu-img reports no virtual size");
        }
        // Before check: an image too large for its volume is refused without walking its metadata.
        ImageInfo result = new ImageInfo(ImageFormat.QCOW2, virtualSize, fileSize).requireFits(volumeSizeBytes);
        cancellation.checkpoint();
        Result check = inspectWith("check", image, cancellation);
        // 0: clean, 3: leaked clusters only (harmless for reading); 1: check failed, 2: corrupt.
        if (check.exit != 0 && check.exit != 3) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the qcow2 image is corrupt: "
                    + checkFindings(check) + limits.exitNote(check.exit));
        }
        return result;
    }

    /** What {@code check --output=json} found, or its first error lines. */
    private static String checkFindings(Result check) {
        try {
            if (Json.parse(check.out) instanceof Map<?, ?> json && json.get("corruptions") instanceof Long n) {
                return n + " corruptions and " + (json.get("check-errors") instanceof Long e ? e : 0) + " check errors found by"
                        + " qemu-img check; the first: " + firstLines(check.err);
            }
        } catch (IllegalArgumentException e) {
            // Not the JSON summary: the error lines say what went wrong.
        }
        return firstLines(check.out + check.err);
    }

    private Result inspectWith(String command, Path image, Cancellation cancellation) {
        String what = "qemu-img " + command;
        try (QemuImgProcess child = new QemuImgProcess(qemuImg, what, limits.inspect(), limited(),
                List.of(command, "--output=json", "-f", "qcow2", image.toString()), maxOutputBytes, cancellation)) {
            QemuImgProcess.Drain out = child.drainStdout();
            if (!child.waitFor(INSPECT_TIMEOUT)) {
                cancellation.checkpoint();
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, what + " did not finish in "
                        + INSPECT_TIMEOUT.toSeconds() + " s");
            }
            cancellation.checkpoint();
            String stdout = out.text();
            String stderr = child.stderr();
            child.refuseOverflow(out);
            return new Result(child.exitValue(), stdout, stderr);
        }
    }

    private static Map<?, ?> parse(String out, String command) {
        try {
            return (Map<?, ?>) Json.parse(out);
        } catch (IllegalArgumentException | ClassCastException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "unexpected qemu-img " + command + " output", e);
        }
    }

    @Override
    public void convertToRaw(Path image, ImageInfo info, Path target, boolean targetIsZero, LongConsumer progress,
            Cancellation cancellation) {
        if (!Files.exists(target)) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "conversion target " + target + " does not exist");
        }
        List<String> args = new ArrayList<>(List.of("convert", "-p", "-n", "-W", "-f",
                info.format().name().toLowerCase(Locale.ROOT), "-O", "raw"));
        if (targetIsZero) {
            args.add("--target-is-zero");
        }
        args.add(image.toString());
        args.add(target.toString());
        cancellation.checkpoint();
        try (QemuImgProcess child = new QemuImgProcess(qemuImg, "qemu-img convert", limits.convert(), limited(), args,
                maxOutputBytes, cancellation)) {
            readProgress(child.stdout(), info.virtualSize(), progress);
            child.waitFor(null);
            cancellation.checkpoint();
            String msg = child.stderr().strip();
            child.refuseOverflow(null);
            int exit = child.exitValue();
            if (exit != 0) {
                throw new ProvisioningException(IoErrors.isNoSpaceText(msg) ? ErrorCode.INSUFFICIENT_SPACE
                        : ErrorCode.BACKEND_FAILURE, "qemu-img convert failed (exit " + exit + limits.exitNote(exit)
                        + "): " + firstLines(msg));
            }
            progress.accept(info.virtualSize());
        }
    }

    private static void readProgress(InputStream out, long total, LongConsumer progress) {
        // qemu-img -p writes "    (12.34/100%)\r" to stdout.
        StringBuilder token = new StringBuilder();
        try (InputStreamReader r = new InputStreamReader(out, StandardCharsets.US_ASCII)) {
            int c;
            while ((c = r.read()) >= 0) {
                if (c == '\r' || c == '\n') {
                    Matcher m = PROGRESS.matcher(token);
                    if (m.find()) {
                        progress.accept((long) (total * Double.parseDouble(m.group(1)) / 100.0));
                    }
                    token.setLength(0);
                } else if (token.length() < 256) {
                    token.append((char) c);
                }
            }
        } catch (IOException e) {
            // The process was killed; its exit status tells what happened.
        }
    }

    private static String firstLines(String text) {
        String[] lines = text.strip().split("\n");
        return String.join("; ", java.util.Arrays.copyOf(lines, Math.min(3, lines.length)));
    }

    private record Result(int exit, String out, String err) {
    }

    @Override
    public String toString() {
        return "QemuImgConverter[" + qemuImg + ", " + limits.text() + "]";
    }

    /**
     * Builds a {@link QemuImgConverter}; each option is checked when set, and its message names it.
     * Building ends the qemu-img processes that JVMs which are gone left running.
     */
    public static final class Builder {
        private String executable = "qemu-img";
        private String prlimit = "prlimit";
        private boolean limited = true;
        private long inspectAddressSpace = 1L << 30;
        private Duration inspectCpuTime = Duration.ofSeconds(30);
        private long convertAddressSpace = 4L << 30;
        private int maxOutputBytes = 1 << 20;

        private Builder() {
        }

        /** The qemu-img to run: a path, or a name looked up on the {@code PATH}; default {@code qemu-img}. */
        public Builder executable(String executable) {
            this.executable = requireText("executable", executable);
            return this;
        }

        /**
         * The {@code prlimit} to run qemu-img under: a path, or a name looked up on the {@code PATH};
         * default {@code prlimit}. When it is not there, qemu-img runs without limits, and building
         * warns once.
         */
        public Builder prlimit(String prlimit) {
            this.prlimit = requireText("prlimit", prlimit);
            return this;
        }

        /** Runs qemu-img without {@code prlimit}'s limits; for hosts that bound it otherwise (a cgroup). */
        public Builder withoutLimits() {
            this.limited = false;
            return this;
        }

        /**
         * The address space (at least 64 MiB) and CPU time (at least 1 s) of {@code qemu-img info}
         * and {@code check}; default 1 GiB and 30 s, as OpenStack and KubeVirt CDI give {@code info}.
         * An image that needs more is refused as {@code UNSUPPORTED_IMAGE}.
         */
        public Builder inspectLimits(long addressSpaceBytes, Duration cpuTime) {
            if (addressSpaceBytes < (64L << 20)) {
                throw new IllegalArgumentException("inspect addressSpaceBytes must be at least 64 MiB, was "
                        + addressSpaceBytes);
            }
            Objects.requireNonNull(cpuTime, "cpuTime");
            if (cpuTime.toSeconds() < 1) {
                throw new IllegalArgumentException("inspect cpuTime must be at least 1 s, was " + cpuTime);
            }
            this.inspectAddressSpace = addressSpaceBytes;
            this.inspectCpuTime = cpuTime;
            return this;
        }

        /** The address space of {@code qemu-img convert}; at least 256 MiB; default 4 GiB. */
        public Builder convertAddressSpace(long bytes) {
            if (bytes < (256L << 20)) {
                throw new IllegalArgumentException("convertAddressSpace must be at least 256 MiB, was " + bytes);
            }
            this.convertAddressSpace = bytes;
            return this;
        }

        /**
         * The most qemu-img may print on each of its streams; at least 4 KiB; default 1 MiB. An image
         * that makes it print more is refused as {@code UNSUPPORTED_IMAGE}.
         */
        public Builder maxOutputBytes(int bytes) {
            if (bytes < 4096) {
                throw new IllegalArgumentException("maxOutputBytes must be at least 4096, was " + bytes);
            }
            this.maxOutputBytes = bytes;
            return this;
        }

        /** Builds the converter, after ending the qemu-img processes that JVMs which are gone left running. */
        public QemuImgConverter build() {
            return new QemuImgConverter(this);
        }

        private static String requireText(String option, String value) {
            Objects.requireNonNull(value, option);
            if (value.isBlank()) {
                throw new IllegalArgumentException(option + " must not be blank");
            }
            return value;
        }
    }
}
