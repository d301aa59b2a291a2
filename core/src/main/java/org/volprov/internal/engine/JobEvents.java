package org.volprov.internal.engine;

import java.util.List;
import java.util.Objects;
import java.util.concurrent.CopyOnWriteArrayList;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.volprov.Job;
import org.volprov.JobEvent;
import org.volprov.JobListener;

/** The engine's listeners: every job's events go to each, and a failing listener affects nothing else. Thread-safe. */
final class JobEvents {
    private static final Logger LOG = LoggerFactory.getLogger(JobEvents.class);

    private final List<JobListener> listeners = new CopyOnWriteArrayList<>();

    JobEvents(List<JobListener> initial) {
        listeners.addAll(initial);
    }

    void add(JobListener listener) {
        listeners.add(Objects.requireNonNull(listener, "listener"));
    }

    void remove(JobListener listener) {
        listeners.remove(listener);
    }

    void publish(JobEvent.Kind kind, Job job) {
        JobEvent event = new JobEvent(kind, job);
        for (JobListener l : listeners) {
            try {
                l.onEvent(event);
            } catch (RuntimeException e) {
                LOG.warn("listener {} failed on {} of job {}: {}", l, kind, job.id(), e.toString());
                LOG.debug("listener failure", e);
            }
        }
    }
}
