package org.volprov.redis;

import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;

/**
 * The key layout. {@code P} is the configured prefix, {@code H} a host id:
 *
 * <pre>
 * P:host:H:entries       hash   sha256 -> size            the host's cache entries
 * P:host:H:lru           zset   sha256 -> use tick        last use, for LRU
 * P:host:H:used          hash   sha256 -> last use (epoch ms)
 * P:host:H:tick          string counter behind the ticks
 * P:host:H:bytes         string bytes held by entries
 * P:host:H:hold:SHA      zset   lease id -> expiry (ms)  leases on one entry
 * P:host:H:rsv           zset   reservation id -> expiry room set aside for downloads
 * P:host:H:rsvbytes      hash   reservation id -> bytes
 * P:host:H:alias         hash   identity -> sha256        digests of objects published without one
 * P:host:H:ids:SHA       set    identities pointing at an entry
 * P:host:H:stats         hash   hits, misses, admissions, evictions
 * P:host:H:loaded        string present while Redis holds the host's index (gone after a restart or a flush)
 * P:host:H:fill:KEY      string lock token: one download of an image on the host
 * P:host:H:volume:NAME   string lock token: one job on a volume of the host
 * P:fleet:SHA            set    host ids holding the entry
 * P:hosts                set    host ids ever seen
 * P:alive:H              string heartbeat, expires 3 lease times after the host's last renewal
 * </pre>
 */
final class Keys {
    final String root;
    final String hostId;
    final String host;

    Keys(String prefix, String hostId) {
        this.root = prefix + ":";
        this.hostId = hostId;
        this.host = hostPrefix(hostId);
    }

    String hostPrefix(String otherHost) {
        return root + "host:" + otherHost + ":";
    }

    String entries() {
        return host + "entries";
    }

    String alias() {
        return host + "alias";
    }

    String loaded() {
        return host + "loaded";
    }

    String hold(String sha256) {
        return host + "hold:" + sha256;
    }

    String alive(String otherHost) {
        return root + "alive:" + otherHost;
    }

    String fleet(String sha256) {
        return root + "fleet:" + sha256;
    }

    String hosts() {
        return root + "hosts";
    }

    /** A digest key stays readable; an identity key (any length, any characters) is hashed. */
    String fill(String lockKey) {
        return host + "fill:" + (lockKey.length() == 64 ? lockKey : sha256(lockKey));
    }

    String volume(String name) {
        return host + "volume:" + name;
    }

    static String sha256(String s) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(s.getBytes(StandardCharsets.UTF_8)));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("the JVM has no SHA-256", e);
        }
    }
}
