package org.volprov.libvirt;

/** How {@link LibvirtVolumeBackend} puts bytes into a volume. */
public enum WriteMode {
    /**
     * Onto the volume's target path (pool file or LV device node) on this host. Fast, and the
     * converter can write in place; needs the process to run where libvirtd runs, with write access.
     */
    LOCAL,
    /**
     * Through {@code virStorageVolUpload} on a libvirt stream: works when libvirtd is on another host
     * and needs no access to the target path, at the cost of sending every byte (zeros included).
     */
    STREAM,
    /**
     * {@link #LOCAL} when the connection URI names this host and the volume's target path exists and
     * is writable here; {@link #STREAM} otherwise. Decided per volume when a writer is opened.
     */
    AUTO
}
