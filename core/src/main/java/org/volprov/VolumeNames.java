package org.volprov;

import java.util.regex.Pattern;

/**
 * The one rule for volume names, shared by the request validation and every backend: letters,
 * digits, {@code . _ + -}, not starting with {@code -} or {@code .}, 1 to 127 characters. Such a
 * name is safe in libvirt XML, as an LVM logical volume name, as a file name and on a command line.
 */
public final class VolumeNames {
    public static final int MAX_LENGTH = 127;
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_+][A-Za-z0-9._+-]{0,126}");

    private VolumeNames() {
    }

    /**
     * Returns {@code name} when it is valid.
     *
     * @throws ProvisioningException {@code INVALID_REQUEST} naming {@code volumeName} and the rule broken
     */
    public static String validate(String name) {
        if (name == null || name.isBlank()) {
            throw ProvisioningException.invalid("volumeName", "must not be blank");
        }
        if (name.length() > MAX_LENGTH) {
            throw ProvisioningException.invalid("volumeName", "must be at most " + MAX_LENGTH + " characters");
        }
        if (!NAME.matcher(name).matches()) {
            throw ProvisioningException.invalid("volumeName",
                    "must use only letters, digits, '.', '_', '+', '-' and not start with '-' or '.'");
        }
        // LVM reserves these names and prefixes for its own volumes.
        if (name.equals("snapshot") || name.equals("pvmove") || name.contains("_mlog") || name.contains("_mimage") || name.contains("_rimage")
                || name.contains("_rmeta") || name.contains("_tdata") || name.contains("_tmeta")
                || name.contains("_vorigin") || name.contains("_cdata") || name.contains("_cmeta")
                || name.contains("_corig") || name.contains("_pmspare")) {
            throw ProvisioningException.invalid("volumeName", "is reserved by LVM");
        }
        return name;
    }
}
