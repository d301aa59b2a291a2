/**
 * Where jobs are recorded: the {@link org.volprov.job.JobStore} extension point, the fleet's
 * {@link org.volprov.job.JobQueue}, and the embedded default.
 *
 * <ul>
 *   <li>{@link org.volprov.job.JobStore}: every state change of a job, and the engines' leases;</li>
 *   <li>{@link org.volprov.job.JobQueue}: a store that also hands queued jobs to the engines of a fleet;</li>
 *   <li>{@link org.volprov.job.InMemoryJobStore}: the embedded default (one process), bounded;</li>
 *   <li>{@link org.volprov.job.JobJson}: the one JSON form of a job, shared by the stores that keep
 *       jobs as documents.</li>
 * </ul>
 */
package org.volprov.job;
