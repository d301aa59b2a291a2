package org.volprov.contract;

import static org.assertj.core.api.Assertions.assertThat;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.volprov.volume.VolumeGuard;

/**
 * The behaviour every {@link VolumeGuard} shares, seen through one guard instance, and for a guard
 * shared between processes, how its locks are lost: a holder that stalls past its lease while
 * another process takes its lock finds its lock lost. An implementation's test extends this class.
 */
public abstract class VolumeGuardContract {
    private final List<VolumeGuard.Lock> held = new ArrayList<>();
    private ExecutorService pool;

    /** A guard with nothing locked, under names no other test uses. */
    protected abstract VolumeGuard newGuard();

    /**
     * How long a lock outlives a holder that stopped renewing it; null for a guard whose locks are
     * never lost (a guard of one process has no lease to outlive), which skips the loss tests.
     */
    protected Duration leaseTime() {
        return null;
    }

    /** Stalls the renewal of the locks of the guard {@link #newGuard()} returned last, as a frozen holder's. */
    protected void stallRenewals() {
        throw new UnsupportedOperationException("a guard with a lease time stalls its renewals");
    }

    /** A guard of another process, over the same volumes as the one {@link #newGuard()} returned last. */
    protected VolumeGuard anotherProcess() {
        throw new UnsupportedOperationException("a guard with a lease time has other processes");
    }

    /** Lets another process take {@code volumeName} once the stalled holder's lease has run out. */
    private VolumeGuard.Lock takenByAnotherProcess(String volumeName) throws InterruptedException {
        VolumeGuard other = anotherProcess();
        long deadline = System.nanoTime() + leaseTime().multipliedBy(20).toNanos();
        while (true) {
            Optional<VolumeGuard.Lock> lock = other.tryLock(volumeName);
            if (lock.isPresent()) {
                return keep(lock.get());
            }
            assertThat(System.nanoTime() - deadline).as("another process took the lock after the lease ran out")
                    .isNegative();
            TimeUnit.MILLISECONDS.sleep(Math.max(1, leaseTime().toMillis() / 20));
        }
    }

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

    // ---------------------------------------------------------------- loss

    @Test
    public void lost_whileTheLockIsRenewed_isEmptyPastTwoLeaseTimes() throws Exception {
        VolumeGuard guard = newGuard();
        VolumeGuard.Lock lock = keep(guard.tryLock("vol-a").orElseThrow());
        assertThat(lock.lost()).isEmpty();
        if (leaseTime() != null) {
            long until = System.nanoTime() + leaseTime().multipliedBy(2).toNanos();
            while (System.nanoTime() < until) {
                assertThat(lock.lost()).isEmpty();
                assertThat(anotherProcess().tryLock("vol-a")).as("renewed: no other process gets it").isEmpty();
                TimeUnit.MILLISECONDS.sleep(Math.max(1, leaseTime().toMillis() / 10));
            }
        }
        assertThat(lock.lost()).isEmpty();
    }

    @Test
    public void lost_whenTheHolderStalledPastItsLeaseAndAnotherProcessTookTheLock_saysSoAndStaysLost()
            throws Exception {
        Assumptions.assumeTrue(leaseTime() != null, "the locks of a guard of one process are never lost");
        VolumeGuard guard = newGuard();
        VolumeGuard.Lock lock = keep(guard.tryLock("vol-a").orElseThrow());
        stallRenewals();
        takenByAnotherProcess("vol-a");

        assertThat(lock.lost()).as("lost, before any renewal could tell").isPresent().get().asString().isNotBlank();
        assertThat(lock.lost()).as("and it stays lost").isPresent();
    }

    @Test
    public void close_ofALostLock_leavesTheNewHoldersLockInPlace() throws Exception {
        Assumptions.assumeTrue(leaseTime() != null, "the locks of a guard of one process are never lost");
        VolumeGuard guard = newGuard();
        VolumeGuard.Lock lock = guard.tryLock("vol-a").orElseThrow();
        stallRenewals();
        takenByAnotherProcess("vol-a");

        lock.close();
        assertThat(guard.tryLock("vol-a")).as("the other process still holds it").isEmpty();
    }
}
