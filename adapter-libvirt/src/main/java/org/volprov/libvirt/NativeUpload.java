package org.volprov.libvirt;

import com.sun.jna.Native;
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
 * {@code virStorageVolUpload}, which libvirt-java 0.5.2 does not bind (it has streams but no
 * {@code StorageVol.upload}). One native function declared here; the volume and stream pointers
 * come from libvirt-java's objects through reflection on its package-private members
 * ({@code StorageVol.vsvp}, {@code Stream.getVsp()}), which is why the libvirt-java version is
 * pinned. Everything else on the stream (send, finish, abort, free) is libvirt-java's own API.
 */
final class NativeUpload {
    private interface Virt extends com.sun.jna.Library {
        int virStorageVolUpload(StorageVolPointer vol, StreamPointer stream, long offset, long length, int flags);

        virError virGetLastError();
    }

    private static final Virt VIRT;
    private static final Field VOL_POINTER;
    private static final Method STREAM_POINTER;
    private static final Throwable UNAVAILABLE;

    static {
        Virt virt = null;
        Field vol = null;
        Method stream = null;
        Throwable failure = null;
        try {
            virt = Native.load("virt", Virt.class);
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
    }

    private NativeUpload() {
    }

    /**
     * Binds {@code stream} to an upload of {@code length} bytes into {@code vol} from {@code offset}.
     *
     * @throws ProvisioningException {@code BACKEND_FAILURE} with libvirt's message
     */
    static void start(StorageVol vol, Stream stream, long offset, long length, String volumeName) {
        if (UNAVAILABLE != null) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "STREAM write mode is unavailable: this libvirt-java "
                    + "build does not expose what virStorageVolUpload needs (" + UNAVAILABLE + "); use WriteMode.LOCAL", UNAVAILABLE);
        }
        StorageVolPointer volPointer;
        StreamPointer streamPointer;
        try {
            volPointer = (StorageVolPointer) VOL_POINTER.get(vol);
            streamPointer = (StreamPointer) STREAM_POINTER.invoke(stream);
        } catch (ReflectiveOperationException e) {
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot reach libvirt-java's volume or stream handle", e);
        }
        if (VIRT.virStorageVolUpload(volPointer, streamPointer, offset, length, 0) < 0) {
            // libvirt keeps the last error per thread, so this is ours.
            virError err = VIRT.virGetLastError();
            String message = err == null ? "unknown error" : err.message + " (libvirt error code " + err.code + ")";
            throw new ProvisioningException(ErrorCode.BACKEND_FAILURE, "cannot start upload to volume " + volumeName + ": " + message);
        }
    }
}
