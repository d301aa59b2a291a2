/**
 * Helpers deliberately shared with adapter authors: configuration checks, PEM trust material,
 * redaction of secrets in messages, the local host's name, a stream that insists on its declared
 * length, retries with backoff, I/O error classification and the small JSON codec. Public and
 * kept compatible like the rest of the API; everything under {@code org.volprov.internal} is not.
 */
package org.volprov.support;
