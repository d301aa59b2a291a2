package org.volprov.it;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.volprov.testing.TestImages;

/** A small tmpfs mounted for one test, to run a real file system out of space. Needs root. */
final class TmpfsMount implements AutoCloseable {
    final Path path;

    private TmpfsMount(Path path) {
        this.path = path;
    }

    /** Mounts a tmpfs of {@code bytes} at a new directory under {@code parent}; fails with the reason when it cannot. */
    static TmpfsMount mount(Path parent, long bytes) throws IOException {
        Path dir = Files.createDirectories(parent.resolve("tmpfs-" + System.nanoTime()));
        TestImages.run(List.of("mount", "-t", "tmpfs", "-o", "size=" + bytes + ",mode=0755", "volprov-it", dir.toString()));
        return new TmpfsMount(dir);
    }

    /** Whether this process may mount file systems (root, and not in a container that forbids it). */
    static String whyNot(Path parent) {
        try {
            mount(parent, 1 << 20).close();
            return null;
        } catch (IOException e) {
            return e.getMessage();
        }
    }

    @Override
    public void close() throws IOException {
        TestImages.run(List.of("umount", "-l", path.toString()));
        Files.deleteIfExists(path);
    }
}
