package org.volprov.internal.qcow2;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.image.ImageFormat;

/** Tells an image's format from its first bytes: qcow2 by its magic, other known formats refused, else raw. */
public final class FormatProbe {
    /** Bytes {@link #detect} looks at. */
    public static final int HEAD_BYTES = 512;
    private static final String[] OTHERS = {"KDMV", "vhdxfile", "conectix", "<<< Oracle VM VirtualBox Disk Image >>>",
        "QEVM"};

    private FormatProbe() {
    }

    /**
     * The format of an image that starts with {@code head} (up to {@link #HEAD_BYTES} bytes from
     * its position, not consumed); never {@code AUTO}.
     *
     * @throws ProvisioningException {@code UNSUPPORTED_IMAGE} when it starts like another known format
     */
    public static ImageFormat detect(ByteBuffer head) {
        if (Qcow2Header.hasMagic(head)) {
            return ImageFormat.QCOW2;
        }
        for (String magic : OTHERS) {
            byte[] m = magic.getBytes(StandardCharsets.US_ASCII);
            if (head.remaining() >= m.length && head.slice(head.position(), m.length).equals(ByteBuffer.wrap(m))) {
                throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE,
                        "image is neither qcow2 nor raw (it starts like a '" + magic.strip() + "' image)");
            }
        }
        return ImageFormat.RAW;
    }

    /**
     * The format of the image file {@code image}, from its first bytes.
     *
     * @throws ProvisioningException {@code UNSUPPORTED_IMAGE} when it starts like another known
     *     format, {@code BACKEND_FAILURE} when it cannot be read
     */
    public static ImageFormat detect(Path image) {
        try (FileChannel in = FileChannel.open(image, StandardOpenOption.READ)) {
            return detect(head(in));
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read image " + image + ": " + e, e);
        }
    }

    /** The first {@link #HEAD_BYTES} bytes of {@code in} (fewer when it is shorter), read from offset 0. */
    public static ByteBuffer head(FileChannel in) throws IOException {
        ByteBuffer head = ByteBuffer.allocate(HEAD_BYTES);
        while (head.hasRemaining() && in.read(head, head.position()) > 0) {
            // until the buffer is full or the file ends
        }
        return head.flip();
    }

    /**
     * Checks the detected format against the requested one ({@code AUTO} accepts either).
     *
     * @throws ProvisioningException {@code UNSUPPORTED_IMAGE} when they differ
     */
    public static ImageFormat check(ImageFormat requested, ImageFormat detected) {
        if (requested != ImageFormat.AUTO && requested != detected) {
            throw new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the request says " + requested
                    + " but the image is " + detected);
        }
        return detected;
    }
}
