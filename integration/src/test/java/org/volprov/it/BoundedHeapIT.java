package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.volprov.testing.TestImages;

/**
 * The engine's memory does not grow with the image: a cold job of the 1 GiB image, in a JVM whose
 * heap is capped at 128 MiB, through the embedded defaults (the default converter onto a
 * file-backed volume), completes and leaves the volume holding {@code qemu-img convert}'s bytes.
 */
@Tag(Category.PERFORMANCE)
class BoundedHeapIT {
    private static final String HEAP = "-Xmx128m";

    @TempDir
    Path work;

    @Test
    void coldJobOfOneGibibyte_inA128MiBHeap_completesWithQemuImgsBytes() throws Exception {
        TestImage image = ImageSet.get(ImageSet.LARGE);
        Path root = work.resolve("source");
        String key = image.file().getFileName().toString();
        Path object = Files.createDirectories(root.resolve("images")).resolve(key);
        link(image.file(), object);
        Files.writeString(root.resolve("images").resolve(key + ".sha256"), image.fileSha256() + "  " + key + "\n",
                StandardCharsets.US_ASCII);
        Path volumes = Files.createDirectories(work.resolve("volumes"));

        String ended;
        String heap;
        // An out-of-memory error ends the child at once (status 3) rather than leaving a job to fail slowly.
        try (ChildProcess child = ChildProcess.start(List.of(HEAP, "-XX:+ExitOnOutOfMemoryError"),
                BoundedHeapProvisioning.class, Map.of(), List.of(root.toString(), "s3://images/" + key,
                        Files.createDirectories(work.resolve("cache")).toString(), volumes.toString(),
                        Files.createDirectories(work.resolve("convert")).toString(), "heap-1g",
                        Long.toString(image.virtualSize())))) {
            ended = child.awaitLine("ENDED ", Services.jobWait());
            heap = child.awaitLine("HEAP ", Duration.ofSeconds(30));
            assertThat(child.awaitExit(Duration.ofSeconds(60))).as("the child's exit status").isZero();
        }
        String[] h = heap.split(" ");
        System.out.printf("[bounded heap] %s: max heap %d MiB, peak heap used %d MiB%n", image.name(),
                Long.parseLong(h[0]) >> 20, Long.parseLong(h[1]) >> 20);

        assertThat(ended).as("the job's end").startsWith("COMPLETED null ");
        Path volume = Path.of(ended.split(" ")[2]);
        assertThat(volume.getParent()).isEqualTo(volumes);
        assertThat(Files.size(volume)).as("size of the volume").isEqualTo(image.virtualSize());
        assertThat(TestImages.sha256(volume, image.virtualSize()))
                .as("SHA-256 of the volume (qemu-img convert -O raw of %s)", image.name())
                .isEqualTo(image.rawSha256());
    }

    /** A hard link where the file system allows one (the source refuses symbolic links), else a copy. */
    private static void link(Path existing, Path link) throws IOException {
        try {
            Files.createLink(link, existing);
        } catch (IOException | UnsupportedOperationException e) {
            Files.copy(existing, link);
        }
    }
}
