package org.volprov.support;

import java.net.InetAddress;
import java.net.UnknownHostException;

/** This machine's name, the default host id of the adapters and the start of a default engine id. */
public final class LocalHost {
    private LocalHost() {
    }

    /** The local host name; {@code HOSTNAME} when it cannot be resolved; {@code localhost} as a last resort. */
    public static String name() {
        try {
            return InetAddress.getLocalHost().getHostName();
        } catch (UnknownHostException e) {
            String env = System.getenv("HOSTNAME");
            return env == null || env.isBlank() ? "localhost" : env;
        }
    }
}
