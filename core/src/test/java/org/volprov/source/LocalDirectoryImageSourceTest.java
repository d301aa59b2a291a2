package org.volprov.source;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.FileTime;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.contract.ImageSourceContract;

class LocalDirectoryImageSourceTest extends ImageSourceContract {
    @TempDir
    Path root;
    private LocalDirectoryImageSource source;

    @BeforeEach
    void setUp() throws Exception {
        Files.createDirectories(root.resolve(bucket()));
        source = new LocalDirectoryImageSource(root);
    }

    @Override
    protected ImageSource source() {
        return source;
    }

    @Override
    protected String bucket() {
        return "images";
    }

    @Override
    protected void put(String key, byte[] content) throws Exception {
        Path p = root.resolve(bucket()).resolve(key);
        Files.createDirectories(p.getParent());
        Files.write(p, content);
    }

    @Test
    void keyThatLeavesTheBucket_isRefused() {
        assertThatThrownBy(() -> source.stat(new ImageRef("images", "../other/secret")))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
    }

    // ---- a file that changes while a range is read ----

    @Test
    void read_whenTheFileIsRewrittenInPlaceMidRange_failsWithImageChanged_beforeTheLastBytes() throws Exception {
        byte[] v1 = random(300_000, 8);
        put("mid/inplace.raw", v1);
        String etag = source.stat(ref("mid/inplace.raw")).etag();
        Path file = root.resolve("images/mid/inplace.raw");
        try (InputStream in = source.open(ref("mid/inplace.raw"), etag, 0, v1.length)) {
            assertThat(in.readNBytes(100_000)).isEqualTo(java.util.Arrays.copyOf(v1, 100_000));
            FileTime before = Files.getLastModifiedTime(file);
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.write(ByteBuffer.wrap(random(300_000, 9)), 0);
            }
            // A rewrite moves the time on; set here so that the clock's granularity cannot decide the test.
            Files.setLastModifiedTime(file, FileTime.fromMillis(before.toMillis() + 1000));
            assertChanged(() -> in.readAllBytes());
        }
    }

    @Test
    void read_whenTheFileIsReplacedByRenameMidRange_withTheSameSizeAndTime_failsWithImageChanged() throws Exception {
        byte[] v1 = random(300_000, 10);
        put("mid/renamed.raw", v1);
        Path file = root.resolve("images/mid/renamed.raw");
        String etag = source.stat(ref("mid/renamed.raw")).etag();
        try (InputStream in = source.open(ref("mid/renamed.raw"), etag, 0, v1.length)) {
            assertThat(in.readNBytes(100_000)).hasSize(100_000);
            Path next = root.resolve("images/mid/renamed.raw.tmp");
            Files.write(next, random(300_000, 11));
            // What cp -p or rsync leave: the old file's time on new content.
            Files.setLastModifiedTime(next, Files.getLastModifiedTime(file));
            Files.move(next, file, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            assertChanged(() -> in.readAllBytes());
        }
        assertChanged(() -> source.open(ref("mid/renamed.raw"), etag, 0, 10));
    }

    @Test
    void read_whenTheFileIsTruncatedMidRange_failsWithImageChanged_notAShortRead() throws Exception {
        put("mid/truncated.raw", random(300_000, 12));
        Path file = root.resolve("images/mid/truncated.raw");
        String etag = source.stat(ref("mid/truncated.raw")).etag();
        try (InputStream in = source.open(ref("mid/truncated.raw"), etag, 0, 300_000)) {
            assertThat(in.readNBytes(100_000)).hasSize(100_000);
            try (FileChannel ch = FileChannel.open(file, StandardOpenOption.WRITE)) {
                ch.truncate(150_000);
            }
            assertChanged(() -> in.readAllBytes());
        }
    }

    private static void assertChanged(org.assertj.core.api.ThrowableAssert.ThrowingCallable call) {
        assertThatThrownBy(call).isInstanceOfSatisfying(ProvisioningException.class,
                e -> assertThat(e.code()).as(e.toString()).isEqualTo(ErrorCode.IMAGE_CHANGED));
    }
}
