package org.volprov.cache;



/** What {@link ImageCache#evict(String)} did. Only {@link #EVICTED} removed anything. */
public enum CacheEviction {
    /** The entry and its files are gone. */
    EVICTED,
    /** There was no such entry; nothing changed. */
    NOT_CACHED,
    /**
     * Refused: a lease holds the entry (in this process or, as far as the index can tell, in another
     * sharing the directory; a shared index whose store is unreachable cannot tell, and refuses).
     */
    LEASED,
    /** Refused: a download of this image is being installed (by this process or another); try again later. */
    BEING_FILLED
}
