package org.volprov;

/** What a job does; a record written before kinds existed reads as {@link #PROVISION}. */
public enum JobKind {
    /** Fills a named volume from an image. */
    PROVISION,
    /**
     * Brings an image into this host's cache, and checks it as a provision would, without making a
     * volume: no volume name, no volume lock, no backend call. An image already cached ends at once
     * as a cache hit.
     */
    PREFETCH
}
