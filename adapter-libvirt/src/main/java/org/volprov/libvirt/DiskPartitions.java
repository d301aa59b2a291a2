package org.volprov.libvirt;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Collection;
import java.util.HashSet;
import java.util.Optional;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The rules of libvirt's {@code disk} pool type (volumes are partitions of one device), as libvirt
 * 9.0 applies them, so that the backend can keep to them instead of finding out afterwards:
 *
 * <ul>
 *   <li>A new volume is named after the partition {@code parted} makes: the device's kernel name,
 *       {@code p} when that name ends in a digit, and the partition number ({@code sdb1},
 *       {@code loop0p1}, {@code nvme0n1p2}). GPT numbers a new partition with the lowest number
 *       free; a DOS label does so for its four primary partitions. libvirt refuses any other name
 *       only after it made the partition, and then tries to delete it.</li>
 *   <li>Deleting runs {@code parted <source device> rm <what follows the source device's name>};
 *       for a device whose name ends in a digit that is {@code p1}, which parted refuses, so such a
 *       pool can neither delete a volume nor clean up after a refused name. Defining the pool's
 *       source device through a symlink whose name ends in {@code p} (for example
 *       {@code /dev/disk/volprov/loop0p -> /dev/loop0}) gives parted a plain number.</li>
 *   <li>Partitions are made in 512-byte sectors; a free region is used only when it is larger than
 *       the request.</li>
 *   <li>With a target path other than {@code /dev} (a directory of stable links such as
 *       {@code /dev/disk/by-id}), libvirt keys volumes by those links but looks a new partition up
 *       by its node: creating a volume while the pool has one takes the first existing partition
 *       for the new one, refuses the name, and deletes that existing partition. Such a pool is
 *       only safe to create in while it is empty.</li>
 * </ul>
 */
final class DiskPartitions {
    static final long SECTOR = 512;
    private static final Pattern NUMBERED = Pattern.compile("(.*?)([0-9]+)");
    private static final Pattern REFUSED = Pattern.compile("invalid partition name '([^']*)', expected '([^']*)'");

    private DiskPartitions() {
    }

    /** A request rounded up to whole sectors, as libvirt hands it to parted. */
    static long capacityFor(long bytes) {
        long rounded = (bytes + SECTOR - 1) / SECTOR * SECTOR;
        return rounded < bytes ? bytes : rounded; // no overflow at the top of the range
    }

    /**
     * The name libvirt will give the next volume of the pool, when it can be told from the names of
     * its volumes (libvirt named them after their partitions) or, in an empty pool, from the kernel's
     * name of its device; empty when it cannot (neither is known, a DOS label with its primaries
     * used, another label type).
     *
     * @param deviceName the kernel's name of the pool's device ({@code sdb}, {@code loop0}), when known
     */
    static Optional<String> nextName(PoolXml pool, Collection<String> volumeNames, Optional<String> deviceName) {
        if (pool.sourceDevices().size() != 1) {
            return Optional.empty();
        }
        String prefix = null;
        Set<Integer> used = new HashSet<>();
        for (String name : volumeNames) {
            Matcher m = NUMBERED.matcher(name);
            if (!m.matches() || m.group(2).length() > 6 || (prefix != null && !prefix.equals(m.group(1)))) {
                return Optional.empty();
            }
            prefix = m.group(1);
            used.add(Integer.parseInt(m.group(2)));
        }
        if (prefix == null) {
            if (deviceName.isEmpty()) {
                return Optional.empty();
            }
            prefix = partitionPrefix(deviceName.get());
        }
        String format = pool.format().orElse("dos");
        int limit = switch (format) {
            case "gpt" -> Integer.MAX_VALUE;
            case "dos" -> 4;
            default -> 0;
        };
        for (int n = 1; n <= limit; n++) {
            if (!used.contains(n)) {
                return Optional.of(prefix + n);
            }
        }
        return Optional.empty();
    }

    /**
     * The kernel's name of the pool's device: its path resolved, on this host ({@code sdc} for
     * {@code /dev/disk/by-id/wwn-0x5...}); from elsewhere only a path directly under {@code /dev},
     * taken to be the node itself.
     */
    static Optional<String> deviceName(PoolXml pool, boolean onThisHost) {
        if (pool.sourceDevices().size() != 1) {
            return Optional.empty();
        }
        Path source = Path.of(pool.sourceDevices().get(0));
        if (onThisHost) {
            try {
                source = source.toRealPath();
            } catch (IOException | SecurityException e) {
                return Optional.empty();
            }
        }
        Path dir = source.getParent();
        return dir != null && dir.equals(Path.of("/dev")) ? Optional.of(source.getFileName().toString()) : Optional.empty();
    }

    /** Whether libvirt can delete this pool's partitions: not when the source device's name ends in a digit. */
    static boolean canDelete(PoolXml pool) {
        if (pool.sourceDevices().size() != 1) {
            return true;
        }
        String name = Path.of(pool.sourceDevices().get(0)).getFileName().toString();
        return name.isEmpty() || !Character.isDigit(name.charAt(name.length() - 1));
    }

    /** Whether creating a volume can make libvirt delete an existing partition (see above). */
    static boolean createEndangersPartitions(PoolXml pool, Collection<String> volumeNames) {
        return !volumeNames.isEmpty() && pool.targetPath().map(t -> !Path.of(t).normalize().equals(Path.of("/dev")))
                .orElse(false);
    }

    /** The name libvirt expected, from its "invalid partition name 'x', expected 'y'" refusal. */
    static Optional<String> expectedName(String libvirtMessage) {
        Matcher m = REFUSED.matcher(String.valueOf(libvirtMessage));
        return m.find() ? Optional.of(m.group(2)) : Optional.empty();
    }

    /** {@code sdb} for {@code sdb}, {@code loop0p} for {@code loop0}: what precedes a partition's number. */
    static String partitionPrefix(String deviceName) {
        return !deviceName.isEmpty() && Character.isDigit(deviceName.charAt(deviceName.length() - 1))
                ? deviceName + "p" : deviceName;
    }
}
