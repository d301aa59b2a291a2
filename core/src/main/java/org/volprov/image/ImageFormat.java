package org.volprov.image;

/** The format of a source image. {@code AUTO} detects it from the image's first bytes. */
public enum ImageFormat {
    QCOW2,
    RAW,
    AUTO
}
