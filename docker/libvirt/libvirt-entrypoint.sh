#!/bin/bash
# Starts libvirtd and an LVM "logical" storage pool on a loop-backed volume group.
# Environment: LVM_VG (volume group), LVM_SIZE (loop file size), POOL_NAME (libvirt pool),
# LOOP_FILE (backing file; keep it on a volume, not on the overlay file system).
set -euo pipefail

LVM_VG="${LVM_VG:-volprov_vg}"
LVM_SIZE="${LVM_SIZE:-4G}"
POOL_NAME="${POOL_NAME:-volprov-lvm}"
LOOP_FILE="${LOOP_FILE:-/var/lib/volprov/lvm.img}"

mkdir -p "$(dirname "$LOOP_FILE")" /var/log/libvirt /run/libvirt /run/lvm

if [ ! -f "$LOOP_FILE" ]; then
  truncate -s "$LVM_SIZE" "$LOOP_FILE"
fi
LOOP="$(losetup -j "$LOOP_FILE" | cut -d: -f1 | head -n1)"
if [ -z "$LOOP" ]; then
  LOOP="$(losetup -f --show "$LOOP_FILE")"
fi
echo "loop device: $LOOP"

if ! vgs "$LVM_VG" >/dev/null 2>&1; then
  pvcreate -ff -y "$LOOP"
  vgcreate "$LVM_VG" "$LOOP"
fi
vgchange -ay "$LVM_VG"

/usr/sbin/virtlogd -d
/usr/sbin/libvirtd --listen &
LIBVIRTD_PID=$!

cleanup() {
  virsh -c qemu:///system pool-destroy "$POOL_NAME" >/dev/null 2>&1 || true
  kill "$LIBVIRTD_PID" 2>/dev/null || true
  wait "$LIBVIRTD_PID" 2>/dev/null || true
  vgchange -an "$LVM_VG" || true
  losetup -d "$LOOP" || true
}
trap cleanup TERM INT

for _ in $(seq 1 60); do
  virsh -c qemu:///system version >/dev/null 2>&1 && break
  sleep 1
done
virsh -c qemu:///system version

if ! virsh -c qemu:///system pool-info "$POOL_NAME" >/dev/null 2>&1; then
  cat > /tmp/pool.xml <<XML
<pool type='logical'>
  <name>${POOL_NAME}</name>
  <source>
    <name>${LVM_VG}</name>
    <format type='lvm2'/>
  </source>
  <target>
    <path>/dev/${LVM_VG}</path>
  </target>
</pool>
XML
  virsh -c qemu:///system pool-define /tmp/pool.xml
fi
if ! virsh -c qemu:///system pool-info "$POOL_NAME" | grep -q '^State:.*running'; then
  virsh -c qemu:///system pool-start "$POOL_NAME"
fi
virsh -c qemu:///system pool-autostart "$POOL_NAME"
virsh -c qemu:///system pool-info "$POOL_NAME"

wait "$LIBVIRTD_PID"
