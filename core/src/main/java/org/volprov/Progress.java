package org.volprov;

/**
 * Progress within a stage.
 *
 * @param stage the stage this progress belongs to
 * @param bytesDone bytes handled so far in this stage
 * @param bytesTotal bytes the stage will handle, 0 when unknown
 */
public record Progress(Stage stage, long bytesDone, long bytesTotal) {
    public Progress {
        if (stage == null) {
            throw new IllegalArgumentException("stage must not be null");
        }
        if (bytesDone < 0 || bytesTotal < 0) {
            throw new IllegalArgumentException("byte counts must not be negative");
        }
    }

    public static Progress of(Stage stage) {
        return new Progress(stage, 0, 0);
    }

    /** Percent done in this stage, 0 to 100; 0 when the total is unknown. */
    public double percent() {
        return bytesTotal == 0 ? 0 : Math.min(100.0, 100.0 * bytesDone / bytesTotal);
    }
}
