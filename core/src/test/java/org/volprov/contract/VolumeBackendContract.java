package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ReadableByteChannel;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeWriter;

/**
 * The behaviour every {@link VolumeBackend} shares. An implementation's test extends this class;
 * every volume name the tests use comes from {@link #name(String)}, by default {@link #prefix()}
 * and a suffix, so an implementation can clean up (and a pool that names volumes itself can give
 * its own names). A name is asked for just before the volume is created.
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

    /** The name of the volume called {@code suffix} in this test: the same for the same suffix during one test. */
    protected String name(String suffix) {
        return prefix() + suffix;
    }

    /** Whether the backend grows volumes; one that cannot refuses with {@code BACKEND_FAILURE} and changes nothing. */
    protected boolean resizes() {
        return true;
    }

    @Test
    public void create_thenFind_reportsCapacity() {
        VolumeInfo v = backend().create(name("a"), 8 * MIB);
        assertThat(v.capacityBytes()).isEqualTo(8 * MIB);
        VolumeInfo found = backend().find(name("a")).orElseThrow();
        assertThat(found.name()).isEqualTo(name("a"));
        assertThat(found.capacityBytes()).isEqualTo(8 * MIB);
        assertThat(found.path()).isEqualTo(v.path());
    }

    @Test
    public void find_whenMissing_isEmpty() {
        assertThat(backend().find(name("missing"))).isEmpty();
    }

    @Test
    public void create_whenExists_failsWithVolumeConflict() {
        backend().create(name("b"), 4 * MIB);
        assertThatThrownBy(() -> backend().create(name("b"), 4 * MIB))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.VOLUME_CONFLICT);
    }

    @Test
    public void delete_returnsWhetherThereWasAVolume() {
        backend().create(name("c"), 4 * MIB);
        assertThat(backend().delete(name("c"))).isTrue();
        assertThat(backend().find(name("c"))).isEmpty();
        assertThat(backend().delete(name("c"))).isFalse();
    }

    @Test
    public void resize_grows_andRefusesToShrink() {
        backend().create(name("d"), 4 * MIB);
        if (resizes()) {
            assertThat(backend().resize(name("d"), 8 * MIB).capacityBytes()).isEqualTo(8 * MIB);
            assertThat(backend().find(name("d")).orElseThrow().capacityBytes()).isEqualTo(8 * MIB);
        } else {
            assertThatThrownBy(() -> backend().resize(name("d"), 8 * MIB))
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            assertThat(backend().find(name("d")).orElseThrow().capacityBytes()).isEqualTo(4 * MIB);
        }
        assertThatThrownBy(() -> backend().resize(name("d"), 2 * MIB))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.VOLUME_CONFLICT);
    }

    @Test
    public void create_ofASizeThePoolRounds_isAtLeastThatSize_andWritableToItsEnd() throws IOException {
        long asked = 3 * MIB + 1000;
        VolumeInfo v = backend().create(name("h"), asked);
        assertThat(v.capacityBytes()).isGreaterThanOrEqualTo(asked).isGreaterThanOrEqualTo(backend().capacityFor(asked));
        assertThat(backend().find(name("h")).orElseThrow().capacityBytes()).isEqualTo(v.capacityBytes());
        try (VolumeWriter w = backend().openWriter(v)) {
            w.write(ByteBuffer.wrap(new byte[] {7}));
            w.writeZeros(v.capacityBytes() - 2);
            w.write(ByteBuffer.wrap(new byte[] {9}));
            assertThat(w.position()).isEqualTo(v.capacityBytes());
            w.finish();
        }
        assertThat(read(v, 0, 1)).containsExactly(7);
        assertThat(read(v, v.capacityBytes() - 1, 1)).containsExactly(9);
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
        VolumeInfo v = backend().create(name("e"), 4 * MIB);
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
    public void openReader_readsWhatWasWritten_toTheVolumesEnd_orIsRefusedByABackendThatCannot() throws IOException {
        VolumeInfo v = backend().create(name("r"), 2 * MIB);
        if (!backend().readsBack()) {
            assertThatThrownBy(() -> backend().openReader(v))
                    .isInstanceOf(ProvisioningException.class)
                    .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.BACKEND_FAILURE);
            return;
        }
        byte[] data = new byte[(int) MIB + 13];
        new Random(7).nextBytes(data);
        try (VolumeWriter w = backend().openWriter(v)) {
            w.write(ByteBuffer.wrap(data));
            w.writeZeros(v.capacityBytes() - data.length);
            w.finish();
        }
        ByteBuffer all = ByteBuffer.allocate((int) v.capacityBytes() + 1);
        try (ReadableByteChannel in = backend().openReader(backend().find(name("r")).orElseThrow())) {
            while (all.hasRemaining() && in.read(all) >= 0) {
                // reads to the end of the volume
            }
        }
        assertThat(all.position()).as("bytes read").isEqualTo(v.capacityBytes());
        assertThat(Arrays.copyOf(all.array(), data.length)).isEqualTo(data);
        assertThat(Arrays.copyOfRange(all.array(), data.length, (int) v.capacityBytes())).containsOnly((byte) 0);
    }

    @Test
    public void writeZeros_overwritesEarlierContent() throws IOException {
        VolumeInfo v = backend().create(name("f"), 2 * MIB);
        byte[] ones = new byte[(int) (2 * MIB)];
        Arrays.fill(ones, (byte) 0x5a);
        try (VolumeWriter w = backend().openWriter(v)) {
            w.write(ByteBuffer.wrap(ones));
            w.finish();
        }
        VolumeInfo again = backend().find(name("f")).orElseThrow();
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
        VolumeInfo v = backend().create(name("g"), 2 * MIB);
        if (v.readsAsZeros()) {
            assertThat(read(v, 0, (int) (2 * MIB))).containsOnly((byte) 0);
        }
        assertThat(backend().find(name("g")).orElseThrow().readsAsZeros())
                .as("an existing volume is never assumed to be zeroed").isFalse();
    }
}
