package org.volprov.internal.engine;

import org.volprov.contract.VolumeGuardContract;
import org.volprov.volume.VolumeGuard;

class InProcessVolumeGuardTest extends VolumeGuardContract {
    @Override
    protected VolumeGuard newGuard() {
        return new InProcessVolumeGuard();
    }
}
