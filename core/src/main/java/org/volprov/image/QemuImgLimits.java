package org.volprov.image;

import java.time.Duration;
import java.util.List;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The {@code prlimit} prefixes that bound every qemu-img a {@link QemuImgConverter} runs, and what
 * an exit status says about them. Empty prefixes where {@code prlimit} is missing or limits are off.
 *
 * @param inspect the prefix of {@code info} and {@code check}
 * @param convert the prefix of {@code convert}
 * @param text the limits, for messages and {@code toString()}
 */
record QemuImgLimits(List<String> inspect, List<String> convert, String text) {
    private static final Logger LOG = LoggerFactory.getLogger(QemuImgLimits.class);

    /**
     * The limits of the converter; {@code prlimit} is looked up now, and its absence warned of once.
     *
     * @param prlimit the {@code prlimit} to run, or null for no limits
     */
    static QemuImgLimits of(String prlimit, long inspectAddressSpace, Duration inspectCpuTime,
            long convertAddressSpace) {
        String found = prlimit == null ? null : QemuImgProcess.executable(prlimit);
        if (found == null) {
            if (prlimit != null) {
                LOG.warn("{} not found: qemu-img runs without address-space and CPU time limits (install util-linux)",
                        prlimit);
            }
            return new QemuImgLimits(List.of(), List.of(), "no limits");
        }
        return new QemuImgLimits(
                List.of(found, "--core=0", "--as=" + inspectAddressSpace, "--cpu=" + inspectCpuTime.toSeconds(), "--"),
                List.of(found, "--core=0", "--as=" + convertAddressSpace, "--"),
                "info and check: " + mib(inspectAddressSpace) + " address space, " + inspectCpuTime.toSeconds()
                        + " s CPU; convert: " + mib(convertAddressSpace) + " address space");
    }

    /** Whether qemu-img runs under {@code prlimit}. */
    boolean active() {
        return !inspect.isEmpty();
    }

    /** What an exit status above 128 means: the signal that ended qemu-img, and which limit sends it. */
    String exitNote(int exit) {
        return switch (exit) {
            case 128 + 9 -> " (killed)";
            case 128 + 6 -> " (aborted: out of memory within its limits, " + text + ")";
            case 128 + 24 -> " (past its CPU time limit, " + text + ")";
            default -> exit > 128 ? " (signal " + (exit - 128) + ")" : "";
        };
    }

    private static String mib(long bytes) {
        return (bytes >> 20) + " MiB";
    }
}
