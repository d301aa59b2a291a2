package org.volprov.libvirt;

import java.nio.file.Files;
import java.nio.file.Path;
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
import org.volprov.VolumeBackend;
import org.volprov.VolumeInfo;
import org.volprov.VolumeNames;
import org.volprov.VolumeWriter;
import org.volprov.embedded.LocalVolumeWriter;
import org.volprov.internal.IoErrors;
import org.volprov.internal.Redaction;

/**
 * A {@link VolumeBackend} on one libvirt storage pool: a {@code logical} (LVM) pool in production,
 * a {@code dir} or {@code fs} pool elsewhere; the code path is the same.
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
            String type = preparePool(c, config);
            LOG.debug("opened libvirt pool {} (type {}) on {}", config.poolName(), type, config);
            return new LibvirtVolumeBackend(config, c, type);
        } catch (RuntimeException e) {
            closeQuietly(c);
            throw e;
        }
    }

    public LibvirtConfig config() {
        return config;
    }

    /** The pool's type as libvirt names it: {@code dir}, {@code fs}, {@code logical}, ... */
    public String poolType() {
        return poolType;
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

    @Override
    public VolumeInfo create(String name, long capacityBytes) {
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
                requireRoom(pool, name, capacityBytes);
                StorageVol vol;
                try {
                    vol = pool.storageVolCreateXML(xml, 0);
                } catch (LibvirtException e) {
                    String m = String.valueOf(e.getMessage()).toLowerCase(Locale.ROOT);
                    if (m.contains("already in use") || m.contains("already exists")) {
                        throw new ProvisioningException(ErrorCode.VOLUME_CONFLICT, "volume " + name
                                + " exists already in pool " + config.poolName() + ": " + e.getMessage(), e);
                    }
                    throw e;
                }
                try {
                    // Only a fresh sparse file is known to read as zeros; a thick LV may hold a former tenant's data.
                    return new VolumeInfo(name, vol.getInfo().capacity, vol.getPath(), filePool);
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
     * path (a block device is required in a {@code logical} pool), or an upload stream.
     */
    @Override
    public VolumeWriter openWriter(VolumeInfo volume) {
        Objects.requireNonNull(volume, "volume");
        String name = VolumeNames.validate(volume.name());
        return call("opening volume " + name + " for writing", c -> {
            StoragePool pool = activePool(c);
            StorageVol vol;
            try {
                vol = existing(pool, name);
            } finally {
                free(pool);
            }
            boolean handedOver = false;
            try {
                String path = vol.getPath();
                if (writeModeFor(path) == WriteMode.LOCAL) {
                    return LocalVolumeWriter.open(Path.of(path), "logical".equals(poolType));
                }
                VolumeWriter w = StreamVolumeWriter.open(c, vol, name, vol.getInfo().capacity);
                handedOver = true;
                return w;
            } finally {
                if (!handedOver) {
                    free(vol);
                }
            }
        });
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

    WriteMode writeModeFor(String targetPath) {
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

    private static String preparePool(Connect c, LibvirtConfig config) {
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
                return VolumeXml.poolType(pool.getXMLDesc(0));
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
        if (IoErrors.isNoSpaceText(e.getMessage()) || String.valueOf(e.getMessage()).contains("Insufficient free space")) {
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
