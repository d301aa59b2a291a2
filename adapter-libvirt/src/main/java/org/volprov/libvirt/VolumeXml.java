package org.volprov.libvirt;

import java.nio.file.Path;
import org.volprov.volume.VolumeNames;

/**
 * The XML documents this adapter hands to libvirt. Names are validated before they get here, and
 * every value is escaped anyway: the validation is the rule, escaping is the seatbelt.
 */
final class VolumeXml {
    private VolumeXml() {
    }

    /**
     * A raw volume. {@code allocationBytes} 0 makes a sparse file in a file-based pool; a
     * {@code logical} pool gets the full capacity so the LV is thick (a smaller allocation there
     * would make an old-style snapshot LV that breaks when it fills).
     *
     * @param rawFormat whether to name the raw format; only file-based pools accept a format
     */
    static String volume(String name, long capacityBytes, long allocationBytes, boolean rawFormat) {
        VolumeNames.validate(name);
        if (capacityBytes <= 0) {
            throw new IllegalArgumentException("capacityBytes must be greater than 0");
        }
        if (allocationBytes < 0 || allocationBytes > capacityBytes) {
            throw new IllegalArgumentException("allocationBytes must be between 0 and capacityBytes");
        }
        StringBuilder xml = new StringBuilder(256)
                .append("<volume>\n")
                .append("  <name>").append(escape(name)).append("</name>\n")
                .append("  <capacity unit='bytes'>").append(capacityBytes).append("</capacity>\n")
                .append("  <allocation unit='bytes'>").append(allocationBytes).append("</allocation>\n");
        if (rawFormat) {
            xml.append("  <target>\n    <format type='raw'/>\n  </target>\n");
        }
        return xml.append("</volume>\n").toString();
    }

    /** A {@code dir} pool whose volumes are files in {@code directory}. */
    static String dirPool(String poolName, Path directory) {
        return "<pool type='dir'>\n"
                + "  <name>" + escape(poolName) + "</name>\n"
                + "  <target>\n    <path>" + escape(directory.toString()) + "</path>\n  </target>\n"
                + "</pool>\n";
    }

    /** Escapes text for an XML element or a single- or double-quoted attribute. */
    static String escape(String s) {
        StringBuilder out = new StringBuilder(s.length() + 16);
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '&' -> out.append("&amp;");
                case '<' -> out.append("&lt;");
                case '>' -> out.append("&gt;");
                case '"' -> out.append("&quot;");
                case '\'' -> out.append("&apos;");
                default -> {
                    // XML 1.0 cannot carry most control characters even escaped.
                    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') {
                        throw new IllegalArgumentException("control character U+" + Integer.toHexString(c) + " cannot appear in XML");
                    }
                    out.append(c);
                }
            }
        }
        return out.toString();
    }
}
