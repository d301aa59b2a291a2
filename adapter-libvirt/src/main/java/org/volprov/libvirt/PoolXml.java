package org.volprov.libvirt;

import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import javax.xml.XMLConstants;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.parsers.ParserConfigurationException;
import org.w3c.dom.Document;
import org.w3c.dom.Element;
import org.w3c.dom.NodeList;
import org.xml.sax.SAXException;

/**
 * What this adapter reads from a pool's XML description ({@code virStoragePoolGetXMLDesc}). The
 * document comes from libvirtd, so it is parsed without DTDs or external entities, capped in size,
 * and every value is checked before use.
 *
 * @param type the pool type ({@code dir}, {@code logical}, {@code disk}, ...)
 * @param sourceDevices the {@code <source><device path=.../>} paths, in order (a disk pool has one)
 * @param format the {@code <source><format type=.../>}, e.g. {@code gpt} or {@code dos}; empty when absent
 * @param freeExtents the free regions a disk pool lists under its device, in bytes
 * @param targetPath the {@code <target><path>}, when there is one
 */
record PoolXml(String type, List<String> sourceDevices, Optional<String> format, List<Extent> freeExtents,
        Optional<String> targetPath) {
    private static final int MAX_CHARS = 1 << 20;

    /** A free region {@code [start, end)} of a disk pool's device. */
    record Extent(long start, long end) {
        long size() {
            return end - start;
        }
    }

    static PoolXml parse(String xml) {
        if (xml == null || xml.length() > MAX_CHARS) {
            throw new IllegalArgumentException("pool XML is missing or longer than " + MAX_CHARS + " characters");
        }
        Element pool = document(xml).getDocumentElement();
        if (!"pool".equals(pool.getTagName())) {
            throw new IllegalArgumentException("pool XML has no <pool> root element");
        }
        String type = pool.getAttribute("type");
        if (!type.matches("[A-Za-z0-9_-]{1,32}")) {
            throw new IllegalArgumentException("pool XML has no valid type attribute");
        }
        List<String> devices = new ArrayList<>();
        List<Extent> free = new ArrayList<>();
        Optional<String> format = Optional.empty();
        Element source = child(pool, "source");
        if (source != null) {
            for (Element device : children(source, "device")) {
                String path = device.getAttribute("path");
                if (!path.isEmpty() && path.startsWith("/") && path.chars().noneMatch(Character::isISOControl)) {
                    devices.add(path);
                }
                for (Element e : children(device, "freeExtent")) {
                    long start = number(e.getAttribute("start"));
                    long end = number(e.getAttribute("end"));
                    if (start >= 0 && end > start) {
                        free.add(new Extent(start, end));
                    }
                }
            }
            Element f = child(source, "format");
            if (f != null && f.getAttribute("type").matches("[A-Za-z0-9_-]{1,32}")) {
                format = Optional.of(f.getAttribute("type"));
            }
        }
        Optional<String> target = Optional.empty();
        Element t = child(pool, "target");
        Element path = t == null ? null : child(t, "path");
        if (path != null && path.getTextContent().strip().startsWith("/")) {
            target = Optional.of(path.getTextContent().strip());
        }
        return new PoolXml(type, List.copyOf(devices), format, List.copyOf(free), target);
    }

    /** The largest free region in bytes; 0 when the pool lists none. */
    long largestFreeExtent() {
        return freeExtents.stream().mapToLong(Extent::size).max().orElse(0);
    }

    private static Document document(String xml) {
        try {
            DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
            f.setFeature(XMLConstants.FEATURE_SECURE_PROCESSING, true);
            f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
            f.setXIncludeAware(false);
            f.setExpandEntityReferences(false);
            return f.newDocumentBuilder().parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
        } catch (ParserConfigurationException | SAXException | IOException e) {
            throw new IllegalArgumentException("pool XML cannot be parsed: " + e.getMessage(), e);
        }
    }

    private static Element child(Element parent, String tag) {
        List<Element> c = children(parent, tag);
        return c.isEmpty() ? null : c.get(0);
    }

    private static List<Element> children(Element parent, String tag) {
        List<Element> out = new ArrayList<>();
        NodeList nodes = parent.getChildNodes();
        for (int i = 0; i < nodes.getLength(); i++) {
            if (nodes.item(i) instanceof Element e && e.getTagName().equals(tag)) {
                out.add(e);
            }
        }
        return out;
    }

    private static long number(String s) {
        if (!s.matches("[0-9]{1,19}")) {
            return -1;
        }
        try {
            return Long.parseLong(s);
        } catch (NumberFormatException e) {
            return -1;
        }
    }
}
