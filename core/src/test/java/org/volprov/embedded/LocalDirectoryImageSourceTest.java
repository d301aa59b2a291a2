package org.volprov.embedded;

import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.ErrorCode;
import org.volprov.ImageRef;
import org.volprov.ImageSource;
import org.volprov.ProvisioningException;
import org.volprov.contract.ImageSourceContract;

class LocalDirectoryImageSourceTest extends ImageSourceContract {
    @TempDir
    Path root;
    private LocalDirectoryImageSource source;

    @BeforeEach
    void setUp() throws Exception {
        Files.createDirectories(root.resolve(bucket()));
        source = new LocalDirectoryImageSource(root);
    }

    @Override
    protected ImageSource source() {
        return source;
    }

    @Override
    protected String bucket() {
        return "images";
    }

    @Override
    protected void put(String key, byte[] content) throws Exception {
        Path p = root.resolve(bucket()).resolve(key);
        Files.createDirectories(p.getParent());
        Files.write(p, content);
    }

    @Test
    void keyThatLeavesTheBucket_isRefused() {
        assertThatThrownBy(() -> source.stat(new ImageRef("images", "../other/secret")))
                .isInstanceOf(ProvisioningException.class)
                .extracting(e -> ((ProvisioningException) e).code()).isEqualTo(ErrorCode.INVALID_REQUEST);
    }
}
