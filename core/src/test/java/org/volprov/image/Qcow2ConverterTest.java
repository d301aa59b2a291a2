package org.volprov.image;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.volprov.Cancellation;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.contract.ImageConverterContract;
import org.volprov.testing.TestImages;

/**
 * The Java decoder as an {@link org.volprov.image.ImageConverter}: the contract, and how it names what it
 * refuses (from the header, without qemu-img) and where it stops when cancelled.
 */
class Qcow2ConverterTest extends ImageConverterContract {
    private final Qcow2Converter converter = new Qcow2Converter(2);

    @Override
    protected ImageConverter converter() {
        return converter;
    }

    @Test
    void inspect_whenBackingFile_namesIt() throws Exception {
        Path overlay = TestImages.qcow2WithBacking(qcow2, dir.resolve("overlay-named.qcow2"));
        assertUnsupported(() -> converter.inspect(overlay, ImageFormat.AUTO), "backing file ('" + qcow2 + "')");
    }

    @Test
    void inspect_whenEncrypted_namesTheMethod() throws Exception {
        for (String format : new String[] {"luks", "aes"}) {
            Path f = TestImages.qcow2Encrypted(dir.resolve("enc-named-" + format + ".qcow2"), format);
            assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "encrypted (" + format.toUpperCase() + ")");
        }
    }

    @Test
    void inspect_whenUnknownIncompatibleFeature_failsUnsupported_namingTheBit() throws Exception {
        Path f = patched("unknown-feature.qcow2", 72 + 7, (byte) 0x20); // bit 5 of incompatible_features
        assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "bit 5");
    }

    @Test
    void inspect_whenMarkedCorrupt_failsUnsupported() throws Exception {
        Path f = patched("marked-corrupt.qcow2", 72 + 7, (byte) 0x02);
        assertUnsupported(() -> converter.inspect(f, ImageFormat.AUTO), "marked corrupt");
    }

    @Test
    void convert_whenCancelledMidway_stopsAtTheProgressThatCancelled() throws Exception {
        Path target = dir.resolve("cancel-midway-target");
        try (RandomAccessFile f = new RandomAccessFile(target.toFile(), "rw")) {
            f.setLength(SIZE);
        }
        for (Path image : new Path[] {qcow2, compressed}) {
            ImageInfo info = converter.inspect(image, ImageFormat.AUTO);
            Cancellation c = Cancellation.none();
            List<Long> progress = new ArrayList<>();
            assertThatThrownBy(() -> converter.convertToRaw(image, info, target, true, done -> {
                progress.add(done);
                c.cancel(ErrorCode.CANCELLED, "test");
            }, c)).isInstanceOfSatisfying(ProvisioningException.class,
                    e -> assertThat(e.code()).isEqualTo(ErrorCode.CANCELLED));
            assertThat(progress).hasSize(1);
        }
    }

    private static Path patched(String name, long offset, byte orBits) throws IOException {
        Path f = dir.resolve(name);
        Files.copy(qcow2, f);
        try (RandomAccessFile r = new RandomAccessFile(f.toFile(), "rw")) {
            r.seek(offset);
            int b = r.read();
            r.seek(offset);
            r.write(b | orBits);
        }
        return f;
    }
}
