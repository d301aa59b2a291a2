package org.volprov.it;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.volprov.Job;
import org.volprov.libvirt.testkit.LibvirtTestPool;
import org.volprov.testing.TestImages;

/** What a failed job must not leave behind: a volume it made, a partial download, a cache entry. */
final class Leftovers {
    private Leftovers() {
    }

    static void assertNoVolume(LibvirtTestPool pool, String volume) {
        assertThat(Volumes.exists(pool, volume)).as("volume %s left in pool %s", volume, pool.pool()).isFalse();
    }

    /** Files of an unfinished download in the cache directory. */
    static List<Path> partialDownloads(Path cacheDir) {
        try (Stream<Path> s = Files.list(cacheDir)) {
            return s.filter(p -> p.getFileName().toString().endsWith(".tmp")).toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Image entries (named by their digest) in the cache directory. */
    static List<String> cacheEntries(Path cacheDir) {
        try (Stream<Path> s = Files.list(cacheDir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> n.matches("[0-9a-f]{64}")).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Every file in the cache directory. */
    static List<String> cacheFiles(Path cacheDir) {
        try (Stream<Path> s = Files.list(cacheDir)) {
            return s.map(p -> p.getFileName().toString()).sorted().toList();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** Nothing new in the cache directory: no entry, metadata, alias or temp file; nothing counted in its budget. */
    static void assertCacheGainedNothing(Stack stack, List<String> filesBefore, long entriesBefore) {
        Path dir = stack.cache.directory();
        List<String> added = new ArrayList<>(cacheFiles(dir));
        added.removeAll(filesBefore);
        assertThat(added).as("files added to %s", dir).isEmpty();
        assertThat(stack.cache.stats().entries()).as("cache entries").isEqualTo(entriesBefore);
    }

    /**
     * No volume, no partial download, and no new cache entry but, when the job got that far, the
     * image it verified: an image whose bytes matched its checksum stays cached even when a later
     * stage refused it (a retry with a larger volume is then a hit), and it must hash to its name.
     */
    static void assertNothingLeft(Stack stack, LibvirtTestPool pool, Job job, List<String> entriesBefore) {
        assertNoVolume(pool, job.request().volumeName());
        Path dir = stack.cache.directory();
        assertThat(partialDownloads(dir)).as("partial downloads in %s", dir).isEmpty();
        List<String> added = new ArrayList<>(cacheEntries(dir));
        added.removeAll(entriesBefore);
        if (job.imageDigest() == null) {
            assertThat(added).as("cache entries added to %s by a job that verified no image", dir).isEmpty();
            return;
        }
        assertThat(added).as("cache entries added to %s", dir).isSubsetOf(job.imageDigest());
        for (String digest : added) {
            try {
                assertThat(TestImages.sha256(dir.resolve(digest))).as("content of cache entry").isEqualTo(digest);
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }
    }
}
