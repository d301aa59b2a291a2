package org.volprov.it;

import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import org.volprov.s3.testkit.S3TestServer;

/**
 * Images on the S3 server: each suite image uploaded once per JVM with its {@code .sha256} sibling
 * (in {@code sha256sum} format), into a bucket of this run. Thread-safe.
 */
final class Uploads {
    static final String BUCKET = S3TestServer.uniqueBucket("volprov-it");
    private static final Map<String, String> UPLOADED = new ConcurrentHashMap<>();

    private Uploads() {
    }

    /** The {@code s3://} URI of {@code image}, uploading it with its sibling on first use. */
    static String uri(TestImage image) {
        return UPLOADED.computeIfAbsent(image.name(), n -> {
            String key = "images/" + image.file().getFileName();
            put(key, image, image.fileSha256() + "  " + image.file().getFileName() + "\n");
            return "s3://" + BUCKET + "/" + key;
        });
    }

    /**
     * Uploads {@code image} under {@code key} with {@code sibling} as the content of its
     * {@code .sha256} object (null: no sibling); returns the {@code s3://} URI.
     */
    static String put(String key, TestImage image, String sibling) {
        S3TestServer s3 = Services.s3();
        s3.createBucket(BUCKET);
        s3.put(BUCKET, key, image.file());
        if (sibling != null) {
            s3.put(BUCKET, key + ".sha256", sibling.getBytes(StandardCharsets.UTF_8));
        }
        return "s3://" + BUCKET + "/" + key;
    }
}
