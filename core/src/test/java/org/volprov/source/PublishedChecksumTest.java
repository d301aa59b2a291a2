package org.volprov.source;

import static org.assertj.core.api.Assertions.assertThat;

import org.junit.jupiter.api.Test;

class PublishedChecksumTest {
    private static final String D = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    @Test
    void bareDigest_anyCase_surroundedBySpace() {
        assertThat(PublishedChecksum.parse(D)).contains(D);
        assertThat(PublishedChecksum.parse("\n  " + D.toUpperCase() + " \n")).contains(D);
    }

    @Test
    void sha256sumLine_textAndBinaryModes() {
        assertThat(PublishedChecksum.parse(D + "  ubuntu.qcow2\n")).contains(D);
        assertThat(PublishedChecksum.parse(D + " *ubuntu.qcow2")).contains(D);
    }

    @Test
    void anythingElse_isNoChecksum() {
        assertThat(PublishedChecksum.parse(null)).isEmpty();
        assertThat(PublishedChecksum.parse("")).isEmpty();
        assertThat(PublishedChecksum.parse(D.substring(1))).isEmpty();
        assertThat(PublishedChecksum.parse(D + "0")).isEmpty();
        assertThat(PublishedChecksum.parse("SHA256 (x) = " + D)).isEmpty();
        assertThat(PublishedChecksum.parse(D + "  a\n" + D + "  b")).isEmpty();
        assertThat(PublishedChecksum.parse("<html>" + D + "</html>")).isEmpty();
    }
}
