/**
 * Where images go: the {@link org.volprov.volume.VolumeBackend} extension point, its value types, the
 * volume guard and the embedded default.
 *
 * <ul>
 *   <li>{@link org.volprov.volume.VolumeBackend}: create, find, open for writing and delete volumes;</li>
 *   <li>{@link org.volprov.volume.VolumeWriter}: a volume's bytes written from offset 0 onwards,
 *       durable only after {@code finish()};</li>
 *   <li>{@link org.volprov.volume.VolumeGuard}: one job per volume at a time (in process by default,
 *       shared through Redis by the Redis adapter);</li>
 *   <li>{@link org.volprov.volume.VolumeNames}: the one naming rule every backend accepts;</li>
 *   <li>{@link org.volprov.volume.FileVolumeBackend}: file-backed volumes, the embedded default;</li>
 *   <li>{@link org.volprov.volume.LocalVolumeWriter}: the writer onto a local file or block device
 *       (also behind a symlink, as LVM presents one), shared with the libvirt adapter.</li>
 * </ul>
 */
package org.volprov.volume;
