package org.volprov.s3.testkit;

import java.io.BufferedInputStream;
import java.io.BufferedOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketException;
import java.net.URI;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;

/**
 * A fault-injecting TCP proxy on 127.0.0.1 between a client and a server. It can shape its
 * bandwidth, cut connections after a number of server-to-client bytes, refuse or black-hole new
 * connections during an outage, rewrite or replace HTTP responses ({@link #rewriteResponses}), and
 * counts the bytes it forwards from server to client, per connection and in total. Thread-safe.
 */
public final class FaultProxy implements AutoCloseable {

    /** What happens to a new connection. */
    public enum Mode {
        /** Forward bytes both ways. */
        FORWARD,
        /** Accept, then reset at once: what a client sees of a stopped server behind a load balancer. */
        REFUSE,
        /** Accept, then never answer: what a client sees of a hung server or a dropped route. */
        BLACK_HOLE
    }

    private final InetSocketAddress upstream;
    private final ServerSocket server;
    private final ExecutorService threads = Executors.newCachedThreadPool(r -> {
        Thread t = new Thread(r, "fault-proxy");
        t.setDaemon(true);
        return t;
    });
    private final Set<Socket> sockets = ConcurrentHashMap.newKeySet();
    private final List<AtomicLong> perConnection = new CopyOnWriteArrayList<>();
    private final AtomicLong total = new AtomicLong();
    private final AtomicInteger accepted = new AtomicInteger();
    private final AtomicInteger cutsLeft = new AtomicInteger();
    private final AtomicInteger cutsDone = new AtomicInteger();
    private final AtomicBoolean closed = new AtomicBoolean();
    private volatile long cutAfter;
    private volatile boolean cutWithReset;
    private volatile Mode mode = Mode.FORWARD;
    private volatile long outageEndsNanos = Long.MAX_VALUE;
    private volatile long bytesPerSecond;
    private volatile HttpRelay.ResponseRewriter rewriter;
    private final List<String> requestLines = new CopyOnWriteArrayList<>();
    private final Object link = new Object();
    private long linkFreeAtNanos;

    private FaultProxy(InetSocketAddress upstream) throws IOException {
        this.upstream = upstream;
        this.server = new ServerSocket(0, 50, InetAddress.getLoopbackAddress());
        threads.execute(this::acceptLoop);
    }

    /** Starts a proxy to {@code host:port}. */
    public static FaultProxy start(String host, int port) throws IOException {
        return new FaultProxy(new InetSocketAddress(host, port));
    }

    /** Starts a proxy to the host and port of an http(s) endpoint. */
    public static FaultProxy start(URI endpoint) throws IOException {
        int port = endpoint.getPort() >= 0 ? endpoint.getPort() : "https".equals(endpoint.getScheme()) ? 443 : 80;
        return start(endpoint.getHost(), port);
    }

    public int port() {
        return server.getLocalPort();
    }

    /** {@code http://127.0.0.1:<port>}. */
    public URI endpoint() {
        return URI.create("http://127.0.0.1:" + port());
    }

    /**
     * Closes (FIN, as a server that stops mid-response) the next {@code connections} connections
     * that carry server-to-client bytes after this call, each once it has forwarded {@code bytes}
     * more bytes. The client receives every forwarded byte, then end-of-stream. A pooled idle
     * connection counts as "next" when its next response starts to flow.
     */
    public void cutAfter(long bytes, int connections) {
        arm(bytes, connections, false);
    }

    /** Closes the next connection that carries server-to-client bytes after {@code bytes} of them. */
    public void cutOnceAfter(long bytes) {
        cutAfter(bytes, 1);
    }

    /**
     * Like {@link #cutAfter} but with a TCP reset: the client's kernel discards forwarded bytes its
     * application has not read yet, so the client may receive fewer than {@code bytes}.
     */
    public void resetAfter(long bytes, int connections) {
        arm(bytes, connections, true);
    }

    private void arm(long bytes, int connections, boolean reset) {
        if (bytes < 0 || connections < 0) {
            throw new IllegalArgumentException("bytes and connections must not be negative");
        }
        this.cutAfter = bytes;
        this.cutWithReset = reset;
        cutsLeft.set(connections);
    }

    /** How many connections were cut so far. */
    public int cuts() {
        return cutsDone.get();
    }

    /**
     * Starts an outage: new connections are refused or black-holed until {@link #endOutage()}. With
     * {@code BLACK_HOLE}, open connections stop forwarding too.
     */
    public void outage(Mode mode) {
        this.outageEndsNanos = Long.MAX_VALUE;
        this.mode = mode;
    }

    /** An outage that ends by itself after {@code duration}. */
    public void outage(Mode mode, java.time.Duration duration) {
        this.mode = mode;
        this.outageEndsNanos = System.nanoTime() + duration.toNanos();
    }

    /** Ends an outage; black-holed connections stay dead. */
    public void endOutage() {
        this.mode = Mode.FORWARD;
    }

    private Mode currentMode() {
        Mode m = mode;
        if (m != Mode.FORWARD && System.nanoTime() - outageEndsNanos > 0) {
            mode = Mode.FORWARD;
            return Mode.FORWARD;
        }
        return m;
    }

    /**
     * Shapes server-to-client traffic of all connections together to {@code bytesPerSecond}, as one
     * link of that bandwidth would; 0 removes the limit.
     */
    public void bandwidth(long bytesPerSecond) {
        if (bytesPerSecond < 0) {
            throw new IllegalArgumentException("bytesPerSecond must not be negative");
        }
        this.bytesPerSecond = bytesPerSecond;
    }

    /** Waits until the shaped link can carry {@code n} more bytes. */
    private void pace(int n) throws IOException {
        long rate = bytesPerSecond;
        if (rate <= 0) {
            return;
        }
        long wait;
        synchronized (link) {
            long now = System.nanoTime();
            if (linkFreeAtNanos - now < 0) {
                linkFreeAtNanos = now;
            }
            wait = linkFreeAtNanos - now;
            linkFreeAtNanos += n * 1_000_000_000L / rate;
        }
        if (wait > 0) {
            try {
                Thread.sleep(wait / 1_000_000, (int) (wait % 1_000_000));
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new java.io.InterruptedIOException("interrupted while shaping");
            }
        }
    }

    /**
     * Relays connections accepted from now on as HTTP/1.1, passing each response through
     * {@code rewriter} (null: back to plain TCP forwarding for new connections). Such connections
     * are neither cut nor shaped; their request lines are recorded ({@link #requestLines()}).
     * Set it before the client's first request, so that no pooled connection bypasses it.
     */
    public void rewriteResponses(HttpRelay.ResponseRewriter rewriter) {
        this.rewriter = rewriter;
    }

    /** The start lines ({@code GET /bucket/key HTTP/1.1}) of the requests relayed as HTTP, in order. */
    public List<String> requestLines() {
        return List.copyOf(requestLines);
    }

    /** Server-to-client bytes forwarded over all connections. */
    public long bytesToClient() {
        return total.get();
    }

    /** Server-to-client bytes forwarded, one entry per accepted connection in order. */
    public List<Long> bytesToClientPerConnection() {
        List<Long> out = new ArrayList<>();
        for (AtomicLong a : perConnection) {
            out.add(a.get());
        }
        return out;
    }

    /** Connections accepted so far, whatever happened to them. */
    public int connections() {
        return accepted.get();
    }

    private void acceptLoop() {
        while (!closed.get()) {
            Socket client;
            try {
                client = server.accept();
            } catch (IOException e) {
                return; // closed
            }
            accepted.incrementAndGet();
            sockets.add(client);
            Mode m = currentMode();
            if (m == Mode.REFUSE) {
                reset(client);
                continue;
            }
            if (m == Mode.BLACK_HOLE) {
                continue; // held open, never read nor answered, until close()
            }
            AtomicLong counter = new AtomicLong();
            perConnection.add(counter);
            HttpRelay.ResponseRewriter rw = rewriter;
            if (rw != null) {
                threads.execute(() -> relayHttp(client, counter, rw));
            } else {
                threads.execute(() -> connect(client, counter));
            }
        }
    }

    /** A connection to the server for {@code client}; null (both reset) when the server cannot be reached. */
    private Socket connectUpstream(Socket client) {
        Socket up = new Socket();
        sockets.add(up);
        try {
            up.connect(upstream, 5_000);
            up.setTcpNoDelay(true);
            client.setTcpNoDelay(true);
            return up;
        } catch (IOException e) {
            reset(client);
            reset(up);
            return null;
        }
    }

    private void connect(Socket client, AtomicLong counter) {
        Socket up = connectUpstream(client);
        if (up == null) {
            return;
        }
        threads.execute(() -> pump(client, up, null, client, up));
        pump(up, client, counter, client, up);
    }

    private void relayHttp(Socket client, AtomicLong counter, HttpRelay.ResponseRewriter rw) {
        Socket up = connectUpstream(client);
        if (up == null) {
            return;
        }
        BlockingQueue<HttpRelay.HttpHead> requests = new LinkedBlockingQueue<>();
        threads.execute(() -> {
            try {
                HttpRelay.relayRequests(new BufferedInputStream(client.getInputStream()),
                        new BufferedOutputStream(up.getOutputStream()), requests, requestLines);
                up.shutdownOutput();
            } catch (IOException e) {
                reset(client);
                reset(up);
            }
        });
        try {
            HttpRelay.relayResponses(new BufferedInputStream(up.getInputStream()),
                    new BufferedOutputStream(client.getOutputStream()), requests, rw, n -> {
                        counter.addAndGet(n);
                        total.addAndGet(n);
                    });
            client.shutdownOutput();
        } catch (IOException | RuntimeException e) {
            reset(client);
            reset(up);
        }
    }

    private void pump(Socket from, Socket to, AtomicLong counter, Socket client, Socket up) {
        byte[] buf = new byte[64 * 1024];
        long cutAt = -1;
        try {
            InputStream in = from.getInputStream();
            OutputStream out = to.getOutputStream();
            while (true) {
                int n = in.read(buf);
                if (n < 0) {
                    to.shutdownOutput();
                    return;
                }
                if (currentMode() == Mode.BLACK_HOLE) {
                    // The peer sees silence, as with a dead route; the connection stays open.
                    awaitClose();
                    return;
                }
                if (counter != null) {
                    pace(n);
                    long sent = counter.get();
                    if (cutAt < 0 && claimCut()) {
                        cutAt = sent + cutAfter;
                    }
                    if (cutAt >= 0 && sent + n >= cutAt) {
                        int part = (int) (cutAt - sent);
                        out.write(buf, 0, part);
                        out.flush();
                        counter.addAndGet(part);
                        total.addAndGet(part);
                        cutsDone.incrementAndGet();
                        if (cutWithReset) {
                            reset(client);
                        } else {
                            // FIN after the last forwarded byte; the other pump closes the socket
                            // once the client hangs up.
                            client.shutdownOutput();
                        }
                        reset(up);
                        return;
                    }
                }
                out.write(buf, 0, n);
                if (counter != null) {
                    counter.addAndGet(n);
                    total.addAndGet(n);
                }
            }
        } catch (IOException e) {
            reset(client);
            reset(up);
        }
    }

    private boolean claimCut() {
        while (true) {
            int left = cutsLeft.get();
            if (left <= 0) {
                return false;
            }
            if (cutsLeft.compareAndSet(left, left - 1)) {
                return true;
            }
        }
    }

    private void awaitClose() {
        synchronized (closed) {
            while (!closed.get()) {
                try {
                    closed.wait();
                } catch (InterruptedException e) {
                    Thread.currentThread().interrupt();
                    return;
                }
            }
        }
    }

    private static void reset(Socket s) {
        try {
            s.setSoLinger(true, 0); // RST rather than FIN: a cut, not an orderly end
        } catch (SocketException ignored) {
            // already closed
        }
        try {
            s.close();
        } catch (IOException ignored) {
            // already closed
        }
    }

    /** Stops accepting and resets every connection; idempotent. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        synchronized (closed) {
            closed.notifyAll();
        }
        try {
            server.close();
        } catch (IOException ignored) {
            // closing anyway
        }
        for (Socket s : sockets) {
            reset(s);
        }
        threads.shutdownNow();
    }

    @Override
    public String toString() {
        return "FaultProxy[127.0.0.1:" + port() + " -> " + upstream + "]";
    }
}
