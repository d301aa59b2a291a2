package org.volprov.embedded;

import org.volprov.JobStore;
import org.volprov.contract.JobStoreContract;

class InMemoryJobStoreTest extends JobStoreContract {
    private final InMemoryJobStore store = new InMemoryJobStore();

    @Override
    protected JobStore store() {
        return store;
    }
}
