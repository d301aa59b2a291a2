package org.volprov.s3;

import java.net.URI;
import java.time.Duration;
import org.volprov.s3.testkit.ImageSourceServerScenarios;
import org.volprov.source.ImageSource;

/** Error mapping, outages, dropped connections and resume for {@link S3ImageSource}. */
class S3ImageSourceScenariosIT extends ImageSourceServerScenarios {

    @Override
    protected ImageSource newSource(URI endpoint, String accessKey, String secretKey,
                                    Duration connectTimeout, Duration readTimeout) {
        return S3ImageSource.create(S3SourceConfig.builder()
                .endpoint(endpoint)
                .credentials(accessKey, secretKey)
                .connectTimeout(connectTimeout)
                .readTimeout(readTimeout)
                .build());
    }

    @Override
    protected String adapterName() {
        return "adapter-s3 (AWS SDK v2, Apache client)";
    }
}
