package org.volprov.job;

import java.time.Instant;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.volprov.ErrorCode;
import org.volprov.Job;
import org.volprov.JobKind;
import org.volprov.JobState;
import org.volprov.Progress;
import org.volprov.ProvisionRequest;
import org.volprov.Stage;
import org.volprov.image.ImageFormat;
import org.volprov.support.Json;

/**
 * Requests and jobs as JSON objects, with {@link Json}: what a job store keeps of a request, and
 * what the engine keeps of a job on local disk. Reading goes through the records' own validation,
 * so a record that breaks a rule fails as that rule says ({@link org.volprov.ProvisioningException}
 * {@code INVALID_REQUEST}); text that is not such an object fails with
 * {@link IllegalArgumentException}.
 */
public final class JobJson {
    private JobJson() {
    }

    public static String writeRequest(ProvisionRequest r) {
        return Json.write(request(r));
    }

    public static ProvisionRequest readRequest(String json) {
        return request(object(Json.parse(json), "a request"));
    }

    public static String writeJob(Job j) {
        return Json.write(jobObject(j));
    }

    public static Job readJob(String json) {
        return job(Json.parse(json));
    }

    /** {@code j} as a map for {@link Json#write}, to nest in a larger object. */
    public static Map<String, Object> jobObject(Job j) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("id", j.id());
        m.put("request", request(j.request()));
        m.put("state", j.state());
        m.put("stage", j.progress().stage());
        m.put("bytesDone", j.progress().bytesDone());
        m.put("bytesTotal", j.progress().bytesTotal());
        m.put("errorCode", j.errorCode());
        m.put("errorMessage", j.errorMessage());
        m.put("cacheHit", j.cacheHit());
        m.put("imageDigest", j.imageDigest());
        m.put("volumePath", j.volumePath());
        m.put("createdVolume", j.createdVolume());
        m.put("attempts", j.attempts());
        m.put("createdAt", time(j.createdAt()));
        m.put("startedAt", time(j.startedAt()));
        m.put("updatedAt", time(j.updatedAt()));
        m.put("finishedAt", time(j.finishedAt()));
        return m;
    }

    /** The job that {@code parsed} (the output of {@link Json#parse}) describes. */
    public static Job job(Object parsed) {
        Map<?, ?> m = object(parsed, "a job");
        Object code = m.get("errorCode");
        try {
            return new Job(
                    (String) m.get("id"),
                    request(object(m.get("request"), "a job's request")),
                    JobState.valueOf((String) m.get("state")),
                    new Progress(Stage.parse((String) m.get("stage")), number(m, "bytesDone"), number(m, "bytesTotal")),
                    code == null ? null : ErrorCode.valueOf((String) code),
                    (String) m.get("errorMessage"),
                    Boolean.TRUE.equals(m.get("cacheHit")),
                    (String) m.get("imageDigest"),
                    (String) m.get("volumePath"),
                    Boolean.TRUE.equals(m.get("createdVolume")),
                    (int) number(m, "attempts"),
                    time((String) m.get("createdAt")),
                    time((String) m.get("startedAt")),
                    time((String) m.get("updatedAt")),
                    time((String) m.get("finishedAt")));
        } catch (ClassCastException | NullPointerException | java.time.format.DateTimeParseException e) {
            throw new IllegalArgumentException("not a job record: " + e.getMessage(), e);
        }
    }

    private static Map<String, Object> request(ProvisionRequest r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("imageUri", r.imageUri());
        m.put("volumeName", r.volumeName());
        m.put("volumeSizeBytes", r.volumeSizeBytes());
        m.put("format", r.format());
        if (r.correlationId() != null) {
            m.put("correlationId", r.correlationId());
        }
        m.put("labels", new TreeMap<>(r.labels()));
        m.put("kind", r.kind());
        return m;
    }

    private static ProvisionRequest request(Map<?, ?> m) {
        Map<String, String> labels = new LinkedHashMap<>();
        if (m.get("labels") instanceof Map<?, ?> l) {
            l.forEach((k, v) -> labels.put(String.valueOf(k), String.valueOf(v)));
        }
        Object size = m.get("volumeSizeBytes");
        ImageFormat format;
        try {
            format = ImageFormat.valueOf(String.valueOf(m.get("format")));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("a stored request has no valid format: " + m.get("format"), e);
        }
        return new ProvisionRequest(
                m.get("imageUri") instanceof String s ? s : null,
                m.get("volumeName") instanceof String s ? s : null,
                size instanceof Number n ? n.longValue() : -1,
                format,
                m.get("correlationId") instanceof String s ? s : null,
                labels,
                kind(m.get("kind")));
    }

    /** A request stored before kinds existed has none, and was a provision. */
    private static JobKind kind(Object stored) {
        if (stored == null) {
            return JobKind.PROVISION;
        }
        try {
            return JobKind.valueOf(String.valueOf(stored));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("a stored request has no valid kind: " + stored, e);
        }
    }

    private static Map<?, ?> object(Object parsed, String what) {
        if (!(parsed instanceof Map<?, ?> m)) {
            throw new IllegalArgumentException(what + " must be a JSON object");
        }
        return m;
    }

    private static long number(Map<?, ?> m, String key) {
        if (!(m.get(key) instanceof Number n)) {
            throw new IllegalArgumentException("not a job record: " + key + " is not a number");
        }
        return n.longValue();
    }

    private static String time(Instant t) {
        return t == null ? null : t.toString();
    }

    private static Instant time(String s) {
        return s == null ? null : Instant.parse(s);
    }
}
