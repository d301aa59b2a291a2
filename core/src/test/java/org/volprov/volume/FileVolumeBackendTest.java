package org.volprov.volume;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.contract.VolumeBackendContract;

class FileVolumeBackendTest extends VolumeBackendContract {
    @TempDir
    Path dir;
    private FileVolumeBackend backend;

    @Override
    protected VolumeBackend backend() {
        if (backend == null) {
            backend = FileVolumeBackend.open(dir.resolve("pool"));
        }
        return backend;
    }

    @Override
    protected byte[] read(VolumeInfo volume, long offset, int length) throws IOException {
        try (RandomAccessFile f = new RandomAccessFile(volume.path(), "r")) {
            byte[] b = new byte[length];
            f.seek(offset);
            f.readFully(b);
            return b;
        }
    }

    @Test
    void create_whenCapacityExceedsFreeSpace_failsWithInsufficientSpace() {
        assertThatThrownBy(() -> backend().create("huge", 1L << 60))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INSUFFICIENT_SPACE);
        assertThat(backend().find("huge")).isEmpty();
    }

    @Test
    void writer_whenFileVanished_neverCreatesOne() throws IOException {
        VolumeInfo v = backend().create("gone", MIB);
        Files.delete(Path.of(v.path()));
        assertThatThrownBy(() -> backend().openWriter(v))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
        assertThat(Path.of(v.path())).doesNotExist();
    }

    @Test
    void localWriter_refusesARegularFileWhereABlockDeviceIsRequired() throws IOException {
        Path f = Files.createFile(dir.resolve("plain"));
        assertThatThrownBy(() -> LocalVolumeWriter.open(f, true))
                .isInstanceOf(ProvisioningException.class)
                .hasMessageContaining("not a block device");
    }
}
