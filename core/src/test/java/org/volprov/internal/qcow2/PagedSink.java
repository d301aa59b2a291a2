package org.volprov.internal.qcow2;

import java.nio.ByteBuffer;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HashMap;
import java.util.HexFormat;
import java.util.Map;

/**
 * A {@link GuestSink} for tests that keeps the disk in memory, in pages that exist only where data
 * was written, and checks the sink contract: nothing at or past {@code capacity}, and for a
 * {@code GUEST} sink, writes that tile the disk in order.
 */
final class PagedSink implements GuestSink {
    private static final int PAGE = 1 << 20;

    private final Order order;
    private final long capacity;
    private final Map<Long, byte[]> pages = new HashMap<>();
    private long next;
    private long dataBytes;
    private long zeroBytes;

    PagedSink(Order order, long capacity) {
        this.order = order;
        this.capacity = capacity;
    }

    @Override
    public Order order() {
        return order;
    }

    @Override
    public void data(long guestOffset, ByteBuffer bytes) {
        int n = bytes.remaining();
        check(guestOffset, n);
        ByteBuffer b = bytes.duplicate();
        for (long at = guestOffset; b.hasRemaining(); ) {
            byte[] page = pages.computeIfAbsent(at / PAGE, k -> new byte[PAGE]);
            int off = (int) (at % PAGE);
            int len = Math.min(PAGE - off, b.remaining());
            b.get(page, off, len);
            at += len;
        }
        bytes.position(bytes.limit());
        dataBytes += n;
    }

    @Override
    public void zero(long guestOffset, long length) {
        check(guestOffset, length);
        for (long at = guestOffset, end = guestOffset + length; at < end; ) {
            int off = (int) (at % PAGE);
            int len = (int) Math.min(PAGE - off, end - at);
            byte[] page = pages.get(at / PAGE);
            if (page != null) {
                java.util.Arrays.fill(page, off, off + len, (byte) 0);
            }
            at += len;
        }
        zeroBytes += length;
    }

    private void check(long offset, long length) {
        if (offset < 0 || length <= 0 || offset + length > capacity) {
            throw new IllegalStateException("write of " + length + " bytes at " + offset + " outside the capacity of "
                    + capacity);
        }
        if (order == Order.GUEST) {
            if (offset != next) {
                throw new IllegalStateException("a guest-order write at " + offset + " where " + next + " was next");
            }
            next = offset + length;
        }
    }

    /** For a {@code GUEST} sink: whether the writes covered {@code [0, size)}. */
    long next() {
        return next;
    }

    long dataBytes() {
        return dataBytes;
    }

    long zeroBytes() {
        return zeroBytes;
    }

    /** Whether the first {@code size} bytes of both disks are equal. */
    boolean sameContent(PagedSink other, long size) {
        byte[] zeros = new byte[PAGE];
        for (long at = 0; at < size; at += PAGE) {
            int n = (int) Math.min(PAGE, size - at);
            byte[] a = pages.getOrDefault(at / PAGE, zeros);
            byte[] b = other.pages.getOrDefault(at / PAGE, zeros);
            if (a != b && !java.util.Arrays.equals(a, 0, n, b, 0, n)) {
                return false;
            }
        }
        return true;
    }

    /** SHA-256 of the first {@code size} bytes of the disk, lower-case hex. */
    String sha256(long size) {
        MessageDigest md;
        try {
            md = MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
        byte[] zeros = new byte[PAGE];
        for (long at = 0; at < size; at += PAGE) {
            byte[] page = pages.getOrDefault(at / PAGE, zeros);
            md.update(page, 0, (int) Math.min(PAGE, size - at));
        }
        return HexFormat.of().formatHex(md.digest());
    }
}
