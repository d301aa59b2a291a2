package org.volprov.minio;

import java.net.URI;
import java.time.Duration;
import org.volprov.ImageSource;
import org.volprov.s3.testkit.ImageSourceServerScenarios;

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
        return "adapter-minio (MinIO SDK 8.5, OkHttp)";
    }
}
