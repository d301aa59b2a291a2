package org.volprov.internal.qcow2;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Optional;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/** The header is decided from an image's first bytes: accepted within its first cluster, or refused. */
class Qcow2HeaderTest {
    @TempDir
    Path work;

    @Test
    void everyCorpusImage_isDecidedWithinItsFirstCluster_andMostlyItsFirstKilobyte() throws IOException {
        int withinFirstKiB = 0;
        for (Qcow2Corpus.Image image : Qcow2Corpus.all()) {
            byte[] bytes = Files.readAllBytes(image.file());
            int needed = 0;
            Optional<Qcow2Header> header = Optional.empty();
            while (header.isEmpty()) {
                needed = Math.min(bytes.length, needed + 64);
                header = Qcow2Header.parse(ByteBuffer.wrap(bytes, 0, needed), bytes.length);
            }
            assertThat(needed).as(image.name()).isLessThanOrEqualTo(header.get().clusterSize());
            assertThat(header.get().virtualSize()).as(image.name()).isEqualTo(image.virtualSize());
            withinFirstKiB += needed <= 1024 ? 1 : 0;
        }
        assertThat(withinFirstKiB).isGreaterThan(Qcow2Corpus.all().size() / 2);
    }

    @Test
    void features_thatDoNotChangeTheMapping_areReadAndAccepted() throws IOException {
        assertThat(header("dirty").dirty()).isTrue();
        assertThat(header("dirty").lazyRefcounts()).isTrue();
        assertThat(header("lazy-refcounts").lazyRefcounts()).isTrue();
        assertThat(header("lazy-refcounts").dirty()).isFalse();
        assertThat(header("snapshots").snapshots()).isEqualTo(2);
        assertThat(header("extended-l2").extendedL2()).isTrue();
        assertThat(header("zstd-64k").compression()).isEqualTo(Qcow2Header.Compression.ZSTD);
        assertThat(header("v2-4k").version()).isEqualTo(2);
        assertThat(header("v2-4k").clusterSize()).isEqualTo(4096);
    }

    private static Qcow2Header header(String name) throws IOException {
        byte[] bytes = Files.readAllBytes(Qcow2Corpus.get(name).file());
        return Qcow2Header.parse(ByteBuffer.wrap(bytes), bytes.length).orElseThrow();
    }

    @Test
    void refusals_areDecidedFromTheFirstCluster_withWhatToDo() throws IOException {
        assertRefused(Qcow2Corpus.backingFile(work), "has a backing file", "flatten");
        assertRefused(Qcow2Corpus.externalDataFile(work), "external data file", "self-contained");
        assertRefused(Qcow2Corpus.encrypted(work, "luks"), "encrypted (LUKS)", "decrypted");
        assertRefused(Qcow2Corpus.encrypted(work, "aes"), "encrypted (AES)", "decrypted");
    }

    @Test
    void truncatedImage_isRefusedNotWaitedFor() {
        byte[] head = Arrays.copyOf(new byte[] {'Q', 'F', 'I', (byte) 0xfb, 0, 0, 0, 3}, 40);
        assertThatThrownBy(() -> Qcow2Header.parse(ByteBuffer.wrap(head), head.length))
                .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE);
                    assertThat(e.getMessage()).contains("ends inside its header");
                });
        assertThat(Qcow2Header.parse(ByteBuffer.wrap(head), 1 << 20)).as("more bytes to come").isEmpty();
    }

    private static void assertRefused(Path image, String what, String todo) throws IOException {
        byte[] bytes = Files.readAllBytes(image);
        int first = Math.min(bytes.length, 64 << 10);
        assertThatThrownBy(() -> Qcow2Header.parse(ByteBuffer.wrap(bytes, 0, first), bytes.length))
                .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                    assertThat(e.code()).isEqualTo(ErrorCode.UNSUPPORTED_IMAGE);
                    assertThat(e.getMessage()).contains(what).contains(todo);
                });
    }
}
