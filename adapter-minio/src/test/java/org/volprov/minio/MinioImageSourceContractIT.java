package org.volprov.minio;

import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.volprov.contract.ImageSourceContract;
import org.volprov.s3.testkit.S3TestServer;
import org.volprov.source.ImageSource;

/** Core's {@link ImageSourceContract} against a real S3 server. */
class MinioImageSourceContractIT extends ImageSourceContract {
    private static S3TestServer server;
    private static String bucket;
    private static MinioImageSource source;

    @BeforeAll
    static void start() {
        server = S3TestServer.shared();
        bucket = S3TestServer.uniqueBucket("contract");
        server.createBucket(bucket);
        source = MinioImageSource.create(MinioSourceConfig.builder()
                .endpoint(server.endpoint())
                .region(server.region())
                .credentials(server.accessKey(), server.secretKey())
                .build());
    }

    @AfterAll
    static void stop() {
        source.close();
    }

    @Override
    protected ImageSource source() {
        return source;
    }

    @Override
    protected String bucket() {
        return bucket;
    }

    @Override
    protected void put(String key, byte[] content) {
        server.put(bucket, key, content);
    }
}
