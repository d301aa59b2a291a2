package org.volprov.internal;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.ClosedChannelException;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayDeque;
import java.util.Queue;
import java.util.concurrent.Executor;
import java.util.concurrent.RejectedExecutionException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class WritebackTest {
    /** Runs nothing until told: what a flush in progress looks like from the writing thread. */
    private static final class HeldExecutor implements Executor {
        final Queue<Runnable> held = new ArrayDeque<>();

        @Override
        public void execute(Runnable task) {
            held.add(task);
        }

        void runAll() {
            for (Runnable r; (r = held.poll()) != null; ) {
                r.run();
            }
        }
    }

    @Test
    void flushesOnceEnoughIsWritten_andOneFlushAtATime(@TempDir Path dir) throws IOException {
        HeldExecutor ex = new HeldExecutor();
        try (FileChannel ch = open(dir)) {
            Writeback wb = new Writeback(ch, ex, 1000);
            write(ch, 999);
            wb.wrote(999);
            assertThat(ex.held).isEmpty();
            write(ch, 1);
            wb.wrote(1);
            assertThat(ex.held).hasSize(1);

            // While that flush has not run, more writes start no second one.
            write(ch, 5000);
            wb.wrote(5000);
            assertThat(ex.held).hasSize(1);
            ex.runAll();

            wb.wrote(1000);
            assertThat(ex.held).hasSize(1);
            ex.runAll();
            wb.await();
        }
    }

    @Test
    void await_throwsTheFailureOfABackgroundFlush(@TempDir Path dir) throws IOException {
        HeldExecutor ex = new HeldExecutor();
        FileChannel ch = open(dir);
        Writeback wb = new Writeback(ch, ex, 10);
        wb.wrote(10);
        ch.close(); // the flush now fails, as one of a device that stopped answering would
        ex.runAll();
        assertThatThrownBy(wb::await).isInstanceOf(ClosedChannelException.class);
        // The failure stays: a later await, before the final flush, still reports it.
        assertThatThrownBy(wb::await).isInstanceOf(ClosedChannelException.class);
        wb.awaitQuietly();
    }

    @Test
    void aPoolThatRefuses_leavesTheFlushToTheWriter(@TempDir Path dir) throws IOException {
        try (FileChannel ch = open(dir)) {
            Writeback wb = new Writeback(ch, task -> {
                throw new RejectedExecutionException("shut down");
            }, 10);
            wb.wrote(100);
            wb.await();
        }
    }

    private static FileChannel open(Path dir) throws IOException {
        return FileChannel.open(dir.resolve("f"), StandardOpenOption.CREATE, StandardOpenOption.WRITE);
    }

    private static void write(FileChannel ch, int n) throws IOException {
        ch.write(ByteBuffer.allocate(n));
    }
}
