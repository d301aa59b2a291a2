package org.volprov.internal.engine;

import static org.assertj.core.api.Assertions.assertThat;

import java.lang.reflect.Method;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.Provisioner;
import org.volprov.cache.DiskImageCache;
import org.volprov.image.ImageConverter;
import org.volprov.image.Qcow2Converter;
import org.volprov.image.QemuImgConverter;
import org.volprov.source.LocalDirectoryImageSource;
import org.volprov.volume.FileVolumeBackend;

class EngineThreadsTest {
    @TempDir
    Path dir;

    @Test
    void theDecodersPool_hasTheParallelismOfTheEnginesQcow2Converter() throws Exception {
        assertThat(decoders(new Qcow2Converter(1))).isEqualTo(1);
        assertThat(decoders(new Qcow2Converter(3))).isEqualTo(3);
        int cores = Runtime.getRuntime().availableProcessors();
        assertThat(decoders(new Qcow2Converter())).isEqualTo(cores);
        assertThat(decoders(QemuImgConverter.builder().build())).isEqualTo(cores);
    }

    private int decoders(ImageConverter converter) throws Exception {
        try (DiskImageCache cache = DiskImageCache.builder().directory(dir.resolve("cache")).maxBytes(1L << 20).build()) {
            return decoders(converter, cache);
        }
    }

    private int decoders(ImageConverter converter, DiskImageCache cache) throws Exception {
        Provisioner.Builder b = Provisioner.builder()
                .source(new LocalDirectoryImageSource(dir.resolve("images")))
                .cache(cache)
                .backend(FileVolumeBackend.open(dir.resolve("volumes")))
                .workDirectory(dir)
                .converter(converter);
        // The settings the builder would hand the engine, without starting one.
        Method settings = Provisioner.Builder.class.getDeclaredMethod("settings");
        settings.setAccessible(true);
        EngineThreads threads = new EngineThreads((EngineSettings) settings.invoke(b));
        try {
            return threads.decoding().getMaximumPoolSize();
        } finally {
            threads.close();
        }
    }
}
