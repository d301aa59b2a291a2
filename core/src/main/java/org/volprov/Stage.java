package org.volprov;

/** Where a job is in the provisioning flow, in order; each stage is named for what the job waits on. */
public enum Stage {
    /** Waiting for a free slot on this engine, or on the fleet's queue for an engine to claim it. */
    QUEUED,
    /** Asking the source about the object (size, entity tag, published checksum) and looking in the cache. */
    RESOLVING,
    /** Fetching the object into the cache; its SHA-256 is computed and checked as the bytes arrive. */
    DOWNLOADING,
    /** Reading the image's header and tables (format, virtual size, refusals) before a volume is made. */
    INSPECTING,
    /** Creating the volume, or checking the existing one it reuses. */
    CREATING_VOLUME,
    /** Writing the image's raw content onto the volume. */
    WRITING,
    /** Flushing the volume (and reading it back, with {@code verifyWrittenVolume}) before the job ends. */
    FINALIZING;

    /**
     * The stage named {@code name}, also under the name an earlier version wrote: {@code VERIFYING},
     * which job records written before the rename hold, reads as {@link #INSPECTING}.
     *
     * @throws IllegalArgumentException for any other unknown name
     */
    public static Stage parse(String name) {
        return "VERIFYING".equals(name) ? INSPECTING : valueOf(name);
    }
}
