package org.volprov.internal.qcow2;

import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/** The two kinds of refusal, both {@code UNSUPPORTED_IMAGE}, each with a message that says what to do. */
final class Refusal {
    private Refusal() {
    }

    /** A field or table that breaks the format: the image cannot be read as it is. */
    static ProvisioningException corrupt(String detail) {
        return new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the qcow2 image is corrupt: " + detail
                + "; check it with qemu-img check, or make the image again");
    }

    /** A valid image that uses something this decoder does not provision. */
    static ProvisioningException unsupported(String what, String todo) {
        return new ProvisioningException(ErrorCode.UNSUPPORTED_IMAGE, "the qcow2 image " + what + "; " + todo);
    }

    static String hex(long v) {
        return "0x" + Long.toHexString(v);
    }
}
