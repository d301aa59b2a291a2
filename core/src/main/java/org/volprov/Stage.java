package org.volprov;

/** Where a job is in the provisioning flow, in order. */
public enum Stage {
    QUEUED,
    RESOLVING,
    DOWNLOADING,
    VERIFYING,
    CREATING_VOLUME,
    WRITING,
    FINALIZING
}
