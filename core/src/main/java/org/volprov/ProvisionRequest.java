package org.volprov;

import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Objects;
import java.util.Optional;
import java.util.regex.Pattern;
import org.volprov.image.ImageFormat;
import org.volprov.volume.VolumeNames;

/**
 * What to provision: an image into a named volume of a given size, or, of kind
 * {@link JobKind#PREFETCH} ({@link #prefetch}), an image into this host's cache only. Validated when
 * built; a bad field is refused with {@link ErrorCode#INVALID_REQUEST} and a message naming the
 * field and the rule. The configured maximum volume size and the source endpoint are checked again
 * at submit.
 *
 * @param imageUri {@code s3://bucket/key} or {@code http(s)://host[:port]/bucket/key}
 * @param volumeName see {@link VolumeNames}; null for a prefetch
 * @param volumeSizeBytes the volume's capacity, at least the image's virtual size; 0 for a prefetch
 * @param format the image format, {@link ImageFormat#AUTO} to detect it
 * @param correlationId an id of the caller's, echoed in logs and job records; may be null
 * @param labels the caller's key/value labels, stored with the job; never null
 * @param kind what the job does; null reads as {@link JobKind#PROVISION}
 */
public record ProvisionRequest(
        String imageUri,
        String volumeName,
        long volumeSizeBytes,
        ImageFormat format,
        String correlationId,
        Map<String, String> labels,
        JobKind kind) {

    /** The largest volume any request may ask for, whatever the engine's own limit: 1 PiB. */
    public static final long ABSOLUTE_MAX_VOLUME_BYTES = 1L << 50;
    private static final Pattern LABEL_KEY = Pattern.compile("[A-Za-z0-9][A-Za-z0-9._/-]{0,62}");
    private static final Pattern PRINTABLE = Pattern.compile("[\\p{Print}&&[^\\p{Cntrl}]]*");
    private static final int MAX_LABELS = 32;

    public ProvisionRequest {
        ImageRef.parseSyntax(requireNonBlank(imageUri, "imageUri"));
        kind = kind == null ? JobKind.PROVISION : kind;
        if (kind == JobKind.PREFETCH) {
            if (volumeName != null) {
                throw ProvisioningException.invalid("volumeName", "must not be set for a prefetch, which makes no volume");
            }
            if (volumeSizeBytes != 0) {
                throw ProvisioningException.invalid("volumeSizeBytes", "must be 0 for a prefetch, which makes no volume");
            }
        } else {
            VolumeNames.validate(volumeName);
            if (volumeSizeBytes <= 0) {
                throw ProvisioningException.invalid("volumeSizeBytes", "must be greater than 0");
            }
        }
        if (volumeSizeBytes > ABSOLUTE_MAX_VOLUME_BYTES) {
            throw ProvisioningException.invalid("volumeSizeBytes", "must be at most " + ABSOLUTE_MAX_VOLUME_BYTES);
        }
        if (format == null) {
            throw ProvisioningException.invalid("format", "must be one of QCOW2, RAW, AUTO");
        }
        if (correlationId != null) {
            if (correlationId.isBlank() || correlationId.length() > 128 || !PRINTABLE.matcher(correlationId).matches()) {
                throw ProvisioningException.invalid("correlationId", "must be 1-128 printable characters");
            }
        }
        labels = Map.copyOf(labels == null ? Map.of() : labels);
        if (labels.size() > MAX_LABELS) {
            throw ProvisioningException.invalid("labels", "at most " + MAX_LABELS + " labels");
        }
        labels.forEach((k, v) -> {
            if (!LABEL_KEY.matcher(k).matches()) {
                throw ProvisioningException.invalid("labels", "key '" + k + "' must be 1-63 of letters, digits, . _ / -");
            }
            if (v.length() > 256 || !PRINTABLE.matcher(v).matches()) {
                throw ProvisioningException.invalid("labels", "value of '" + k + "' must be at most 256 printable characters");
            }
        });
    }

    /** A request to provision, as every request was before kinds existed. */
    public ProvisionRequest(String imageUri, String volumeName, long volumeSizeBytes, ImageFormat format,
            String correlationId, Map<String, String> labels) {
        this(imageUri, volumeName, volumeSizeBytes, format, correlationId, labels, JobKind.PROVISION);
    }

    /**
     * A prefetch of {@code imageUri}, its format detected; {@link Builder#kind} with
     * {@link JobKind#PREFETCH} gives one with a format, a correlation id or labels.
     */
    public static ProvisionRequest prefetch(String imageUri) {
        return builder().kind(JobKind.PREFETCH).imageUri(imageUri).build();
    }

    /** The correlation id, when the caller gave one. */
    public Optional<String> correlation() {
        return Optional.ofNullable(correlationId);
    }

    public static Builder builder() {
        return new Builder();
    }

    private static String requireNonBlank(String value, String field) {
        if (value == null || value.isBlank()) {
            throw ProvisioningException.invalid(field, "must not be blank");
        }
        return value;
    }

    /** Builds a request; {@link #build()} validates every field. */
    public static final class Builder {
        private String imageUri;
        private String volumeName;
        private long volumeSizeBytes;
        private ImageFormat format = ImageFormat.AUTO;
        private String correlationId;
        private final Map<String, String> labels = new LinkedHashMap<>();
        private JobKind kind = JobKind.PROVISION;

        private Builder() {
        }

        /** What the job does; default {@link JobKind#PROVISION}. A prefetch sets no volume name or size. */
        public Builder kind(JobKind kind) {
            this.kind = Objects.requireNonNull(kind, "kind");
            return this;
        }

        public Builder imageUri(String imageUri) {
            this.imageUri = imageUri;
            return this;
        }

        public Builder volumeName(String volumeName) {
            this.volumeName = volumeName;
            return this;
        }

        public Builder volumeSizeBytes(long volumeSizeBytes) {
            this.volumeSizeBytes = volumeSizeBytes;
            return this;
        }

        public Builder format(ImageFormat format) {
            this.format = format;
            return this;
        }

        /** Parses a format name case-insensitively; an unknown name is refused naming {@code format}. */
        public Builder format(String format) {
            try {
                this.format = ImageFormat.valueOf(Objects.requireNonNull(format).trim().toUpperCase(java.util.Locale.ROOT));
            } catch (IllegalArgumentException | NullPointerException e) {
                throw ProvisioningException.invalid("format", "must be one of QCOW2, RAW, AUTO, not '" + format + "'");
            }
            return this;
        }

        public Builder correlationId(String correlationId) {
            this.correlationId = correlationId;
            return this;
        }

        public Builder label(String key, String value) {
            if (key == null || value == null) {
                throw ProvisioningException.invalid("labels", "keys and values must not be null");
            }
            labels.put(key, value);
            return this;
        }

        public ProvisionRequest build() {
            return new ProvisionRequest(imageUri, volumeName, volumeSizeBytes, format, correlationId, labels, kind);
        }
    }
}
