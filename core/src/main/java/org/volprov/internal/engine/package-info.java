/**
 * The engine behind {@link org.volprov.Provisioner}; not API. {@link org.volprov.internal.engine.Engine}
 * is its one entry and {@link org.volprov.internal.engine.EngineSettings} what the builder hands it;
 * both are public only for the facade. Everything else here is package-private:
 *
 * <ul>
 *   <li>admission and dispatch ({@code Dispatcher}), the job's run through its stages
 *       ({@code JobRun}, {@code JobTracker}, {@code ImageFetch} with {@code Download},
 *       {@code JobVolume});</li>
 *   <li>the write path: {@code VolumeFill} and one implementation per way of filling a volume
 *       ({@code DecodingFill}, core's decoder while the image downloads, with the default
 *       converter; the others for a converter configured instead), behind {@code FencedWriter};</li>
 *   <li>the job store: {@code JobRecords} (every write, one retry mechanism, spaced by
 *       {@code Spacing}), {@code UnrecordedEnds} and {@code EndJournal} for the ends it did not
 *       take;</li>
 *   <li>leases and the fleet: {@code LeaseKeeper} and {@code JobLease}, {@code Recovery},
 *       {@code QueueWorker};</li>
 *   <li>the engine's threads ({@code EngineThreads}: jobs, download parts, decompression), its listeners ({@code JobEvents}), and the
 *       default {@code InProcessVolumeGuard}.</li>
 * </ul>
 */
package org.volprov.internal.engine;
