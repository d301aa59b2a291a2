package org.volprov.it;

import org.volprov.JobStore;
import org.volprov.embedded.InMemoryJobStore;

/** The job store categories run on. */
final class JobStores {
    private JobStores() {
    }

    static JobStore open() {
        return new InMemoryJobStore();
    }
}
