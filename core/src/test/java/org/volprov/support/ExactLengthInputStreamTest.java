package org.volprov.support;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.ByteArrayInputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

class ExactLengthInputStreamTest {

    @Test
    void read_whenUnderlyingEndsEarly_throwsInsteadOfEndOfStream() {
        InputStream in = new ExactLengthInputStream(new ByteArrayInputStream(new byte[10]), 11, () -> { }, "x");
        assertThatThrownBy(in::readAllBytes).isInstanceOf(EOFException.class).hasMessageContaining("10 of 11");
    }

    @Test
    void read_whenUnderlyingHasMore_stopsAtLength() throws IOException {
        InputStream in = new ExactLengthInputStream(new ByteArrayInputStream(new byte[] {1, 2, 3, 4}), 3, () -> { }, "x");
        assertThat(in.readAllBytes()).containsExactly(1, 2, 3);
        assertThat(in.read()).isEqualTo(-1);
    }

    @Test
    void read_whenUnderlyingFails_keepsTheCauseAndSaysWhere() {
        InputStream failing = new InputStream() {
            @Override
            public int read() throws IOException {
                throw new IOException("Connection reset");
            }
        };
        InputStream in = new ExactLengthInputStream(failing, 5, () -> { }, "s3://b/k");
        assertThatThrownBy(in::read).isInstanceOf(IOException.class)
                .hasMessageContaining("s3://b/k").hasRootCauseMessage("Connection reset");
    }

    @Test
    void close_beforeTheEnd_abortsOnce_andAtTheEndDoesNot() throws IOException {
        AtomicInteger aborts = new AtomicInteger();
        InputStream early = new ExactLengthInputStream(new ByteArrayInputStream(new byte[10]), 10, aborts::incrementAndGet, "x");
        early.read();
        early.close();
        early.close();
        assertThat(aborts).hasValue(1);
        InputStream full = new ExactLengthInputStream(new ByteArrayInputStream(new byte[10]), 10, aborts::incrementAndGet, "x");
        full.readAllBytes();
        full.close();
        assertThat(aborts).hasValue(1);
    }
}
