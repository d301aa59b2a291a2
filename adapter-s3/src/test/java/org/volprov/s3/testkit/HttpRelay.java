package org.volprov.s3.testkit;

import java.io.ByteArrayOutputStream;
import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.LongConsumer;

/**
 * HTTP/1.1 relaying for {@link FaultProxy}: reads each request and response head on a connection,
 * lets a {@link ResponseRewriter} change or replace the response, and forwards bodies by their own
 * framing ({@code Content-Length}, chunked, or until the connection closes). What a real server
 * sends is passed through untouched unless a rewriter says otherwise, so a test sees the server's
 * real replies with one fault injected: a header a proxy stripped, an error a server would give.
 */
public final class HttpRelay {
    private static final int MAX_HEAD = 64 * 1024;
    private static final byte[] CRLF = {'\r', '\n'};

    private HttpRelay() {
    }

    /** A request or response head: its start line and its header lines ({@code Name: value}), in order. */
    public record HttpHead(String startLine, List<String> headers) {
        public HttpHead {
            headers = List.copyOf(headers);
        }

        /** A request's method: {@code GET}, {@code HEAD}... */
        public String method() {
            return startLine.split(" ", 2)[0];
        }

        /** A request's target: the path and query. */
        public String target() {
            String[] parts = startLine.split(" ", 3);
            return parts.length > 1 ? parts[1] : "";
        }

        /** A response's status code. */
        public int status() {
            String[] parts = startLine.split(" ", 3);
            return parts.length > 1 ? Integer.parseInt(parts[1].strip()) : 0;
        }

        /** The first value of header {@code name}, case-insensitively. */
        public Optional<String> header(String name) {
            for (String h : headers) {
                int colon = h.indexOf(':');
                if (colon > 0 && h.substring(0, colon).strip().equalsIgnoreCase(name)) {
                    return Optional.of(h.substring(colon + 1).strip());
                }
            }
            return Optional.empty();
        }

        /** This head without header {@code name}. */
        public HttpHead without(String name) {
            List<String> kept = new ArrayList<>();
            for (String h : headers) {
                int colon = h.indexOf(':');
                if (colon <= 0 || !h.substring(0, colon).strip().equalsIgnoreCase(name)) {
                    kept.add(h);
                }
            }
            return new HttpHead(startLine, kept);
        }

        /** This head with header {@code name} set to {@code value}, replacing any it had. */
        public HttpHead with(String name, String value) {
            List<String> h = new ArrayList<>(without(name).headers());
            h.add(name + ": " + value);
            return new HttpHead(startLine, h);
        }

        /** A response head with another status line. */
        public HttpHead withStatus(int status, String reason) {
            return new HttpHead("HTTP/1.1 " + status + " " + reason, headers);
        }

        byte[] bytes() {
            StringBuilder b = new StringBuilder(startLine).append("\r\n");
            for (String h : headers) {
                b.append(h).append("\r\n");
            }
            return b.append("\r\n").toString().getBytes(StandardCharsets.ISO_8859_1);
        }
    }

    /**
     * What the proxy sends instead of a response.
     *
     * @param head the head to send
     * @param body the body to send instead of the server's (which is read and dropped), or null to
     *     forward the server's; never sent in answer to a HEAD
     */
    public record Reply(HttpHead head, byte[] body) {
    }

    /** Decides what the client receives for each response. Called on the proxy's threads. */
    @FunctionalInterface
    public interface ResponseRewriter {
        /** The reply to send for {@code response} to {@code request}; null forwards it unchanged. */
        Reply rewrite(HttpHead request, HttpHead response);
    }

    /**
     * An S3 error reply in place of {@code response}: the status, an XML body with {@code code} and
     * {@code message}, and the response's other headers but those that describe an object.
     */
    public static Reply s3Error(HttpHead response, int status, String reason, String code, String message) {
        byte[] body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>" + code + "</Code><Message>" + message
                + "</Message><RequestId>fault-proxy</RequestId></Error>").getBytes(StandardCharsets.UTF_8);
        return new Reply(errorHead(response, status, reason, "application/xml", body.length), body);
    }

    /**
     * An HTML error page in place of {@code response}, as a web proxy or load balancer in front of
     * the server sends it (no S3 error code).
     */
    public static Reply htmlError(HttpHead response, int status, String reason) {
        byte[] body = ("<html><head><title>" + status + " " + reason + "</title></head><body><h1>" + status + " "
                + reason + "</h1></body></html>\n").getBytes(StandardCharsets.UTF_8);
        return new Reply(errorHead(response, status, reason, "text/html", body.length), body);
    }

    /** {@code response}'s head for an error: the status, and none of the headers that describe an object. */
    private static HttpHead errorHead(HttpHead response, int status, String reason, String type, int length) {
        return response.withStatus(status, reason).without("ETag").without("Content-Range").without("Last-Modified")
                .without("Accept-Ranges").without("Transfer-Encoding").with("Content-Type", type)
                .with("Content-Length", Integer.toString(length));
    }

    /** Forwards requests from client to server, recording each head in {@code requests} in order. */
    static void relayRequests(InputStream in, OutputStream out, BlockingQueue<HttpHead> requests,
            List<String> seen) throws IOException {
        while (true) {
            HttpHead head = readHead(in);
            if (head == null) {
                return;
            }
            seen.add(head.startLine());
            requests.add(head);
            out.write(head.bytes());
            copyBody(head, in, out, false);
            out.flush();
        }
    }

    /**
     * Forwards responses from server to client through {@code rewriter}; {@code counted} is told every
     * byte sent to the client. Returns when either side closes, or after a reply whose body has no
     * framing of its own (the client then reads it to the end of the connection).
     */
    static void relayResponses(InputStream in, OutputStream out, BlockingQueue<HttpHead> requests,
            ResponseRewriter rewriter, LongConsumer counted) throws IOException {
        while (true) {
            HttpHead response = readHead(in);
            if (response == null) {
                return;
            }
            if (response.status() / 100 == 1) {
                write(out, response.bytes(), counted); // 100 Continue: the request still waits for its answer
                continue;
            }
            HttpHead request;
            try {
                request = requests.poll(30, TimeUnit.SECONDS);
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IOException("interrupted", e);
            }
            if (request == null) {
                throw new IOException("a response without a request");
            }
            boolean headRequest = request.method().equals("HEAD");
            Reply reply = rewriter.rewrite(request, response);
            HttpHead sent = reply == null ? response : reply.head();
            boolean replaced = reply != null && reply.body() != null;
            boolean bodyFollows = !headRequest && hasBody(response);
            boolean framed = sent.header("Content-Length").isPresent() || isChunked(sent);
            if (!headRequest && (replaced || hasBody(response)) && !framed) {
                sent = sent.with("Connection", "close");
            }
            write(out, sent.bytes(), counted);
            if (replaced) {
                copyBody(response, in, OutputStream.nullOutputStream(), headRequest);
                if (!headRequest) {
                    write(out, reply.body(), counted);
                }
            } else if (bodyFollows) {
                copyBody(response, in, new CountingOutput(out, counted), false);
            }
            out.flush();
            if (!headRequest && (replaced || bodyFollows) && !framed) {
                return; // the client reads the body to the end of the connection
            }
        }
    }

    private static boolean hasBody(HttpHead response) {
        int s = response.status();
        return s != 204 && s != 304 && s / 100 != 1;
    }

    private static boolean isChunked(HttpHead head) {
        return head.header("Transfer-Encoding").map(v -> v.toLowerCase(Locale.ROOT).contains("chunked")).orElse(false);
    }

    /** Copies the body {@code head} announces; none when {@code noBody} (the answer to a HEAD). */
    private static void copyBody(HttpHead head, InputStream in, OutputStream out, boolean noBody) throws IOException {
        if (noBody) {
            return;
        }
        if (isChunked(head)) {
            copyChunked(in, out);
            return;
        }
        Optional<String> length = head.header("Content-Length");
        if (length.isPresent()) {
            copyExactly(in, out, Long.parseLong(length.get()));
        } else if (!head.startLine().startsWith("HTTP/")) {
            // A request without a length has no body.
        } else {
            in.transferTo(out); // a response delimited by the end of the connection
        }
    }

    private static void copyChunked(InputStream in, OutputStream out) throws IOException {
        while (true) {
            String sizeLine = readLine(in);
            out.write(sizeLine.getBytes(StandardCharsets.ISO_8859_1));
            out.write(CRLF);
            int semi = sizeLine.indexOf(';');
            long size = Long.parseLong((semi < 0 ? sizeLine : sizeLine.substring(0, semi)).strip(), 16);
            if (size == 0) {
                String trailer;
                do {
                    trailer = readLine(in);
                    out.write(trailer.getBytes(StandardCharsets.ISO_8859_1));
                    out.write(CRLF);
                } while (!trailer.isEmpty());
                return;
            }
            copyExactly(in, out, size);
            String end = readLine(in);
            if (!end.isEmpty()) {
                throw new IOException("malformed chunk");
            }
            out.write(CRLF);
        }
    }

    private static void copyExactly(InputStream in, OutputStream out, long length) throws IOException {
        byte[] buf = new byte[64 * 1024];
        long left = length;
        while (left > 0) {
            int n = in.read(buf, 0, (int) Math.min(buf.length, left));
            if (n < 0) {
                throw new EOFException("the body ended after " + (length - left) + " of " + length + " bytes");
            }
            out.write(buf, 0, n);
            left -= n;
        }
    }

    /** The next head, or null when the connection ends before one starts. */
    private static HttpHead readHead(InputStream in) throws IOException {
        String start = readLineOrNull(in);
        if (start == null) {
            return null;
        }
        List<String> headers = new ArrayList<>();
        int total = start.length();
        while (true) {
            String line = readLine(in);
            if (line.isEmpty()) {
                return new HttpHead(start, headers);
            }
            total += line.length();
            if (total > MAX_HEAD) {
                throw new IOException("head larger than " + MAX_HEAD + " bytes");
            }
            headers.add(line);
        }
    }

    private static String readLine(InputStream in) throws IOException {
        String line = readLineOrNull(in);
        if (line == null) {
            throw new EOFException("the connection ended within a head");
        }
        return line;
    }

    private static String readLineOrNull(InputStream in) throws IOException {
        ByteArrayOutputStream b = new ByteArrayOutputStream();
        while (true) {
            int c = in.read();
            if (c < 0) {
                return b.size() == 0 ? null : b.toString(StandardCharsets.ISO_8859_1);
            }
            if (c == '\n') {
                String s = b.toString(StandardCharsets.ISO_8859_1);
                return s.endsWith("\r") ? s.substring(0, s.length() - 1) : s;
            }
            if (b.size() > MAX_HEAD) {
                throw new IOException("line longer than " + MAX_HEAD + " bytes");
            }
            b.write(c);
        }
    }

    private static void write(OutputStream out, byte[] bytes, LongConsumer counted) throws IOException {
        out.write(bytes);
        counted.accept(bytes.length);
    }

    private static final class CountingOutput extends OutputStream {
        private final OutputStream out;
        private final LongConsumer counted;

        CountingOutput(OutputStream out, LongConsumer counted) {
            this.out = out;
            this.counted = counted;
        }

        @Override
        public void write(int b) throws IOException {
            out.write(b);
            counted.accept(1);
        }

        @Override
        public void write(byte[] b, int off, int len) throws IOException {
            out.write(b, off, len);
            counted.accept(len);
        }

        @Override
        public void flush() throws IOException {
            out.flush();
        }
    }
}
