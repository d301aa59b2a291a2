package org.volprov.internal.qcow2;

import com.github.luben.zstd.ZstdDecompressCtx;
import com.github.luben.zstd.ZstdException;
import java.nio.ByteBuffer;
import java.util.zip.DataFormatException;
import java.util.zip.Inflater;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * Inflates one compressed cluster, as qemu does: the output must fill exactly one cluster, and
 * nothing past it is ever produced (a stream that would inflate further is cut at the cluster, as
 * qemu cuts it). Input beyond the end of the compressed data (the rest of its last sector) is
 * ignored. Used by one thread at a time; {@link #close()} frees native memory.
 */
abstract class Codec implements AutoCloseable {

    /**
     * Fills {@code out} (one cluster, from its position to its limit) from the remaining bytes of
     * {@code in}, the compressed data at {@code host}. Direct buffers save the JDK a copy.
     *
     * @throws ProvisioningException {@code UNSUPPORTED_IMAGE} when the data does not inflate to exactly one cluster
     */
    abstract void inflate(ByteBuffer in, ByteBuffer out, long host);

    @Override
    public abstract void close();

    static Codec of(Qcow2Header.Compression compression, int clusterBits) {
        return compression == Qcow2Header.Compression.ZSTD ? new Zstd(clusterBits) : new Deflate();
    }

    static ProvisioningException bad(long host, String why) {
        return Refusal.corrupt("the compressed cluster at " + Refusal.hex(host) + " does not inflate to one cluster ("
                + why + ")");
    }

    /** Raw deflate (no zlib header), as qemu writes it. */
    static final class Deflate extends Codec {
        private final Inflater inflater = new Inflater(true);

        @Override
        void inflate(ByteBuffer in, ByteBuffer out, long host) {
            inflater.reset();
            inflater.setInput(in);
            try {
                while (out.hasRemaining()) {
                    int n = inflater.inflate(out);
                    if (n == 0 && (inflater.finished() || inflater.needsInput() || inflater.needsDictionary())) {
                        break;
                    }
                }
            } catch (DataFormatException e) {
                throw bad(host, "deflate: " + e.getMessage());
            }
            if (out.hasRemaining()) {
                throw bad(host, "deflate data ends after " + out.position() + " bytes");
            }
        }

        @Override
        public void close() {
            inflater.end();
        }
    }

    /**
     * zstd through zstd-jni (the reference libzstd, which qemu links too), decoded as a stream so that
     * several frames in one cluster and the sector padding behind the last one are handled as qemu
     * handles them. The window is capped near the cluster size: qemu compresses one cluster at a
     * time, so a larger window can only come from a hostile image and would only cost memory.
     */
    static final class Zstd extends Codec {
        private final ZstdDecompressCtx ctx;
        private final int windowLogMax;

        Zstd(int clusterBits) {
            this.windowLogMax = Math.max(clusterBits + 1, 20);
            try {
                this.ctx = new ZstdDecompressCtx();
            } catch (LinkageError e) {
                throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "the zstd library cannot be loaded: " + e
                        + " (zstd-jni unpacks a native library into java.io.tmpdir, which must allow executing it)", e);
            }
            ctx.setLongMax(windowLogMax);
        }

        @Override
        void inflate(ByteBuffer src, ByteBuffer dst, long host) {
            ctx.reset();
            ctx.setLongMax(windowLogMax);
            boolean frameDone = false;
            try {
                while (dst.hasRemaining()) {
                    int inBefore = src.position();
                    int outBefore = dst.position();
                    frameDone = ctx.decompressByteBufferStream(dst, src);
                    if (src.position() == inBefore && dst.position() == outBefore) {
                        throw bad(host, "zstd data ends after " + dst.position() + " bytes");
                    }
                }
            } catch (ZstdException e) {
                throw bad(host, "zstd: " + e.getMessage());
            }
            if (!frameDone) {
                throw bad(host, "the zstd frame goes on past the cluster");
            }
        }

        @Override
        public void close() {
            ctx.close();
        }
    }
}
