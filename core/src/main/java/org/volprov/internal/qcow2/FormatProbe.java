package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import org.volprov.ErrorCode;
import org.volprov.ImageFormat;
import org.volprov.ProvisioningException;

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
