package org.volprov.volume;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/** What the writer refuses to open; writes onto real block devices are in {@link LocalVolumeWriterIT}. */
class LocalVolumeWriterTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "block device required: {0}")
    @ValueSource(booleans = {true, false})
    void open_onASymlinkToARegularFile_isRefused_andTheFileIsUntouched(boolean requireBlockDevice) throws IOException {
        Path file = Files.writeString(dir.resolve("elsewhere.img"), "precious");
        Path link = Files.createSymbolicLink(dir.resolve("vol"), file);
        assertThatThrownBy(() -> LocalVolumeWriter.open(link, requireBlockDevice))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("symbolic link to " + file.toRealPath())
                .hasMessageContaining("not a block device")
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        assertThat(Files.readString(file)).isEqualTo("precious");
    }

    @ParameterizedTest(name = "block device required: {0}")
    @ValueSource(booleans = {true, false})
    void open_onASymlinkToACharacterDevice_isRefused(boolean requireBlockDevice) throws IOException {
        Path link = Files.createSymbolicLink(dir.resolve("vol"), Path.of("/dev/null"));
        assertThatThrownBy(() -> LocalVolumeWriter.open(link, requireBlockDevice))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("not a block device");
    }

    @ParameterizedTest(name = "block device required: {0}")
    @ValueSource(booleans = {true, false})
    void open_onADanglingSymlink_isRefused_andCreatesNothing(boolean requireBlockDevice) throws IOException {
        // An LV whose device node vanished: /dev/<vg>/<lv> still points at /dev/dm-N.
        Path gone = dir.resolve("dm-99");
        Path link = Files.createSymbolicLink(dir.resolve("vol"), gone);
        assertThatThrownBy(() -> LocalVolumeWriter.open(link, requireBlockDevice))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("does not resolve")
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        assertThat(gone).doesNotExist();
    }

    @ParameterizedTest(name = "block device required: {0}")
    @ValueSource(booleans = {true, false})
    void open_onAMissingPath_isRefused_andCreatesNothing(boolean requireBlockDevice) {
        Path missing = dir.resolve("missing");
        assertThatThrownBy(() -> LocalVolumeWriter.open(missing, requireBlockDevice))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("does not exist");
        assertThat(missing).doesNotExist();
    }

    @ParameterizedTest(name = "block device required: {0}")
    @ValueSource(booleans = {true, false})
    void open_onADirectory_isRefused(boolean requireBlockDevice) throws IOException {
        Path sub = Files.createDirectory(dir.resolve("sub"));
        assertThatThrownBy(() -> LocalVolumeWriter.open(sub, requireBlockDevice))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("is not a");
    }
}
