package org.volprov.internal.engine;

import java.util.Optional;
import org.volprov.JobKind;
import org.volprov.ProvisionRequest;
import org.volprov.volume.VolumeGuard;

/** The volume lock a job holds for its life; a prefetch makes no volume and so holds none. */
final class VolumeLocks {
    /** What a prefetch holds: nothing to release, never lost. */
    private static final VolumeGuard.Lock NONE = () -> {
    };

    private VolumeLocks() {
    }

    /** The lock for {@code request}'s volume, or empty when another job holds it. */
    static Optional<VolumeGuard.Lock> tryLock(VolumeGuard guard, ProvisionRequest request) {
        return request.kind() == JobKind.PREFETCH ? Optional.of(NONE) : guard.tryLock(request.volumeName());
    }
}
