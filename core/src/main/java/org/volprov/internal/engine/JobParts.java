package org.volprov.internal.engine;

import java.util.concurrent.ExecutorService;
import java.util.concurrent.ThreadPoolExecutor;
import org.volprov.ImageRef;
import org.volprov.internal.OncePerKey;
import org.volprov.support.Retrier;

/**
 * What an engine's jobs share: its settings and the parts made from them once.
 *
 * @param refusedChecksumSiblings images whose checksum sibling the source refused; warned about once each
 * @param downloads runs the parts of parallel downloads and the read-back's decode, for every job of the engine
 * @param decoding inflates compressed clusters for the decoder of every job of the engine
 * @param flushing flushes volumes in the background while the decoder writes them
 */
record JobParts(EngineSettings settings, Retrier retrier, JobRecords records, JobEvents events,
        OncePerKey<ImageRef> refusedChecksumSiblings, ExecutorService downloads, ThreadPoolExecutor decoding,
        ExecutorService flushing) {
}
