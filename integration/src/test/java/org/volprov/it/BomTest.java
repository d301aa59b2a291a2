package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import javax.xml.parsers.DocumentBuilderFactory;
import javax.xml.xpath.XPath;
import javax.xml.xpath.XPathConstants;
import javax.xml.xpath.XPathFactory;
import org.junit.jupiter.api.Test;
import org.w3c.dom.Document;
import org.w3c.dom.Node;
import org.w3c.dom.NodeList;

/** The BOM lists what the reactor deploys, nothing else, at the reactor's version. */
class BomTest {
    private static final Path ROOT = Path.of("").toAbsolutePath().getParent();
    private static final XPath XPATH = XPathFactory.newInstance().newXPath();

    @Test
    void bom_listsEveryDeployedArtifactAndTestJar_atTheReactorsVersion() throws Exception {
        Document root = parse(ROOT.resolve("pom.xml"));
        Document bom = parse(ROOT.resolve("bom/pom.xml"));
        assertThat(text(bom, "/project/version")).isEqualTo(text(root, "/project/version"));
        assertThat(text(bom, "/project/parent")).as("the BOM has no parent").isEmpty();

        Set<String> deployed = new TreeSet<>();
        for (String module : texts(root, "/project/modules/module")) {
            if (module.equals("bom")) {
                continue;
            }
            Document pom = parse(ROOT.resolve(module).resolve("pom.xml"));
            String skip = text(pom, "/project/build/plugins/plugin[artifactId='maven-deploy-plugin']/configuration/skip");
            if (skip.equals("true")) {
                continue;
            }
            String artifact = text(pom, "/project/artifactId");
            deployed.add(artifact + ":jar");
            if (!texts(pom, "/project/build/plugins/plugin[artifactId='maven-jar-plugin']//goal[.='test-jar']")
                    .isEmpty()) {
                deployed.add(artifact + ":test-jar");
            }
        }

        Set<String> listed = new TreeSet<>();
        NodeList entries = (NodeList) XPATH.evaluate("/project/dependencyManagement/dependencies/dependency", bom,
                XPathConstants.NODESET);
        for (int i = 0; i < entries.getLength(); i++) {
            Node d = entries.item(i);
            assertThat(text(d, "groupId")).isEqualTo("org.volprov");
            assertThat(text(d, "version")).isEqualTo("${project.version}");
            String type = text(d, "type");
            listed.add(text(d, "artifactId") + ":" + (type.isEmpty() ? "jar" : type));
        }
        assertThat(deployed).contains("volprov-core:jar", "volprov-core:test-jar", "volprov-adapter-s3:jar");
        assertThat(listed).isEqualTo(deployed);
    }

    private static Document parse(Path pom) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setFeature("http://apache.org/xml/features/disallow-doctype-decl", true);
        return f.newDocumentBuilder().parse(pom.toFile());
    }

    private static String text(Object node, String path) throws Exception {
        return ((String) XPATH.evaluate(path, node, XPathConstants.STRING)).strip();
    }

    private static List<String> texts(Object node, String path) throws Exception {
        NodeList nodes = (NodeList) XPATH.evaluate(path, node, XPathConstants.NODESET);
        List<String> out = new ArrayList<>();
        for (int i = 0; i < nodes.getLength(); i++) {
            out.add(nodes.item(i).getTextContent().strip());
        }
        return out;
    }
}
