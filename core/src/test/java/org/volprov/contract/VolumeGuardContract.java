package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;

import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.volprov.VolumeGuard;

/**
 * The behaviour every {@link VolumeGuard} shares, seen through one guard instance. An
 * implementation's test extends this class; guards shared between processes test that part
 * themselves.
 */
public abstract class VolumeGuardContract {
    private final List<VolumeGuard.Lock> held = new ArrayList<>();
    private ExecutorService pool;

    /** A guard with nothing locked, under names no other test uses. */
    protected abstract VolumeGuard newGuard();

    @AfterEach
    void releaseAll() {
        if (pool != null) {
            pool.shutdownNow();
        }
        held.forEach(VolumeGuard.Lock::close);
    }

    private VolumeGuard.Lock keep(VolumeGuard.Lock lock) {
        held.add(lock);
        return lock;
    }

    @Test
    public void tryLock_whenFree_grantsAndASecondTryIsRefused() {
        VolumeGuard guard = newGuard();
        keep(guard.tryLock("vol-a").orElseThrow());
        assertThat(guard.tryLock("vol-a")).isEmpty();
    }

    @Test
    public void tryLock_onOtherNames_isIndependent() {
        VolumeGuard guard = newGuard();
        keep(guard.tryLock("vol-a").orElseThrow());
        assertThat(guard.tryLock("vol-b")).isPresent().get().satisfies(this::keep);
    }

    @Test
    public void close_releasesTheName_andClosingAgainDoesNotReleaseTheNextHolder() {
        VolumeGuard guard = newGuard();
        VolumeGuard.Lock first = guard.tryLock("vol-a").orElseThrow();
        first.close();
        VolumeGuard.Lock second = keep(guard.tryLock("vol-a").orElseThrow());
        first.close();
        assertThat(guard.tryLock("vol-a")).isEmpty();
        second.close();
        assertThat(guard.tryLock("vol-a")).isPresent().get().satisfies(this::keep);
    }

    @Test
    public void tryLock_whenSixteenThreadsRace_grantsExactlyOne() throws Exception {
        VolumeGuard guard = newGuard();
        pool = Executors.newFixedThreadPool(16);
        CyclicBarrier start = new CyclicBarrier(16);
        List<Future<Optional<VolumeGuard.Lock>>> tries = new ArrayList<>();
        for (int i = 0; i < 16; i++) {
            tries.add(pool.submit(() -> {
                start.await(10, TimeUnit.SECONDS);
                return guard.tryLock("vol-race");
            }));
        }
        int granted = 0;
        for (Future<Optional<VolumeGuard.Lock>> f : tries) {
            Optional<VolumeGuard.Lock> lock = f.get(30, TimeUnit.SECONDS);
            if (lock.isPresent()) {
                granted++;
                keep(lock.get());
            }
        }
        assertThat(granted).isEqualTo(1);
    }
}
