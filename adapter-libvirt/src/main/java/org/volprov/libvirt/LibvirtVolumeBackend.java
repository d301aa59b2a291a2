package org.volprov.libvirt;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.channels.ReadableByteChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import org.libvirt.Connect;
import org.libvirt.Error.ErrorNumber;
import org.libvirt.LibvirtException;
import org.libvirt.StoragePool;
import org.libvirt.StoragePoolInfo;
import org.libvirt.StorageVol;
import org.libvirt.jna.Libvirt;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.support.IoErrors;
import org.volprov.support.Redaction;
import org.volprov.volume.LocalVolumeWriter;
import org.volprov.volume.VolumeBackend;
import org.volprov.volume.VolumeInfo;
import org.volprov.volume.VolumeNames;
import org.volprov.volume.VolumeWriter;

/**
 * A {@link VolumeBackend} on one libvirt storage pool: a {@code logical} (LVM) pool in production,
 * a {@code disk} pool (partitions of one device), or a {@code dir} or {@code fs} pool elsewhere;
 * the code path is the same. Volumes of {@code logical}, {@code disk}, {@code zfs}, {@code iscsi},
 * {@code scsi} and {@code mpath} pools are block devices: thick, never assumed to read as zero,
 * and written {@code LOCAL} only onto a block device (their paths may be symlinks to the node, as
 * an LV's {@code /dev/<vg>/<lv>} always is).
 *
 * <p>A {@code disk} pool names each new volume after the partition it makes ({@code sdb1},
 * {@code loop0p2}) and refuses any other name; the backend checks a name against the pool before
 * it creates anything, and {@link #nextVolumeName()} says which name the next volume must have.
 *
 * <p>Thread-safe. One libvirt connection serves every caller. libvirt's C API is thread-safe per
 * connection and libvirt-java keeps errors per thread, so calls are not serialized; a read-write
 * lock only keeps a reconnect from closing the connection under a call in flight. When a call fails
 * and the connection turns out dead (libvirtd restarted), the backend reopens it and retries that
 * call once; an open upload stream is not carried over and fails.
 *
 * <p>Errors: a missing or inactive pool and connection failures are {@code BACKEND_FAILURE};
 * creating an existing name is {@code VOLUME_CONFLICT}; a pool without room is
 * {@code INSUFFICIENT_SPACE}. libvirt's message is kept in the message and the exception as cause.
 */
public final class LibvirtVolumeBackend implements VolumeBackend {
    private static final Logger LOG = LoggerFactory.getLogger(LibvirtVolumeBackend.class);
    // Pools whose volumes are files: sparse allocation and a raw format are possible there.
    private static final Set<String> FILE_POOLS = Set.of("dir", "fs", "netfs");
    // Pools whose volumes are block devices on the host (rbd, gluster and iscsi-direct have no local node).
    private static final Set<String> BLOCK_POOLS = Set.of("logical", "disk", "zfs", "iscsi", "scsi", "mpath");
    private static final String DISK = "disk";

    private final LibvirtConfig config;
    private final String poolType;
    private final ReentrantReadWriteLock connectionLock = new ReentrantReadWriteLock();
    private final AtomicBoolean closed = new AtomicBoolean();
    private Connect connection; // guarded by connectionLock

    private LibvirtVolumeBackend(LibvirtConfig config, Connect connection, String poolType) {
        this.config = config;
        this.connection = connection;
        this.poolType = poolType;
    }

    /**
     * Connects to libvirt and checks the pool, defining and starting a {@code dir} pool when the
     * config says so.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} when libvirtd cannot be reached or the
     *     pool is missing or inactive
     */
    public static LibvirtVolumeBackend open(LibvirtConfig config) {
        Objects.requireNonNull(config, "config");
        Connect c = connect(config.uri());
        try {
            PoolXml pool = preparePool(c, config);
            if (DISK.equals(pool.type()) && !DiskPartitions.canDelete(pool)) {
                LOG.warn("storage pool {} is a disk pool on {}, whose partitions libvirt cannot delete (it runs parted with"
                        + " 'rm p<N>'): a failed job's volume stays behind; define the pool's source device through a"
                        + " symlink whose name ends in 'p' (see the adapter's README)", config.poolName(),
                        pool.sourceDevices());
            }
            LOG.debug("opened libvirt pool {} (type {}) on {}", config.poolName(), pool.type(), config);
            return new LibvirtVolumeBackend(config, c, pool.type());
        } catch (RuntimeException e) {
            closeQuietly(c);
            throw e;
        }
    }

    public LibvirtConfig config() {
        return config;
    }

    /** The pool's type as libvirt names it: {@code dir}, {@code fs}, {@code logical}, {@code disk}, ... */
    public String poolType() {
        return poolType;
    }

    /**
     * The name the next {@link #create} must use, for a pool that names its volumes itself (a
     * {@code disk} pool: after the partition it makes, e.g. {@code loop0p1}); empty for a pool that
     * takes any valid name, and for a disk pool whose next name cannot be told in advance (an empty
     * pool on another host whose device is given by a link such as {@code /dev/disk/by-id/...};
     * libvirt then refuses a wrong name after the fact, see {@link #create}). Another client
     * creating a volume meanwhile changes it.
     */
    public Optional<String> nextVolumeName() {
        if (!isDiskPool()) {
            return Optional.empty();
        }
        return call("reading the next volume name of pool " + config.poolName(), c -> {
            StoragePool pool = activePool(c);
            try {
                refreshQuietly(pool);
                return nextName(describe(pool), List.of(pool.listVolumes()));
            } finally {
                free(pool);
            }
        });
    }

    /** A request rounded up to whole sectors in a {@code disk} pool; the request itself elsewhere. */
    @Override
    public long capacityFor(long requestedBytes) {
        return isDiskPool() ? DiskPartitions.capacityFor(requestedBytes) : requestedBytes;
    }

    @Override
    public Optional<VolumeInfo> find(String name) {
        VolumeNames.validate(name);
        return call("finding volume " + name, c -> {
            StoragePool pool = activePool(c);
            try {
                refreshQuietly(pool);
                StorageVol vol = lookup(pool, name);
                if (vol == null) {
                    return Optional.empty();
                }
                try {
                    return Optional.of(new VolumeInfo(name, vol.getInfo().capacity, vol.getPath(), false));
                } finally {
                    free(vol);
                }
            } finally {
                free(pool);
            }
        });
    }

    /**
     * Creates a volume of at least {@code capacityBytes}. In a {@code disk} pool the name must be the
     * one {@link #nextVolumeName()} gives ({@code INVALID_REQUEST} otherwise, with nothing made);
     * where that cannot be told in advance and libvirt refuses the name after making the partition,
     * the partition is deleted again and the error says so.
     */
    @Override
    public VolumeInfo create(String name, long capacityBytes) {
        return create(name, capacityBytes, true);
    }

    /** {@link #create}; without {@code checkPartitionName} only libvirt checks a disk pool's name (tests the cleanup). */
    VolumeInfo create(String name, long capacityBytes, boolean checkPartitionName) {
        VolumeNames.validate(name);
        if (capacityBytes <= 0) {
            throw ProvisioningException.invalid("capacityBytes", "must be greater than 0");
        }
        boolean filePool = isFilePool();
        String xml = VolumeXml.volume(name, capacityBytes, filePool ? 0 : capacityBytes, filePool);
        return call("creating volume " + name, c -> {
            StoragePool pool = activePool(c);
            try {
                refreshQuietly(pool);
                StorageVol existing = lookup(pool, name);
                if (existing != null) {
                    free(existing);
                    throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT,
                            "volume " + name + " exists already in pool " + config.poolName());
                }
                PoolXml disk = isDiskPool() ? describe(pool) : null;
                List<String> before = disk == null ? List.of() : List.of(pool.listVolumes());
                if (disk != null) {
                    if (DiskPartitions.createEndangersPartitions(disk, before)) {
                        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "storage pool " + config.poolName()
                                + " is a disk pool with target path " + disk.targetPath().orElse("?") + ": libvirt"
                                + " would take an existing partition for the new volume " + name + " and delete it;"
                                + " define the pool with <target><path>/dev</path></target>");
                    }
                    if (checkPartitionName) {
                        requirePartitionName(disk, before, name);
                    }
                    requirePartitionRoom(disk, name, capacityBytes);
                } else {
                    requireRoom(pool, name, capacityBytes);
                }
                StorageVol vol;
                try {
                    vol = pool.storageVolCreateXML(xml, 0);
                } catch (LibvirtException e) {
                    String m = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
                    if (m.contains("already in use") || m.contains("already exists")) {
                        throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name
                                + " exists already in pool " + config.poolName() + ": " + e.getMessage(), e);
                    }
                    Optional<String> made = disk == null ? Optional.empty() : DiskPartitions.expectedName(e.getMessage());
                    if (made.isPresent()) {
                        throw refusedPartitionName(pool, name, made.get(), before, e);
                    }
                    throw e;
                }
                try {
                    long capacity = vol.getInfo().capacity;
                    if (capacity < capacityBytes) {
                        deleteQuietly(vol, name);
                        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "storage pool " + config.poolName()
                                + " made volume " + name + " with " + capacity + " bytes for a request of " + capacityBytes
                                + " bytes; it was deleted again");
                    }
                    // Only a fresh sparse file is known to read as zeros; a thick LV or a partition holds a former tenant's data.
                    return new VolumeInfo(name, capacity, vol.getPath(), filePool);
                } finally {
                    free(vol);
                }
            } finally {
                free(pool);
            }
        });
    }

    @Override
    public VolumeInfo resize(String name, long capacityBytes) {
        VolumeNames.validate(name);
        if (capacityBytes <= 0) {
            throw ProvisioningException.invalid("capacityBytes", "must be greater than 0");
        }
        return call("resizing volume " + name, c -> {
            StoragePool pool = activePool(c);
            try {
                refreshQuietly(pool);
                StorageVol vol = existing(pool, name);
                try {
                    long current = vol.getInfo().capacity;
                    if (capacityBytes < current) {
                        throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name + " is " + current
                                + " bytes and cannot shrink to " + capacityBytes);
                    }
                    if (capacityBytes > current) {
                        requireRoom(pool, name, capacityBytes - current);
                        vol.resize(capacityBytes, 0);
                    }
                    return new VolumeInfo(name, vol.getInfo().capacity, vol.getPath(), false);
                } finally {
                    free(vol);
                }
            } finally {
                free(pool);
            }
        });
    }

    /**
     * Opens a writer in the configured {@link WriteMode}: a {@link LocalVolumeWriter} on the target
     * path (a block device, or a symlink to one, in a pool whose volumes are block devices), or an
     * upload stream.
     */
    @Override
    public VolumeWriter openWriter(VolumeInfo volume) {
        Objects.requireNonNull(volume, "volume");
        String name = VolumeNames.validate(volume.name());
        return call("opening volume " + name + " for writing", c -> {
            StorageVol vol = existing(c, name);
            boolean handedOver = false;
            try {
                String path = vol.getPath();
                if (writeModeFor(config, path) == WriteMode.LOCAL) {
                    return LocalVolumeWriter.open(Path.of(path), BLOCK_POOLS.contains(poolType));
                }
                VolumeWriter w = StreamVolumeWriter.open(c, vol, name, vol.getInfo().capacity,
                        BLOCK_POOLS.contains(poolType));
                handedOver = true;
                return w;
            } finally {
                if (!handedOver) {
                    free(vol);
                }
            }
        });
    }

    /**
     * True in {@link WriteMode#LOCAL}, where the volume's target path is read on this host. In
     * {@code STREAM} and {@code AUTO} (which may stream) it is false: libvirt-java 0.5.2 binds no
     * {@code virStorageVolDownload} (as it binds no upload, see {@link NativeUpload}), so the engine's
     * {@code verifyWrittenVolume} is refused at build for them.
     */
    @Override
    public boolean readsBack() {
        return config.writeMode() == WriteMode.LOCAL;
    }

    @Override
    public ReadableByteChannel openReader(VolumeInfo volume) {
        Objects.requireNonNull(volume, "volume");
        String name = VolumeNames.validate(volume.name());
        if (!readsBack()) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume " + name + " cannot be read back in"
                    + " write mode " + config.writeMode() + "; only LOCAL reads the target path");
        }
        String path = call("finding volume " + name + " to read it", c -> {
            StorageVol vol = existing(c, name);
            try {
                return vol.getPath();
            } finally {
                free(vol);
            }
        });
        try {
            return FileChannel.open(Path.of(path), StandardOpenOption.READ);
        } catch (IOException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot read volume " + name + " at " + path
                    + ": " + e, e);
        }
    }

    @Override
    public boolean delete(String name) {
        VolumeNames.validate(name);
        return call("deleting volume " + name, c -> {
            StoragePool pool = activePool(c);
            try {
                refreshQuietly(pool);
                StorageVol vol = lookup(pool, name);
                if (vol == null) {
                    return false;
                }
                try {
                    vol.delete(0);
                    return true;
                } catch (LibvirtException e) {
                    PoolXml disk = isDiskPool() ? describe(pool) : null;
                    if (disk != null && !DiskPartitions.canDelete(disk)) {
                        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "deleting volume " + name + ": libvirt"
                                + " cannot delete partitions of " + disk.sourceDevices() + " (it runs parted with"
                                + " 'rm p<N>' for a device whose name ends in a digit); the partition stays in pool "
                                + config.poolName() + ". Define the pool's source device through a symlink whose name ends"
                                + " in 'p' (see the adapter's README). libvirt said: " + Redaction.redact(e.getMessage()), e);
                    }
                    throw e;
                } finally {
                    free(vol);
                }
            } finally {
                free(pool);
            }
        });
    }

    /** Closes the libvirt connection; idempotent. Writers still open keep their own handles. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        connectionLock.writeLock().lock();
        try {
            closeQuietly(connection);
            connection = null;
        } finally {
            connectionLock.writeLock().unlock();
        }
    }

    @Override
    public String toString() {
        return "LibvirtVolumeBackend[" + config + ", poolType=" + poolType + "]";
    }

    /** The mode a writer on {@code targetPath} uses: {@code AUTO} is {@code LOCAL} only on this host's own volumes. */
    static WriteMode writeModeFor(LibvirtConfig config, String targetPath) {
        return switch (config.writeMode()) {
            case LOCAL -> WriteMode.LOCAL;
            case STREAM -> WriteMode.STREAM;
            case AUTO -> {
                Path p = Path.of(targetPath);
                yield config.isLocalUri() && Files.exists(p) && Files.isWritable(p) ? WriteMode.LOCAL : WriteMode.STREAM;
            }
        };
    }

    private boolean isFilePool() {
        return FILE_POOLS.contains(poolType);
    }

    private boolean isDiskPool() {
        return DISK.equals(poolType);
    }

    // ---- connection handling ----

    @FunctionalInterface
    private interface Operation<T> {
        T apply(Connect c) throws LibvirtException;
    }

    /** Runs {@code op}; when it fails because the connection died, reconnects and runs it once more. */
    private <T> T call(String what, Operation<T> op) {
        Connect used;
        LibvirtException first;
        connectionLock.readLock().lock();
        try {
            used = current();
            try {
                return op.apply(used);
            } catch (LibvirtException e) {
                if (!isDead(used, e)) {
                    throw translate(e, what);
                }
                first = e;
            }
        } finally {
            connectionLock.readLock().unlock();
        }
        LOG.debug("libvirt connection to {} lost while {}; reconnecting", config.redactedUri(), what, first);
        reconnect(used, first);
        connectionLock.readLock().lock();
        try {
            return op.apply(current());
        } catch (LibvirtException e) {
            throw translate(e, what);
        } finally {
            connectionLock.readLock().unlock();
        }
    }

    private Connect current() {
        if (closed.get() || connection == null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "libvirt backend for " + config.redactedUri() + " is closed");
        }
        return connection;
    }

    private void reconnect(Connect dead, LibvirtException cause) {
        connectionLock.writeLock().lock();
        try {
            if (connection != dead) {
                return; // another thread reconnected already
            }
            current();
            Connect fresh;
            try {
                fresh = connect(config.uri());
            } catch (ProvisioningException e) {
                e.addSuppressed(cause);
                throw e;
            }
            closeQuietly(dead);
            connection = fresh;
        } finally {
            connectionLock.writeLock().unlock();
        }
    }

    private static boolean isDead(Connect c, LibvirtException e) {
        ErrorNumber code = e.getError() == null ? null : e.getError().getCode();
        if (code == ErrorNumber.VIR_ERR_NO_CONNECT || code == ErrorNumber.VIR_ERR_INVALID_CONN) {
            return true;
        }
        try {
            // A remote connection learns that its socket closed from the failed call itself.
            return !c.isAlive();
        } catch (LibvirtException | RuntimeException x) {
            return true;
        }
    }

    /**
     * libvirt prints every error of a connection to stderr unless the connection has its own error
     * function; the errors reach us as exceptions anyway, and a lookup that finds nothing is not
     * worth a line on the host application's console. Held in a field so JNA's callback stays
     * reachable.
     */
    private static final Libvirt.VirErrorCallback QUIET = (userData, error) -> { };

    private static Connect connect(String uri) {
        try {
            Connect c = new Connect(uri);
            c.setConnectionErrorCallback(QUIET);
            return c;
        } catch (LibvirtException e) {
            // libvirt's own message may quote the URI, password and all.
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot connect to libvirt at "
                    + Redaction.redact(uri) + ": " + Redaction.redact(e.getMessage())
                    + " (is libvirtd running and may this user use it?)", Redaction.redactedCause(e));
        }
    }

    // ---- pool and volume helpers ----

    private static PoolXml preparePool(Connect c, LibvirtConfig config) {
        String name = config.poolName();
        try {
            StoragePool pool;
            try {
                pool = c.storagePoolLookupByName(name);
            } catch (LibvirtException e) {
                if (!isCode(e, ErrorNumber.VIR_ERR_NO_STORAGE_POOL) || config.definePoolAt().isEmpty()) {
                    throw e;
                }
                Path dir = config.definePoolAt().get();
                LOG.info("defining dir storage pool {} at {}", name, dir);
                pool = c.storagePoolDefineXML(VolumeXml.dirPool(name, dir), 0);
                pool.build(0);
                pool.setAutostart(1);
            }
            try {
                if (pool.isActive() == 0) {
                    if (config.definePoolAt().isEmpty()) {
                        throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "storage pool " + name + " on "
                                + config.redactedUri() + " is not active (start it: virsh pool-start " + name + ")");
                    }
                    pool.create(0);
                }
                return describe(pool);
            } finally {
                free(pool);
            }
        } catch (LibvirtException e) {
            throw translatePool(e, name, config.redactedUri());
        }
    }

    private StoragePool activePool(Connect c) throws LibvirtException {
        StoragePool pool;
        try {
            pool = c.storagePoolLookupByName(config.poolName());
        } catch (LibvirtException e) {
            if (isCode(e, ErrorNumber.VIR_ERR_NO_STORAGE_POOL)) {
                throw translatePool(e, config.poolName(), config.redactedUri());
            }
            throw e;
        }
        if (pool.isActive() == 0) {
            free(pool);
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "storage pool " + config.poolName() + " on "
                    + config.redactedUri() + " is not active (start it: virsh pool-start " + config.poolName() + ")");
        }
        return pool;
    }

    private static ProvisioningException translatePool(LibvirtException e, String pool, String uri) {
        if (isCode(e, ErrorNumber.VIR_ERR_NO_STORAGE_POOL)) {
            return new ProvisioningException(ErrorCode.BACKEND_FAILURE, "storage pool " + pool + " does not exist on "
                    + uri + ": " + e.getMessage(), e);
        }
        return translate(e, "preparing storage pool " + pool + " on " + uri);
    }

    /**
     * Refreshes the pool so volumes made or removed outside libvirt are seen, and free space is
     * current. libvirt refuses while a volume is being built; the cached view is good enough then.
     */
    private void refreshQuietly(StoragePool pool) throws LibvirtException {
        try {
            pool.refresh(0);
        } catch (LibvirtException e) {
            if (isCode(e, ErrorNumber.VIR_ERR_NO_CONNECT) || isCode(e, ErrorNumber.VIR_ERR_INVALID_CONN)
                    || isCode(e, ErrorNumber.VIR_ERR_SYSTEM_ERROR) || isCode(e, ErrorNumber.VIR_ERR_RPC)) {
                throw e; // possibly a dead connection: let call() decide
            }
            LOG.debug("refreshing pool {} failed; using libvirt's cached view", config.poolName(), e);
        }
    }

    private void requireRoom(StoragePool pool, String name, long bytes) throws LibvirtException {
        StoragePoolInfo info = pool.getInfo();
        if (bytes > info.available) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "volume " + name + " needs " + bytes
                    + " bytes but storage pool " + config.poolName() + " has " + info.available + " bytes available");
        }
    }

    /** The pool's XML description: its type and, for a disk pool, its device, label and free regions (current after a refresh). */
    private static PoolXml describe(StoragePool pool) throws LibvirtException {
        try {
            return PoolXml.parse(pool.getXMLDesc(0));
        } catch (IllegalArgumentException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "libvirt described a storage pool in a way this"
                    + " adapter cannot read: " + e.getMessage(), e);
        }
    }

    private Optional<String> nextName(PoolXml disk, List<String> volumes) {
        return DiskPartitions.nextName(disk, volumes, DiskPartitions.deviceName(disk, config.isLocalUri()));
    }

    /** Refuses a name the disk pool would refuse, before anything is made. */
    private void requirePartitionName(PoolXml disk, List<String> volumes, String name) {
        Optional<String> next = nextName(disk, volumes);
        if (next.isPresent() && !next.get().equals(name)) {
            throw ProvisioningException.invalid("volumeName", "storage pool " + config.poolName() + " is a disk pool,"
                    + " which names a new volume after the partition it makes: the next one is " + next.get()
                    + ", not " + name + "; ask for " + next.get());
        }
    }

    /** libvirt uses a free region only when it is larger than the request in whole sectors. */
    private void requirePartitionRoom(PoolXml disk, String name, long bytes) {
        long needed = DiskPartitions.capacityFor(bytes);
        long largest = disk.largestFreeExtent();
        if (needed >= largest) {
            long total = disk.freeExtents().stream().mapToLong(PoolXml.Extent::size).sum();
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "volume " + name + " needs " + needed
                    + " bytes but storage pool " + config.poolName() + " has " + largest + " bytes available in one"
                    + " free region (" + total + " in all)");
        }
    }

    /**
     * libvirt made a partition, then refused the name it was asked for. It tries to delete the
     * partition itself, which fails on some devices; what it left is deleted here, only if it was
     * not a volume before and is not one in libvirt's view now (a refused partition appears only
     * after a refresh; another client's new volume of that name would be there at once).
     */
    private ProvisioningException refusedPartitionName(StoragePool pool, String name, String made, List<String> before,
            LibvirtException cause) throws LibvirtException {
        StorageVol left = null;
        StorageVol known = lookup(pool, made);
        if (known != null) {
            free(known);
        } else if (!before.contains(made)) {
            refreshQuietly(pool);
            left = lookup(pool, made);
        }
        String outcome;
        if (known != null || before.contains(made)) {
            outcome = "a volume " + made + " is in the pool, which is left alone";
        } else if (left == null) {
            outcome = "libvirt removed it again";
        } else {
            try {
                left.delete(0);
                outcome = "it was deleted again";
            } catch (LibvirtException e) {
                cause.addSuppressed(e);
                outcome = "it could not be deleted and is left in the pool (" + Redaction.redact(e.getMessage()) + "); remove it with"
                        + " virsh vol-delete --pool " + config.poolName() + " " + made + ", or with parted";
            } finally {
                free(left);
            }
        }
        return new ProvisioningException(ErrorCode.INVALID_REQUEST, "volumeName: storage pool " + config.poolName()
                + " is a disk pool, which names a new volume after the partition it makes: it made " + made
                + " and refused the name " + name + "; " + outcome + "; ask for " + made, cause);
    }

    private static void deleteQuietly(StorageVol vol, String name) {
        try {
            vol.delete(0);
        } catch (LibvirtException | RuntimeException e) {
            LOG.warn("cannot delete volume {} again", name, e);
        }
    }

    /** The volume, or null when the pool has none of that name. */
    private static StorageVol lookup(StoragePool pool, String name) throws LibvirtException {
        try {
            return pool.storageVolLookupByName(name);
        } catch (LibvirtException e) {
            if (isCode(e, ErrorNumber.VIR_ERR_NO_STORAGE_VOL)) {
                return null;
            }
            throw e;
        }
    }

    /** The volume {@code name} of the active pool, which the caller frees. */
    private StorageVol existing(Connect c, String name) throws LibvirtException {
        StoragePool pool = activePool(c);
        try {
            return existing(pool, name);
        } finally {
            free(pool);
        }
    }

    private StorageVol existing(StoragePool pool, String name) throws LibvirtException {
        StorageVol vol = lookup(pool, name);
        if (vol == null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "volume " + name + " does not exist in storage pool "
                    + config.poolName());
        }
        return vol;
    }

    private static boolean isCode(LibvirtException e, ErrorNumber code) {
        return e.getError() != null && e.getError().getCode() == code;
    }

    private static ProvisioningException translate(LibvirtException e, String what) {
        String message = what + ": " + Redaction.redact(e.getMessage());
        String m = String.valueOf(e.getMessage());
        if (IoErrors.isNoSpaceText(m) || m.contains("Insufficient free space") || m.contains("no large enough free extent")) {
            return new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, message, e);
        }
        return new ProvisioningException(ErrorCode.BACKEND_FAILURE, message, e);
    }

    private static void free(StoragePool pool) {
        try {
            pool.free();
        } catch (LibvirtException | RuntimeException e) {
            LOG.debug("freeing pool handle failed", e);
        }
    }

    private static void free(StorageVol vol) {
        try {
            vol.free();
        } catch (LibvirtException | RuntimeException e) {
            LOG.debug("freeing volume handle failed", e);
        }
    }

    private static void closeQuietly(Connect c) {
        if (c == null) {
            return;
        }
        try {
            c.close();
        } catch (LibvirtException | RuntimeException e) {
            LOG.debug("closing libvirt connection failed", e);
        }
    }
}
