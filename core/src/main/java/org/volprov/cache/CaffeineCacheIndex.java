package org.volprov.cache;

import com.github.benmanes.caffeine.cache.Cache;
import com.github.benmanes.caffeine.cache.Caffeine;
import java.time.Clock;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.OptionalInt;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.LongAdder;
import java.util.concurrent.locks.ReentrantLock;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * The in-memory index: entries in a Caffeine cache, each stamped from a use counter when it is
 * loaded, added or leased, so that the least recently used entry has the lowest stamp. This class
 * drives eviction itself, because it must skip leased entries and must not evict anything when the
 * image cannot fit anyway. Hits take no lock beyond the entry's own monitor. (Caffeine's own access
 * order cannot serve: since 3.2 it records a read only when the entry's last one is over a second
 * old, so two uses within a second would keep their earlier order.)
 */
final class CaffeineCacheIndex implements CacheIndex {
    private static final Comparator<Node> LEAST_RECENTLY_USED = Comparator.comparingLong(n -> n.lastUse);

    private final long maxBytes;
    private final int maxEntries;
    private final Clock clock;
    private final Cache<String, Node> entries;
    private final AtomicLong uses = new AtomicLong();
    private final Map<String, String> aliases = new ConcurrentHashMap<>();
    private final ReentrantLock lock = new ReentrantLock();
    private final AtomicLong bytesInUse = new AtomicLong();
    private final LongAdder evictions = new LongAdder();
    // Guarded by lock.
    private long reservedBytes;
    private int reservedEntries;

    CaffeineCacheIndex(long maxBytes, int maxEntries, Clock clock) {
        this.maxBytes = maxBytes;
        this.maxEntries = maxEntries;
        this.clock = clock;
        this.entries = Caffeine.newBuilder()
                .executor(Runnable::run)
                .build();
    }

    private static final class Node {
        final String sha256;
        final long size;
        final Set<String> identities = ConcurrentHashMap.newKeySet();
        volatile long lastUse;
        volatile Instant lastUsedAt;
        // Guarded by this.
        int leases;
        boolean removed;

        Node(String sha256, long size, long use, Instant at) {
            this.sha256 = sha256;
            this.size = size;
            this.lastUse = use;
            this.lastUsedAt = at;
        }

        /** Leases the node; marks it used when {@code at} is not null. */
        synchronized boolean tryLease(long use, Instant at) {
            if (removed) {
                return false;
            }
            leases++;
            if (at != null) {
                lastUse = use;
                lastUsedAt = at;
            }
            return true;
        }

        synchronized int leases() {
            return leases;
        }

        synchronized boolean removed() {
            return removed;
        }

        synchronized void unlease() {
            leases--;
        }

        synchronized boolean tryRemove() {
            if (removed || leases > 0) {
                return false;
            }
            removed = true;
            return true;
        }

        /** Marks the node removed even while leased: its file is gone. True the first time. */
        synchronized boolean forceRemove() {
            if (removed) {
                return false;
            }
            removed = true;
            return true;
        }

        synchronized boolean evictable() {
            return !removed && leases == 0;
        }
    }

    @Override
    public void load(Contents contents, Directory directory, Evictor evictor) {
        lock.lock();
        try {
            for (Entry e : contents.entries()) {
                entries.put(e.sha256(), new Node(e.sha256(), e.size(), uses.incrementAndGet(), e.lastUsed()));
                bytesInUse.addAndGet(e.size());
            }
            for (Alias a : contents.aliases()) {
                Node n = entries.getIfPresent(a.sha256());
                if (n != null) {
                    aliases.put(a.identity(), a.sha256());
                    n.identities.add(a.identity());
                }
            }
            // A smaller budget than the last run's: shed the oldest until it fits.
            for (Node n : leastRecentlyUsedFirst()) {
                if (bytesInUse.get() <= maxBytes && entries.estimatedSize() <= maxEntries) {
                    break;
                }
                evict(n, evictor);
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public Optional<Hold> acquire(String sha256) {
        return hold(sha256, clock.instant());
    }

    @Override
    public Optional<Hold> pin(String sha256) {
        return hold(sha256, null);
    }

    private Optional<Hold> hold(String sha256, Instant use) {
        Node n = entries.getIfPresent(sha256);
        if (n == null || !n.tryLease(use == null ? 0 : uses.incrementAndGet(), use)) {
            return Optional.empty();
        }
        return Optional.of(releaser(n));
    }

    private static Hold releaser(Node n) {
        AtomicBoolean released = new AtomicBoolean();
        return () -> {
            if (released.compareAndSet(false, true)) {
                n.unlease();
            }
        };
    }

    @Override
    public List<CachedImage> list() {
        List<CachedImage> out = new ArrayList<>();
        for (Node n : leastRecentlyUsedFirst()) {
            if (!n.removed()) {
                // The directory is this index's alone: no process elsewhere holds a lease.
                out.add(new CachedImage(n.sha256, n.size, n.identities.stream().sorted().toList(), n.lastUsedAt,
                        n.leases(), OptionalInt.of(0)));
            }
        }
        return out;
    }

    @Override
    public void drop(String sha256) {
        lock.lock();
        try {
            Node n = entries.getIfPresent(sha256);
            if (n != null && n.forceRemove()) {
                forget(n);
            }
        } finally {
            lock.unlock();
        }
    }

    @Override
    public Optional<String> alias(String identity) {
        return Optional.ofNullable(aliases.get(identity));
    }

    @Override
    public void putAlias(String identity, String sha256) {
        Node n = entries.getIfPresent(sha256);
        if (n != null) {
            aliases.put(identity, sha256);
            n.identities.add(identity);
        }
    }

    @Override
    public Reservation reserve(long bytes, Evictor evictor) {
        if (bytes > maxBytes) {
            throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "the image (" + bytes
                    + " bytes) is larger than the cache's budget (maxBytes " + maxBytes + ")");
        }
        lock.lock();
        try {
            long bytesToFree = bytesInUse.get() + reservedBytes + bytes - maxBytes;
            long entriesToFree = entries.estimatedSize() + reservedEntries + 1L - maxEntries;
            if (bytesToFree > 0 || entriesToFree > 0) {
                List<Node> victims = victims(bytesToFree, entriesToFree);
                if (victims == null) {
                    throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "no room for an image of " + bytes
                            + " bytes: " + bytesInUse.get() + " of maxBytes " + maxBytes + " and " + entries.estimatedSize()
                            + " of maxEntries " + maxEntries + " are held by entries in use or downloads in progress");
                }
                for (Node n : victims) {
                    if (evict(n, evictor)) {
                        bytesToFree -= n.size;
                        entriesToFree--;
                    }
                }
                if (bytesToFree > 0 || entriesToFree > 0) {
                    // An entry was leased between choosing and evicting it.
                    throw new ProvisioningException(ErrorCode.INSUFFICIENT_SPACE, "no room for an image of " + bytes
                            + " bytes: entries chosen for eviction were taken into use");
                }
            }
            reservedBytes += bytes;
            reservedEntries++;
            return new Room(bytes);
        } finally {
            lock.unlock();
        }
    }

    /** The least recently used unleased entries that free enough, or null when all of them would not. */
    private List<Node> victims(long bytesToFree, long entriesToFree) {
        List<Node> chosen = new ArrayList<>();
        long bytes = bytesToFree;
        long count = entriesToFree;
        for (var it = leastRecentlyUsedFirst().iterator(); it.hasNext() && (bytes > 0 || count > 0); ) {
            Node n = it.next();
            if (n.evictable()) {
                chosen.add(n);
                bytes -= n.size;
                count--;
            }
        }
        return bytes > 0 || count > 0 ? null : chosen;
    }

    // A sort per reservation or load: a cache holds images, so there are few entries, and hits stay cheap.
    private List<Node> leastRecentlyUsedFirst() {
        List<Node> nodes = new ArrayList<>(entries.asMap().values());
        nodes.sort(LEAST_RECENTLY_USED);
        return nodes;
    }

    @Override
    public Removal remove(String sha256, Evictor evictor) {
        lock.lock();
        try {
            Node n = entries.getIfPresent(sha256);
            if (n == null) {
                return Removal.ABSENT;
            }
            return remove(n, evictor) ? Removal.REMOVED : Removal.HELD;
        } finally {
            lock.unlock();
        }
    }

    // Called with lock held.
    private boolean evict(Node n, Evictor evictor) {
        if (!remove(n, evictor)) {
            return false;
        }
        evictions.increment();
        return true;
    }

    // Called with lock held.
    private boolean remove(Node n, Evictor evictor) {
        if (!n.tryRemove()) {
            return false;
        }
        Collection<String> ids = forget(n);
        evictor.evict(n.sha256, ids);
        return true;
    }

    /** Takes a node marked removed out of the index with its aliases; returns their identities. Called with lock held. */
    private Collection<String> forget(Node n) {
        entries.asMap().remove(n.sha256, n);
        bytesInUse.addAndGet(-n.size);
        Collection<String> ids = List.copyOf(n.identities);
        for (String id : ids) {
            aliases.remove(id, n.sha256);
        }
        return ids;
    }

    @Override
    public Hold add(Reservation reservation, String sha256, long size) {
        Room room = (Room) reservation;
        lock.lock();
        try {
            room.settle();
            Node existing = entries.getIfPresent(sha256);
            Instant now = clock.instant();
            if (existing == null || !existing.tryLease(uses.incrementAndGet(), now)) {
                existing = new Node(sha256, size, uses.incrementAndGet(), now);
                existing.leases = 1;
                entries.put(sha256, existing);
                bytesInUse.addAndGet(size);
            }
            return releaser(existing);
        } finally {
            lock.unlock();
        }
    }

    @Override
    public long entries() {
        return entries.estimatedSize();
    }

    @Override
    public long bytesInUse() {
        return bytesInUse.get();
    }

    @Override
    public long evictions() {
        return evictions.sum();
    }

    @Override
    public void close() {
        entries.invalidateAll();
        aliases.clear();
    }

    private final class Room implements Reservation {
        private final long bytes;
        private boolean settled; // guarded by lock

        Room(long bytes) {
            this.bytes = bytes;
        }

        @Override
        public long bytes() {
            return bytes;
        }

        @Override
        public void release() {
            lock.lock();
            try {
                settle();
            } finally {
                lock.unlock();
            }
        }

        void settle() {
            if (!settled) {
                settled = true;
                reservedBytes -= bytes;
                reservedEntries--;
            }
        }
    }
}
