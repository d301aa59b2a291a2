package org.volprov.jdbc;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.TreeMap;
import org.volprov.ImageFormat;
import org.volprov.ProvisionRequest;
import org.volprov.internal.Json;

/** A {@link ProvisionRequest} as the JSON object the jobs table keeps, with core's JSON helper. */
final class RequestJson {
    private RequestJson() {
    }

    static String write(ProvisionRequest r) {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("imageUri", r.imageUri());
        m.put("volumeName", r.volumeName());
        m.put("volumeSizeBytes", r.volumeSizeBytes());
        m.put("format", r.format());
        if (r.correlationId() != null) {
            m.put("correlationId", r.correlationId());
        }
        m.put("labels", new TreeMap<>(r.labels()));
        return Json.write(m);
    }

    /** The request back; a record that no longer validates fails as the request's own checks say. */
    static ProvisionRequest read(String json) {
        Object parsed = Json.parse(json);
        if (!(parsed instanceof Map<?, ?> m)) {
            throw new IllegalArgumentException("a stored request must be a JSON object, got " + json);
        }
        Map<String, String> labels = new LinkedHashMap<>();
        if (m.get("labels") instanceof Map<?, ?> l) {
            l.forEach((k, v) -> labels.put(String.valueOf(k), String.valueOf(v)));
        }
        Object size = m.get("volumeSizeBytes");
        return new ProvisionRequest(
                (String) m.get("imageUri"),
                (String) m.get("volumeName"),
                size instanceof Number n ? n.longValue() : -1,
                ImageFormat.valueOf(String.valueOf(m.get("format"))),
                (String) m.get("correlationId"),
                labels);
    }
}
