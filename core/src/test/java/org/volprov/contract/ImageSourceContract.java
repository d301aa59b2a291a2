package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.source.ImageSource;
import org.volprov.source.ObjectInfo;

/**
 * The behaviour every {@link ImageSource} shares. An implementation's test extends this class,
 * provides a bucket that exists and a way to put objects into it.
 */
public abstract class ImageSourceContract {
    protected static final String DIGEST = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

    /** The source under test. */
    protected abstract ImageSource source();

    /** A bucket that exists and that the source may read. */
    protected abstract String bucket();

    /** Stores {@code content} at {@code bucket()/key}, replacing what was there. */
    protected abstract void put(String key, byte[] content) throws Exception;

    protected ImageRef ref(String key) {
        return new ImageRef(bucket(), key);
    }

    /** The ETag {@code stat} returns for {@code key} now. */
    protected String etag(String key) {
        return source().stat(ref(key)).etag();
    }

    protected static byte[] random(int size, long seed) {
        byte[] b = new byte[size];
        new Random(seed).nextBytes(b);
        return b;
    }

    protected static byte[] readAll(InputStream in) throws IOException {
        try (in) {
            return in.readAllBytes();
        }
    }

    @Test
    public void stat_reportsSizeAndEtag() throws Exception {
        put("stat/img.raw", random(100_003, 1));
        ObjectInfo info = source().stat(ref("stat/img.raw"));
        assertThat(info.size()).isEqualTo(100_003);
        assertThat(info.etag()).isNotBlank().doesNotContain("\"");
    }

    @Test
    public void stat_whenContentChanges_etagChanges() throws Exception {
        put("etag/img.raw", random(4096, 1));
        String first = source().stat(ref("etag/img.raw")).etag();
        Thread.sleep(1100); // sources that derive the ETag from a modification time need a new second
        put("etag/img.raw", random(4097, 2));
        assertThat(source().stat(ref("etag/img.raw")).etag()).isNotEqualTo(first);
    }

    @Test
    public void stat_whenKeyMissing_failsWithImageNotFound() {
        assertThatThrownBy(() -> source().stat(ref("no/such/key.qcow2")))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.IMAGE_NOT_FOUND);
    }

    @Test
    public void stat_whenBucketMissing_failsWithImageNotFound() {
        assertThatThrownBy(() -> source().stat(new ImageRef("no-such-bucket-" + Long.toHexString(System.nanoTime()),
                "x.qcow2")))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.IMAGE_NOT_FOUND);
    }

    @Test
    public void publishedChecksum_acceptsBareDigest() throws Exception {
        put("sum/bare.qcow2", new byte[] {1});
        put("sum/bare.qcow2.sha256", (DIGEST.toUpperCase() + "\n").getBytes(StandardCharsets.US_ASCII));
        assertThat(source().publishedChecksum(ref("sum/bare.qcow2"))).contains(DIGEST);
    }

    @Test
    public void publishedChecksum_acceptsSha256sumLine() throws Exception {
        put("sum/line.qcow2", new byte[] {1});
        put("sum/line.qcow2.sha256", ("  " + DIGEST + "  line.qcow2\n").getBytes(StandardCharsets.US_ASCII));
        assertThat(source().publishedChecksum(ref("sum/line.qcow2"))).contains(DIGEST);
    }

    @Test
    public void publishedChecksum_whenAbsent_isEmpty() throws Exception {
        put("sum/none.qcow2", new byte[] {1});
        assertThat(source().publishedChecksum(ref("sum/none.qcow2"))).isEmpty();
    }

    @Test
    public void publishedChecksum_whenGarbage_isEmpty() throws Exception {
        put("sum/bad.qcow2", new byte[] {1});
        put("sum/bad.qcow2.sha256", "not a digest".getBytes(StandardCharsets.US_ASCII));
        assertThat(source().publishedChecksum(ref("sum/bad.qcow2"))).isEmpty();
    }

    @Test
    public void open_readsRanges() throws Exception {
        byte[] data = random(300_001, 7);
        put("range/img.raw", data);
        assertThat(readAll(source().open(ref("range/img.raw"), etag("range/img.raw"), 0, data.length))).isEqualTo(data);
        byte[] mid = readAll(source().open(ref("range/img.raw"), etag("range/img.raw"), 65_536, 100_000));
        assertThat(mid).isEqualTo(java.util.Arrays.copyOfRange(data, 65_536, 165_536));
        byte[] tail = readAll(source().open(ref("range/img.raw"), etag("range/img.raw"), data.length - 1, 1));
        assertThat(tail).containsExactly(data[data.length - 1]);
    }

    @Test
    public void open_whenObjectReplacedSinceStat_failsWithImageChanged_andTheNewVersionReads() throws Exception {
        byte[] v1 = random(100_000, 4);
        byte[] v2 = random(100_001, 5);
        put("changed/img.raw", v1);
        String first = etag("changed/img.raw");
        put("changed/img.raw", v2);
        for (long offset : new long[] {0, 4096}) {
            assertThatThrownBy(() -> readAll(source().open(ref("changed/img.raw"), first, offset, 50_000)))
                    .as("a read at %d conditional on the replaced version", offset)
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.IMAGE_CHANGED);
        }
        assertThat(readAll(source().open(ref("changed/img.raw"), etag("changed/img.raw"), 0, v2.length)))
                .isEqualTo(v2);
    }

    @Test
    public void open_emptyAndOneByteObjects() throws Exception {
        put("tiny/zero", new byte[0]);
        put("tiny/one", new byte[] {42});
        assertThat(source().stat(ref("tiny/zero")).size()).isZero();
        assertThat(readAll(source().open(ref("tiny/zero"), etag("tiny/zero"), 0, 0))).isEmpty();
        assertThat(readAll(source().open(ref("tiny/one"), etag("tiny/one"), 0, 1))).containsExactly(42);
    }

    @Test
    public void keysWithSpacesAndUnicode_work() throws Exception {
        String key = "images/ubuntu 24.04/Bücher-日本 (1).qcow2";
        byte[] data = random(70_000, 3);
        put(key, data);
        put(key + ".sha256", (DIGEST + "  x").getBytes(StandardCharsets.US_ASCII));
        assertThat(source().stat(ref(key)).size()).isEqualTo(data.length);
        assertThat(source().publishedChecksum(ref(key))).contains(DIGEST);
        assertThat(readAll(source().open(ref(key), etag(key), 1, data.length - 1)))
                .isEqualTo(java.util.Arrays.copyOfRange(data, 1, data.length));
    }
}
