package org.volprov;

/**
 * Receives job events. Called on the job's own thread, in order for one job; keep it quick and do
 * not block. An exception thrown by a listener is logged and does not affect the job.
 */
@FunctionalInterface
public interface JobListener {
    void onEvent(JobEvent event);
}
