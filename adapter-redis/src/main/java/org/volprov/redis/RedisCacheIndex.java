package org.volprov.redis;

import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantReadWriteLock;
import java.util.function.Function;
import java.util.function.Supplier;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;
import org.volprov.cache.CacheIndex;
import org.volprov.cache.CachedImage;

/**
 * A {@link CacheIndex} in Redis, shared by the processes of one host that use one cache directory
 * (see {@link Keys} for the layout). Entries, use order, leases, reservations, aliases and counters
 * live in Redis and change only through {@link Scripts}, atomically. Leases and reservations carry
 * an expiry that this process renews; those of a process that died expire after the lease time.
 *
 * <p>While Redis is unreachable the index runs on an in-memory index rebuilt from the directory,
 * without a budget: it evicts nothing, because it cannot see the other processes' leases, so the
 * directory may outgrow {@code maxBytes} (the disk's free space and {@code reserveBytes} still
 * bound it). When Redis answers, {@link #reconcile()} makes Redis agree with the directory, moves the
 * leases taken meanwhile into Redis and sheds what exceeds the budget. Thread-safe.
 */
final class RedisCacheIndex implements CacheIndex {
    private static final Logger LOG = LoggerFactory.getLogger(RedisCacheIndex.class);
    private static final Evictor KEEP_ALL = (sha, ids) -> { };

    private final RedisCoordination redis;
    private final Keys keys;
    private final long maxBytes;
    private final int maxEntries;
    private final Map<String, Lease> leases = new ConcurrentHashMap<>();
    private final Map<String, Room> rooms = new ConcurrentHashMap<>();
    private final LongAdder evictions = new LongAdder();
    private final ReentrantReadWriteLock mode = new ReentrantReadWriteLock();
    private final AtomicBoolean closed = new AtomicBoolean();
    // Non-null while Redis is unreachable; replaced only under the write lock of mode.
    private volatile CacheIndex local;
    private volatile Evictor evictor;
    private volatile Directory directory;
    private volatile boolean loaded;

    RedisCacheIndex(RedisCoordination redis, long maxBytes, int maxEntries) {
        this.redis = redis;
        this.keys = redis.keys();
        this.maxBytes = maxBytes;
        this.maxEntries = maxEntries;
    }

    // ------------------------------------------------------------------ leases and rooms

    /** A lease on an entry: in Redis, in the local index, or (after an outage) both. */
    private final class Lease implements Hold {
        final String id;
        final String sha256;
        final Hold localHold;
        private final AtomicBoolean released = new AtomicBoolean();

        Lease(String id, String sha256, Hold localHold) {
            this.id = id;
            this.sha256 = sha256;
            this.localHold = localHold;
        }

        @Override
        public void release() {
            if (!released.compareAndSet(false, true)) {
                return;
            }
            leases.remove(id);
            if (localHold != null) {
                localHold.release();
            }
            try {
                redis.call(j -> j.zrem(keys.hold(sha256), id));
            } catch (RedisUnreachableException e) {
                // The lease expires in Redis by itself.
            }
        }
    }

    /** Room for one download, in Redis or in the local index. */
    private final class Room implements Reservation {
        final String id;
        final long bytes;
        final CacheIndex owner;       // the local index it came from, or null for Redis
        final Reservation localRoom;  // its reservation there
        private final AtomicBoolean settled = new AtomicBoolean();

        Room(String id, long bytes, CacheIndex owner, Reservation localRoom) {
            this.id = id;
            this.bytes = bytes;
            this.owner = owner;
            this.localRoom = localRoom;
        }

        @Override
        public long bytes() {
            return bytes;
        }

        /** Marks the room used or given back; true the first time. */
        boolean settle() {
            if (!settled.compareAndSet(false, true)) {
                return false;
            }
            rooms.remove(id);
            if (localRoom != null) {
                localRoom.release();
            }
            return true;
        }

        @Override
        public void release() {
            if (settle() && owner == null) {
                try {
                    redis.call(j -> Scripts.RELEASE_ROOM.run(j, args(id)));
                } catch (RedisUnreachableException e) {
                    // It expires in Redis by itself.
                }
            }
        }
    }

    // ------------------------------------------------------------------ CacheIndex

    @Override
    public void load(Contents contents, Directory directory, Evictor evictor) {
        this.directory = directory;
        this.evictor = evictor;
        try {
            reconcile(contents);
        } catch (RedisUnreachableException e) {
            goLocal(contents);
        }
    }

    @Override
    public Optional<Hold> acquire(String sha256) {
        return hold(sha256, true);
    }

    @Override
    public Optional<Hold> pin(String sha256) {
        return hold(sha256, false);
    }

    private Optional<Hold> hold(String sha256, boolean use) {
        return either(() -> {
            String id = redis.newToken();
            long ok = (Long) redis.call(j -> Scripts.ACQUIRE.run(j, args(sha256, id, expiry(), use ? "1" : "0")));
            return ok == 1 ? Optional.of(track(new Lease(id, sha256, null))) : Optional.<Hold>empty();
        }, l -> (use ? l.acquire(sha256) : l.pin(sha256)).map(h -> track(new Lease(redis.newToken(), sha256, h))));
    }

    /** Leases elsewhere are the live holds in Redis less this object's own; unknown while Redis is unreachable. */
    @Override
    public List<CachedImage> list() {
        return either(() -> {
            @SuppressWarnings("unchecked")
            List<Object> flat = (List<Object>) redis.call(j -> Scripts.LIST.run(j, args()));
            Map<String, Integer> mine = ownLeases();
            List<CachedImage> out = new ArrayList<>();
            for (int i = 0; i < flat.size(); ) {
                String sha = (String) flat.get(i);
                long size = Long.parseLong((String) flat.get(i + 1));
                Instant used = Instant.ofEpochMilli(Long.parseLong((String) flat.get(i + 2)));
                int live = ((Long) flat.get(i + 3)).intValue();
                int n = ((Long) flat.get(i + 4)).intValue();
                List<String> ids = new ArrayList<>();
                for (int k = 0; k < n; k++) {
                    ids.add((String) flat.get(i + 5 + k));
                }
                i += 5 + n;
                ids.sort(null);
                int here = mine.getOrDefault(sha, 0);
                out.add(new CachedImage(sha, size, ids, used, here, OptionalInt.of(Math.max(0, live - here))));
            }
            return out;
        }, l -> {
            Map<String, Integer> mine = ownLeases();
            return l.list().stream().map(e -> new CachedImage(e.sha256(), e.size(), e.sources(), e.lastUsed(),
                    mine.getOrDefault(e.sha256(), 0), OptionalInt.empty())).toList();
        });
    }

    private Map<String, Integer> ownLeases() {
        Map<String, Integer> mine = new HashMap<>();
        for (Lease l : leases.values()) {
            mine.merge(l.sha256, 1, Integer::sum);
        }
        return mine;
    }

    /**
     * Removes an unleased entry in Redis. While Redis is unreachable this process cannot see the
     * other processes' leases, so it removes nothing and answers {@code HELD}.
     */
    @Override
    public Removal remove(String sha256, Evictor evictor) {
        return either(() -> {
            @SuppressWarnings("unchecked")
            List<Object> r = (List<Object>) redis.call(j -> Scripts.REMOVE.run(j, args(sha256)));
            long status = (Long) r.get(0);
            if (status == 0) {
                return Removal.ABSENT;
            }
            if (status == 1) {
                return Removal.HELD;
            }
            List<String> ids = new ArrayList<>();
            for (Object id : r.subList(1, r.size())) {
                ids.add((String) id);
            }
            evictor.evict(sha256, ids);
            return Removal.REMOVED;
        }, l -> Removal.HELD);
    }

    @Override
    public void drop(String sha256) {
        either(() -> redis.call(j -> Scripts.DROP.run(j, args(sha256))), l -> {
            l.drop(sha256);
            return null;
        });
    }

    @Override
    public Optional<String> alias(String identity) {
        return either(() -> Optional.ofNullable(redis.call(j -> j.hget(keys.alias(), identity))),
                l -> l.alias(identity));
    }

    @Override
    public void putAlias(String identity, String sha256) {
        either(() -> redis.call(j -> Scripts.PUT_ALIAS.run(j, args(identity, sha256))), l -> {
            l.putAlias(identity, sha256);
            return null;
        });
    }

    @Override
    public Reservation reserve(long bytes, Evictor evictor) {
        if (bytes > maxBytes) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the image (" + bytes
                    + " bytes) is larger than the cache's budget (maxBytes " + maxBytes + ")");
        }
        return either(() -> reserveInRedis(bytes, evictor), l -> {
            Room room = new Room(redis.newToken(), bytes, l, l.reserve(bytes, KEEP_ALL));
            rooms.put(room.id, room);
            return room;
        });
    }

    private Reservation reserveInRedis(long bytes, Evictor evictor) {
        String id = redis.newToken();
        @SuppressWarnings("unchecked")
        List<Object> r = (List<Object>) redis.call(j -> Scripts.RESERVE.run(j, args(Long.toString(bytes),
                Long.toString(maxBytes), Integer.toString(maxEntries), id, expiry())));
        if ((Long) r.get(0) == 0) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "no room for an image of " + bytes
                    + " bytes: " + r.get(1) + " of maxBytes " + maxBytes + " and " + r.get(2) + " of maxEntries "
                    + maxEntries + " are held by entries in use or downloads in progress on host " + keys.hostId);
        }
        Room room = new Room(id, bytes, null, null);
        rooms.put(id, room);
        evict(r.subList(1, r.size()), evictor);
        return room;
    }

    @Override
    public Hold add(Reservation reservation, String sha256, long size) {
        Room room = (Room) reservation;
        return either(() -> {
            boolean redisRoom = room.settle() && room.owner == null;
            String id = redis.newToken();
            redis.call(j -> Scripts.ADD.run(j, args(redisRoom ? room.id : "", sha256, Long.toString(size), id,
                    expiry())));
            return track(new Lease(id, sha256, null));
        }, l -> {
            Reservation r = room.owner == l ? room.localRoom : null;
            if (r == null) {
                // Reserved before the index changed mode: release it where it was and reserve again here.
                room.release();
                r = l.reserve(size, KEEP_ALL);
            } else {
                room.settled.set(true);
                rooms.remove(room.id);
            }
            return track(new Lease(redis.newToken(), sha256, l.add(r, sha256, size)));
        });
    }

    @Override
    public long entries() {
        return either(() -> redis.call(j -> j.hlen(keys.entries())), CacheIndex::entries);
    }

    @Override
    public long bytesInUse() {
        return either(() -> {
            String v = redis.call(j -> j.get(keys.host + "bytes"));
            return v == null ? 0L : Long.parseLong(v);
        }, CacheIndex::bytesInUse);
    }

    @Override
    public long evictions() {
        return evictions.sum();
    }

    /** Gives this process's leases and reservations back in Redis, so others need not wait for them to expire. */
    @Override
    public void close() {
        if (!closed.compareAndSet(false, true)) {
            return;
        }
        try {
            for (Lease l : List.copyOf(leases.values())) {
                l.release();
            }
            for (Room r : List.copyOf(rooms.values())) {
                r.release();
            }
        } finally {
            redis.unregister(this);
            CacheIndex l = local;
            if (l != null) {
                l.close();
            }
        }
    }

    @Override
    public String toString() {
        return "RedisCacheIndex[host=" + keys.hostId + ", maxBytes=" + maxBytes + ", maxEntries=" + maxEntries + "]";
    }

    // ------------------------------------------------------------------ mode switching

    /** Runs {@code inRedis}, or {@code inLocal} while Redis is unreachable (switching over when it becomes so). */
    private <T> T either(Supplier<T> inRedis, Function<CacheIndex, T> inLocal) {
        while (true) {
            mode.readLock().lock();
            try {
                CacheIndex l = local;
                if (l != null) {
                    return inLocal.apply(l);
                }
            } finally {
                mode.readLock().unlock();
            }
            try {
                return inRedis.get();
            } catch (RedisUnreachableException e) {
                goLocal(null);
            }
        }
    }

    /** Switches to an in-memory index built from the directory (or from {@code contents}). */
    private void goLocal(Contents contents) {
        mode.writeLock().lock();
        try {
            if (local != null) {
                return;
            }
            Contents c = contents != null ? contents : directory.scan();
            CacheIndex l = CacheIndex.inMemory(Long.MAX_VALUE, Integer.MAX_VALUE);
            l.load(c, directory, KEEP_ALL);
            local = l;
            LOG.info("cache index of host {}: {} entries from {} are served locally until Redis answers",
                    keys.hostId, c.entries().size(), directory.path());
        } finally {
            mode.writeLock().unlock();
        }
    }

    /** Whether Redis held this index at some point (so that its absence means Redis lost it). */
    boolean loaded() {
        return loaded;
    }

    /**
     * Makes Redis agree with the directory and takes the index back from local mode.
     *
     * @throws RedisUnreachableException when Redis stops answering meanwhile
     */
    void reconcile() {
        Directory d = directory;
        if (d != null) { // else not loaded yet: load reconciles
            reconcile(d.scan());
        }
    }

    private void reconcile(Contents contents) {
        Set<String> onDisk = new HashSet<>();
        for (Entry e : contents.entries()) {
            onDisk.add(e.sha256());
        }
        List<String> gone = new ArrayList<>();
        for (String sha : redis.call(j -> j.hkeys(keys.entries()))) {
            // The scan is a snapshot: an entry another process installed since then is not gone.
            if (!onDisk.contains(sha) && !directory.contains(sha)) {
                gone.add(sha);
            }
        }
        List<Object> evicted;
        mode.writeLock().lock();
        try {
            List<String> a = new ArrayList<>(args(Long.toString(maxBytes), Integer.toString(maxEntries), expiry()));
            a.add(Integer.toString(contents.entries().size()));
            for (Entry e : contents.entries()) {
                a.add(e.sha256());
                a.add(Long.toString(e.size()));
                a.add(Long.toString(e.lastUsed().toEpochMilli()));
            }
            a.add(Integer.toString(contents.aliases().size()));
            for (Alias al : contents.aliases()) {
                a.add(al.identity());
                a.add(al.sha256());
            }
            a.add(Integer.toString(gone.size()));
            a.addAll(gone);
            Collection<Lease> live = List.copyOf(leases.values());
            a.add(Integer.toString(live.size()));
            for (Lease l : live) {
                a.add(l.sha256);
                a.add(l.id);
            }
            List<Room> open = new ArrayList<>();
            for (Room r : rooms.values()) {
                if (r.owner == null) {
                    open.add(r);
                }
            }
            a.add(Integer.toString(open.size()));
            for (Room r : open) {
                a.add(r.id);
                a.add(Long.toString(r.bytes));
            }
            @SuppressWarnings("unchecked")
            List<Object> r = (List<Object>) redis.call(j -> Scripts.RECONCILE.run(j, a));
            evicted = r;
            loaded = true;
            if (local != null) {
                // Local rooms stay with the local index; their downloads add to Redis when they finish.
                local = null;
            }
        } finally {
            mode.writeLock().unlock();
        }
        if (!gone.isEmpty()) {
            LOG.info("cache index of host {}: forgot {} entries no longer in {}", keys.hostId, gone.size(),
                    directory.path());
        }
        evict(evicted, evictor);
    }

    /** Renews this process's leases and reservations in Redis. */
    void renew() {
        if (local != null || (leases.isEmpty() && rooms.isEmpty())) {
            return;
        }
        List<String> a = new ArrayList<>(args(expiry()));
        Collection<Lease> live = List.copyOf(leases.values());
        a.add(Integer.toString(live.size()));
        for (Lease l : live) {
            a.add(l.sha256);
            a.add(l.id);
        }
        for (Room r : rooms.values()) {
            if (r.owner == null) {
                a.add(r.id);
            }
        }
        redis.call(j -> Scripts.RENEW.run(j, a));
    }

    // ------------------------------------------------------------------ helpers

    private Lease track(Lease lease) {
        leases.put(lease.id, lease);
        return lease;
    }

    /** Deletes the files of entries a script evicted: {sha, n, id1..idn, sha, ...}. */
    private void evict(List<Object> flat, Evictor to) {
        for (int i = 0; i < flat.size(); ) {
            String sha = (String) flat.get(i);
            int n = ((Long) flat.get(i + 1)).intValue();
            List<String> ids = new ArrayList<>(n);
            for (int k = 0; k < n; k++) {
                ids.add((String) flat.get(i + 2 + k));
            }
            i += 2 + n;
            evictions.increment();
            if (to != null) {
                to.evict(sha, ids);
            }
        }
    }

    private String expiry() {
        return Long.toString(redis.clock().millis() + redis.leaseMillis());
    }

    /** The shared head of an index script's ARGV, then {@code rest}. */
    private List<String> args(String... rest) {
        List<String> a = new ArrayList<>(4 + rest.length);
        a.add(keys.host);
        a.add(keys.root);
        a.add(keys.hostId);
        a.add(Long.toString(redis.clock().millis()));
        a.addAll(List.of(rest));
        return a;
    }
}
