package org.volprov.embedded;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ImageConverter;
import org.volprov.ImageFormat;
import org.volprov.ImageInfo;
import org.volprov.ProvisioningException;
import org.volprov.internal.IoErrors;
import org.volprov.internal.Json;

/**
 * An {@link ImageConverter} on {@code qemu-img}: {@code info} and {@code check} to inspect,
 * {@code convert -n -O raw} to write in place. The format is always passed explicitly, never probed
 * by qemu-img, so a raw image can never be mistaken for another format. Raw images are inspected
 * without qemu-img. Thread-safe.
 */
public final class QemuImgConverter implements ImageConverter {
    private static final Pattern PROGRESS = Pattern.compile("\\((\\d+(?:\\.\\d+)?)/100%\\)");
    private static final byte[] QCOW_MAGIC = {'Q', 'F', 'I', (byte) 0xfb};
    private static final int INFO_TIMEOUT_SECONDS = 120;

    private final String qemuImg;

    /** Uses {@code qemu-img} from the {@code PATH}. */
    public QemuImgConverter() {
        this("qemu-img");
    }

    /** Uses the given {@code qemu-img} executable. */
    public QemuImgConverter(String qemuImg) {
        this.qemuImg = Objects.requireNonNull(qemuImg, "qemuImg");
    }

    /** Detects an image's format from its first bytes: qcow2 by its magic, known others refused, else raw. */
    public static ImageFormat detect(Path image) {
        byte[] head = new byte[512];
        int n;
        try (FileChannel ch = FileChannel.open(image, StandardOpenOption.READ)) {
            ByteBuffer b = ByteBuffer.wrap(head);
            while (b.hasRemaining() && ch.read(b) > 0) {
                // read the header
            }
            n = b.position();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read image " + image, e);
        }
        if (startsWith(head, n, QCOW_MAGIC)) {
            return ImageFormat.QCOW2;
        }
        for (String magic : new String[] {"KDMV", "vhdxfile", "conectix", "<<< Oracle VM VirtualBox Disk Image >>>", "QEVM"}) {
            if (startsWith(head, n, magic.getBytes(StandardCharsets.US_ASCII))) {
                throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE,
                        "image is neither qcow2 nor raw (it starts like a '" + magic.strip() + "' image)");
            }
        }
        return ImageFormat.RAW;
    }

    @Override
    public ImageInfo inspect(Path image, ImageFormat requested) {
        ImageFormat detected = detect(image);
        if (requested != ImageFormat.AUTO && requested != detected) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the request says " + requested
                    + " but the image is " + detected);
        }
        long fileSize;
        try {
            fileSize = Files.size(image);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read image " + image, e);
        }
        if (detected == ImageFormat.RAW) {
            return new ImageInfo(ImageFormat.RAW, fileSize, fileSize);
        }
        Result info = run(List.of(qemuImg, "info", "--output=json", "-f", "qcow2", image.toString()));
        if (info.exit != 0) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "qemu-img cannot read the image: " + info.err.strip());
        }
        Map<?, ?> json;
        try {
            json = (Map<?, ?>) Json.parse(info.out);
        } catch (IllegalArgumentException | ClassCastException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "unexpected qemu-img info output", e);
        }
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
        Result check = run(List.of(qemuImg, "check", "-f", "qcow2", image.toString()));
        // 0: clean, 3: leaked clusters only (harmless for reading); 1: check failed, 2: corrupt.
        if (check.exit != 0 && check.exit != 3) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE,
                    "the qcow2 image is corrupt: " + firstLines(check.out + check.err));
        }
        return new ImageInfo(ImageFormat.QCOW2, virtualSize, fileSize);
    }

    @Override
    public void convertToRaw(Path image, ImageInfo info, Path target, boolean targetIsZero, LongConsumer progress,
            Cancellation cancellation) {
        if (!Files.exists(target)) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "conversion target " + target + " does not exist");
        }
        List<String> cmd = new ArrayList<>(List.of(qemuImg, "convert", "-p", "-n", "-W", "-f",
                info.format().name().toLowerCase(java.util.Locale.ROOT), "-O", "raw"));
        if (targetIsZero) {
            cmd.add("--target-is-zero");
        }
        cmd.add(image.toString());
        cmd.add(target.toString());
        cancellation.checkpoint();
        Process p;
        try {
            p = new ProcessBuilder(cmd).start();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot run " + qemuImg + ": " + e.getMessage(), e);
        }
        try (Cancellation.AutoCloseableAction kill = cancellation.onCancel(p::destroyForcibly)) {
            CompletableFuture<String> err = drain(p.getErrorStream());
            readProgress(p.getInputStream(), info.virtualSize(), progress);
            int exit = waitFor(p);
            cancellation.checkpoint();
            if (exit != 0) {
                String msg = err.join().strip();
                throw new ProvisioningException(IoErrors.isNoSpaceText(msg) ? ErrorCode.INSUFFICIENT_SPACE
                        : ErrorCode.BACKEND_FAILURE, "qemu-img convert failed (exit " + exit + "): " + firstLines(msg));
            }
            progress.accept(info.virtualSize());
        } finally {
            p.destroyForcibly();
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

    private static CompletableFuture<String> drain(InputStream in) {
        return CompletableFuture.supplyAsync(() -> {
            try (in) {
                return new String(in.readAllBytes(), StandardCharsets.UTF_8);
            } catch (IOException e) {
                return "";
            }
        });
    }

    private static int waitFor(Process p) {
        try {
            return p.waitFor();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            p.destroyForcibly();
            throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while qemu-img ran", e);
        }
    }

    private Result run(List<String> cmd) {
        Process p;
        try {
            p = new ProcessBuilder(cmd).start();
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE,
                    "cannot run " + qemuImg + " (install qemu-utils): " + e.getMessage(), e);
        }
        try {
            CompletableFuture<String> err = drain(p.getErrorStream());
            CompletableFuture<String> out = drain(p.getInputStream());
            if (!p.waitFor(INFO_TIMEOUT_SECONDS, TimeUnit.SECONDS)) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, String.join(" ", cmd.subList(0, 2))
                        + " did not finish in " + INFO_TIMEOUT_SECONDS + " s");
            }
            return new Result(p.exitValue(), out.join(), err.join());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new ProvisioningException(ErrorCode.INTERRUPTED, "interrupted while qemu-img ran", e);
        } finally {
            p.destroyForcibly();
        }
    }

    private static boolean startsWith(byte[] head, int n, byte[] magic) {
        if (n < magic.length) {
            return false;
        }
        for (int k = 0; k < magic.length; k++) {
            if (head[k] != magic[k]) {
                return false;
            }
        }
        return true;
    }

    private static String firstLines(String text) {
        String[] lines = text.strip().split("\n");
        return String.join("; ", java.util.Arrays.copyOf(lines, Math.min(3, lines.length)));
    }

    private record Result(int exit, String out, String err) {
    }

    @Override
    public String toString() {
        return "QemuImgConverter[" + qemuImg + "]";
    }
}
