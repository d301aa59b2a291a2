package org.volprov.libvirt;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.xpath.XPathFactory;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.w3c.dom.Document;

class VolumeXmlTest {

    @Test
    void escape_replacesEveryMarkupCharacter() {
        assertThat(VolumeXml.escape("a<b>&'\"c")).isEqualTo("a&lt;b&gt;&amp;&apos;&quot;c");
    }

    @Test
    void escape_refusesControlCharactersXmlCannotCarry() {
        assertThatThrownBy(() -> VolumeXml.escape("a\u0000b")).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> VolumeXml.escape("a\u001bb")).isInstanceOf(IllegalArgumentException.class);
    }

    @Test
    void volume_forFilePool_isSparseRawAndParsesBack() throws Exception {
        Document doc = parse(VolumeXml.volume("vm-1_root+a.b", 10_737_418_240L, 0, true));
        assertThat(xpath(doc, "/volume/name")).isEqualTo("vm-1_root+a.b");
        assertThat(xpath(doc, "/volume/capacity")).isEqualTo("10737418240");
        assertThat(xpath(doc, "/volume/capacity/@unit")).isEqualTo("bytes");
        assertThat(xpath(doc, "/volume/allocation")).isEqualTo("0");
        assertThat(xpath(doc, "/volume/target/format/@type")).isEqualTo("raw");
    }

    @Test
    void volume_forLogicalPool_isThickAndNamesNoFormat() throws Exception {
        Document doc = parse(VolumeXml.volume("vm1", 4096, 4096, false));
        assertThat(xpath(doc, "/volume/allocation")).isEqualTo("4096");
        assertThat(xpath(doc, "count(/volume/target)")).isEqualTo("0");
    }

    @Test
    void volume_withXmlBreakingName_isRefusedBeforeAnyXmlIsBuilt() {
        for (String bad : new String[] {"a<b", "x'/><evil/>", "a&b", "a\"b", "../etc", "-x", ""}) {
            assertThatThrownBy(() -> VolumeXml.volume(bad, 1024, 0, true))
                    .as(bad)
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
        }
    }

    @Test
    void dirPool_escapesNameAndPath_soTheyParseBackUnchanged() throws Exception {
        String name = "pool</name><evil a='1'/>&";
        Path dir = Path.of("/srv/a'b\"c<d>&e");
        Document doc = parse(VolumeXml.dirPool(name, dir));
        assertThat(xpath(doc, "/pool/@type")).isEqualTo("dir");
        assertThat(xpath(doc, "/pool/name")).isEqualTo(name);
        assertThat(xpath(doc, "/pool/target/path")).isEqualTo(dir.toString());
        assertThat(xpath(doc, "count(//evil)")).isEqualTo("0");
    }

    @Test
    void volume_withBadSizes_isRefused() {
        assertThatThrownBy(() -> VolumeXml.volume("v", 0, 0, true)).isInstanceOf(IllegalArgumentException.class);
        assertThatThrownBy(() -> VolumeXml.volume("v", 10, 11, true)).isInstanceOf(IllegalArgumentException.class);
    }

    private static Document parse(String xml) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return f.newDocumentBuilder().parse(new ByteArrayInputStream(xml.getBytes(StandardCharsets.UTF_8)));
    }

    private static String xpath(Document doc, String expr) throws Exception {
        return XPathFactory.newInstance().newXPath().evaluate(expr, doc);
    }
}
