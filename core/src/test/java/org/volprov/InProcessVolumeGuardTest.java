package org.volprov;

import org.volprov.contract.VolumeGuardContract;

class InProcessVolumeGuardTest extends VolumeGuardContract {
    @Override
    protected VolumeGuard newGuard() {
        return new InProcessVolumeGuard();
    }
}
