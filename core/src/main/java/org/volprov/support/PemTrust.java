package org.volprov.support;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.GeneralSecurityException;
import java.security.KeyStore;
import java.security.cert.Certificate;
import java.security.cert.CertificateFactory;
import java.util.Collection;
import javax.net.ssl.TrustManager;
import javax.net.ssl.TrustManagerFactory;
import org.volprov.ProvisioningException;

/** Trust managers from a PEM file of CA certificates, for the object-store adapters' TLS settings. */
public final class PemTrust {
    private PemTrust() {
    }

    public static TrustManager[] trustManagers(Path pemFile) {
        try (InputStream in = Files.newInputStream(pemFile)) {
            Collection<? extends Certificate> certs = CertificateFactory.getInstance("X.509").generateCertificates(in);
            if (certs.isEmpty()) {
                throw ProvisioningException.invalid("caFile", "holds no PEM certificate: " + pemFile);
            }
            KeyStore store = KeyStore.getInstance(KeyStore.getDefaultType());
            store.load(null, null);
            int i = 0;
            for (Certificate c : certs) {
                store.setCertificateEntry("ca-" + i++, c);
            }
            TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
            tmf.init(store);
            return tmf.getTrustManagers();
        } catch (IOException | GeneralSecurityException e) {
            throw new ProvisioningException(org.volprov.ErrorCode.INVALID_REQUEST,
                    "caFile: cannot read PEM certificates from " + pemFile + ": " + e.getMessage(), e);
        }
    }
}
