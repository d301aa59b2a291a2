package org.volprov.minio;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.net.ConnectException;
import java.net.InetAddress;
import java.net.ServerSocket;
import java.net.URI;
import java.time.Duration;
import org.junit.jupiter.api.Test;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ProvisioningException;
import org.volprov.s3.testkit.ImageSourceServerScenarios;
import org.volprov.source.ImageSource;

/** Error mapping, outages, dropped connections and resume for {@link MinioImageSource}. */
class MinioImageSourceScenariosIT extends ImageSourceServerScenarios {

    @Override
    protected ImageSource newSource(URI endpoint, String accessKey, String secretKey,
                                    Duration connectTimeout, Duration readTimeout) {
        return MinioImageSource.create(MinioSourceConfig.builder()
                .endpoint(endpoint)
                .credentials(accessKey, secretKey)
                .connectTimeout(connectTimeout)
                .readTimeout(readTimeout)
                .build());
    }

    @Override
    protected String adapterName() {
        return "adapter-minio (MinIO SDK 9, OkHttp)";
    }

    /** MinIO 9 hands a refused connection over wrapped in a bare RuntimeException. */
    @Test
    void stat_whenNothingListens_failsAsUnreachableWithTheConnectionFailureAsCause() throws Exception {
        int port;
        try (ServerSocket free = new ServerSocket(0, 1, InetAddress.getLoopbackAddress())) {
            port = free.getLocalPort();
        }
        Duration shortWait = Duration.ofSeconds(2);
        try (ImageSource source = newSource(URI.create("http://127.0.0.1:" + port), "access", "secret-key",
                shortWait, shortWait)) {
            assertThatThrownBy(() -> source.stat(ImageRef.parse("s3://images/disk.qcow2")))
                    .isInstanceOfSatisfying(ProvisioningException.class, e -> {
                        assertThat(e.code()).isEqualTo(ErrorCode.SOURCE_UNAVAILABLE);
                        assertThat(e.getMessage()).startsWith("cannot reach MinIO").contains("(retryable)");
                        assertThat(e.getCause()).isInstanceOf(ConnectException.class);
                    });
        }
    }
}
