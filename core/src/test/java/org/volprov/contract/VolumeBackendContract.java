package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.VolumeBackend;
import org.volprov.VolumeInfo;
import org.volprov.VolumeWriter;

/**
 * The behaviour every {@link VolumeBackend} shares. An implementation's test extends this class;
 * every volume name the tests use starts with {@link #prefix()} so an implementation can clean up.
 */
public abstract class VolumeBackendContract {
    protected static final long MIB = 1L << 20;

    /** The backend under test, the same instance for the whole test method. */
    protected abstract VolumeBackend backend();

    /** Reads {@code length} bytes of the volume from {@code offset}. */
    protected abstract byte[] read(VolumeInfo volume, long offset, int length) throws IOException;

    /** A prefix unique to this test run. */
    protected String prefix() {
        return "ct-";
    }

    @Test
    public void create_thenFind_reportsCapacity() {
        VolumeInfo v = backend().create(prefix() + "a", 8 * MIB);
        assertThat(v.capacityBytes()).isEqualTo(8 * MIB);
        VolumeInfo found = backend().find(prefix() + "a").orElseThrow();
        assertThat(found.name()).isEqualTo(prefix() + "a");
        assertThat(found.capacityBytes()).isEqualTo(8 * MIB);
        assertThat(found.path()).isEqualTo(v.path());
    }

    @Test
    public void find_whenMissing_isEmpty() {
        assertThat(backend().find(prefix() + "missing")).isEmpty();
    }

    @Test
    public void create_whenExists_failsWithVolumeConflict() {
        backend().create(prefix() + "b", 4 * MIB);
        assertThatThrownBy(() -> backend().create(prefix() + "b", 4 * MIB))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.VOLUME_CONFLICT);
    }

    @Test
    public void delete_returnsWhetherThereWasAVolume() {
        backend().create(prefix() + "c", 4 * MIB);
        assertThat(backend().delete(prefix() + "c")).isTrue();
        assertThat(backend().find(prefix() + "c")).isEmpty();
        assertThat(backend().delete(prefix() + "c")).isFalse();
    }

    @Test
    public void resize_grows_andRefusesToShrink() {
        backend().create(prefix() + "d", 4 * MIB);
        assertThat(backend().resize(prefix() + "d", 8 * MIB).capacityBytes()).isEqualTo(8 * MIB);
        assertThat(backend().find(prefix() + "d").orElseThrow().capacityBytes()).isEqualTo(8 * MIB);
        assertThatThrownBy(() -> backend().resize(prefix() + "d", 4 * MIB))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.VOLUME_CONFLICT);
    }

    @Test
    public void invalidNames_areRefusedBeforeReachingTheBackend() {
        for (String bad : new String[] {"../x", "a'b", "<x/>", "-rf", "a\u0000b", "x".repeat(300), ".", "..", ""}) {
            assertThatThrownBy(() -> backend().create(bad, MIB))
                    .as(bad)
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
        }
    }

    @Test
    public void writer_writesBytes_thenZeros_thenTheRestReadsAsWritten() throws IOException {
        VolumeInfo v = backend().create(prefix() + "e", 4 * MIB);
        byte[] data = new byte[(int) (3 * MIB / 2) + 7];
        new Random(42).nextBytes(data);
        try (VolumeWriter w = backend().openWriter(v)) {
            w.write(ByteBuffer.wrap(data));
            assertThat(w.position()).isEqualTo(data.length);
            w.writeZeros(4 * MIB - data.length);
            w.finish();
        }
        assertThat(read(v, 0, data.length)).isEqualTo(data);
        assertThat(read(v, data.length, (int) (4 * MIB - data.length))).containsOnly((byte) 0);
    }

    @Test
    public void writeZeros_overwritesEarlierContent() throws IOException {
        VolumeInfo v = backend().create(prefix() + "f", 2 * MIB);
        byte[] ones = new byte[(int) (2 * MIB)];
        Arrays.fill(ones, (byte) 0x5a);
        try (VolumeWriter w = backend().openWriter(v)) {
            w.write(ByteBuffer.wrap(ones));
            w.finish();
        }
        VolumeInfo again = backend().find(prefix() + "f").orElseThrow();
        try (VolumeWriter w = backend().openWriter(again)) {
            w.write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            w.writeZeros(2 * MIB - 3);
            w.finish();
        }
        assertThat(read(again, 0, 3)).containsExactly(1, 2, 3);
        assertThat(read(again, 3, (int) (2 * MIB - 3))).containsOnly((byte) 0);
    }

    @Test
    public void newVolume_thatSaysItReadsAsZeros_does() throws IOException {
        VolumeInfo v = backend().create(prefix() + "g", 2 * MIB);
        if (v.readsAsZeros()) {
            assertThat(read(v, 0, (int) (2 * MIB))).containsOnly((byte) 0);
        }
        assertThat(backend().find(prefix() + "g").orElseThrow().readsAsZeros())
                .as("an existing volume is never assumed to be zeroed").isFalse();
    }
}
