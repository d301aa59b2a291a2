package org.volprov.libvirt;

import com.sun.jna.Native;
import com.sun.jna.NativeLibrary;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import org.libvirt.StorageVol;
import org.libvirt.Stream;
import org.libvirt.jna.StorageVolPointer;
import org.libvirt.jna.StreamPointer;
import org.libvirt.jna.virError;
import org.volprov.ErrorCode;
import org.volprov.ProvisioningException;

/**
 * {@code virStorageVolUpload} and {@code virStreamSendHole}, which libvirt-java 0.5.2 does not bind
 * (it has streams but no {@code StorageVol.upload} and no sparse streams). The native functions are
 * declared here; the volume and stream pointers come from libvirt-java's objects through reflection
 * on its package-private members ({@code StorageVol.vsvp}, {@code Stream.getVsp()}), which is why
 * the libvirt-java version is pinned. Everything else on the stream (send, finish, abort, free) is
 * libvirt-java's own API.
 */
final class NativeUpload {
    private interface Virt extends com.sun.jna.Library {
        int virStorageVolUpload(StorageVolPointer vol, StreamPointer stream, long offset, long length, int flags);

        int virStreamSendHole(StreamPointer stream, long length, int flags);

        virError virGetLastError();
    }

    /** {@code VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM}: the stream may carry holes. */
    private static final int UPLOAD_SPARSE_STREAM = 1;
    private static final Virt VIRT;
    /** Whether the client library has {@code virStreamSendHole} (libvirt 3.4 and later). */
    private static final boolean HOLES;
    private static final Field VOL_POINTER;
    private static final Method STREAM_POINTER;
    private static final Throwable UNAVAILABLE;

    static {
        Virt virt = null;
        Field vol = null;
        Method stream = null;
        Throwable failure = null;
        boolean holes = false;
        try {
            virt = Native.load("virt", Virt.class);
            holes = hasFunction("virStreamSendHole");
            vol = StorageVol.class.getDeclaredField("vsvp");
            vol.setAccessible(true);
            stream = Stream.class.getDeclaredMethod("getVsp");
            stream.setAccessible(true);
        } catch (ReflectiveOperationException | RuntimeException | LinkageError e) {
            failure = e;
        }
        VIRT = virt;
        VOL_POINTER = vol;
        STREAM_POINTER = stream;
        UNAVAILABLE = failure;
        HOLES = holes;
    }

    private static boolean hasFunction(String name) {
        try {
            NativeLibrary.getInstance("virt").getFunction(name);
            return true;
        } catch (UnsatisfiedLinkError e) {
            return false;
        }
    }

    /** Whether this client can send holes; the daemon may still refuse a sparse upload. */
    static boolean holesAvailable() {
        return UNAVAILABLE == null && HOLES;
    }

    private NativeUpload() {
    }

    /**
     * Binds {@code stream} to an upload of {@code length} bytes into {@code vol} from {@code offset};
     * {@code sparse} lets it carry holes ({@link #sendHole}).
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} with libvirt's message
     */
    static void start(StorageVol vol, Stream stream, long offset, long length, String volumeName, boolean sparse) {
        if (UNAVAILABLE != null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "STREAM write mode is unavailable: this libvirt-java "
                    + "build does not expose what virStorageVolUpload needs (" + UNAVAILABLE + "); use WriteMode.LOCAL", UNAVAILABLE);
        }
        StorageVolPointer volPointer;
        try {
            volPointer = (StorageVolPointer) VOL_POINTER.get(vol);
        } catch (ReflectiveOperationException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot reach libvirt-java's volume handle", e);
        }
        if (VIRT.virStorageVolUpload(volPointer, pointer(stream), offset, length, sparse ? UPLOAD_SPARSE_STREAM : 0) < 0) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot start upload to volume " + volumeName + ": "
                    + lastError());
        }
    }

    /**
     * Sends a hole of {@code length} bytes on a sparse upload: the target reads as zero there.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} with libvirt's message
     */
    static void sendHole(Stream stream, long length, String volumeName) {
        if (!holesAvailable()) {
            throw new IllegalStateException("virStreamSendHole is not available");
        }
        if (VIRT.virStreamSendHole(pointer(stream), length, 0) < 0) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "sending a hole of " + length + " bytes to volume "
                    + volumeName + ": " + lastError());
        }
    }

    private static StreamPointer pointer(Stream stream) {
        try {
            return (StreamPointer) STREAM_POINTER.invoke(stream);
        } catch (ReflectiveOperationException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot reach libvirt-java's stream handle", e);
        }
    }

    /** libvirt keeps the last error per thread, so it is the failed call's. */
    private static String lastError() {
        virError err = VIRT.virGetLastError();
        return err == null ? "unknown error" : err.message + " (libvirt error code " + err.code + ")";
    }
}
