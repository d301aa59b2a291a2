package org.volprov.internal.engine;

import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import org.volprov.volume.VolumeGuard;

/** The default {@link VolumeGuard}: one job per volume name within this process. */
final class InProcessVolumeGuard implements VolumeGuard {
    private final Set<String> held = ConcurrentHashMap.newKeySet();

    @Override
    public Optional<Lock> tryLock(String volumeName) {
        if (!held.add(volumeName)) {
            return Optional.empty();
        }
        AtomicBoolean released = new AtomicBoolean();
        return Optional.of(() -> {
            if (released.compareAndSet(false, true)) {
                held.remove(volumeName);
            }
        });
    }
}
