package org.volprov.volume;

import java.util.List;
import java.util.regex.Pattern;
import org.volprov.ProvisioningException;

/**
 * The one rule for volume names, shared by the request validation and every backend: letters,
 * digits, {@code . _ + -}, not starting with {@code -} or {@code .}, 1 to 127 characters. Such a
 * name is safe in libvirt XML, as an LVM logical volume name, as a file name and on a command line;
 * the names LVM reserves for itself are refused too.
 */
public final class VolumeNames {
    public static final int MAX_LENGTH = 127;
    private static final Pattern NAME = Pattern.compile("[A-Za-z0-9_+][A-Za-z0-9._+-]{0,126}");
    private static final List<String> LVM_RESERVED_PREFIXES = List.of("snapshot", "pvmove");
    private static final List<String> LVM_RESERVED_PARTS = List.of("_cdata", "_cmeta", "_corig", "_cpool", "_cvol",
            "_iorig", "_imeta", "_mimage", "_mlog", "_pmspare", "_rimage", "_rmeta", "_tdata", "_tmeta", "_vdata",
            "_vorigin", "_wcorig");

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
        // LVM refuses LV names starting with these (lvm2 apply_lvname_restrictions) ...
        for (String prefix : LVM_RESERVED_PREFIXES) {
            if (name.startsWith(prefix)) {
                throw ProvisioningException.invalid("volumeName", "must not start with '" + prefix + "' (reserved by LVM)");
            }
        }
        // ... and containing these, the suffixes of its internal sub-volumes.
        for (String part : LVM_RESERVED_PARTS) {
            if (name.contains(part)) {
                throw ProvisioningException.invalid("volumeName", "must not contain '" + part + "' (reserved by LVM)");
            }
        }
        return name;
    }
}
