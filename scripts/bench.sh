#!/usr/bin/env bash
# Runs the JMH copy-throughput suite and, in the same run, the standard tools that give each
# stage's physical limit (dd conv=fdatasync, curl, openssl dgst, qemu-img convert, and dd
# oflag=direct onto a partition of the loop device under the libvirt disk pool); prints one
# table in MB/s (10^6 bytes per second) with the ratio of each stage to its limit. As root it also
# shapes a link to 1 Gbit/s in front of the S3 server (scripts/shaped-link.sh: a network
# namespace, a veth pair, tbf on both ends) and times the cold job and curl across it.
#
# Usage: scripts/bench.sh [options] [-- extra JMH options]
#   --size MiB      object and image size (default 1024; env BENCH_SIZE_MIB)
#   --quick         64 MiB, no JMH warmup, 1 iteration, 1 run of each tool: checks that everything
#                   runs in a few minutes; its figures are rough
#   --iterations N  JMH measurement iterations (default 8); --warmups N JMH warmups (default 2)
#   --runs N        timed runs of each tool, after one untimed run (default 3)
#   --only REGEX    run only the JMH benchmarks matching REGEX (the tools run anyway)
#   --out DIR       results: table.md, jmh.json, jmh.log, baselines.properties, meta.properties,
#                   server.log (default benchmarks/target/bench-results; env BENCH_OUT)
#   --work DIR      images, the S3 server's store, caches and volumes: put it on the disk to be
#                   measured; needs about 8 x the size free (default benchmarks/target/bench-work;
#                   env BENCH_WORK). The images are kept there and reused by the next run.
#   --no-build      use the existing benchmarks/target/benchmarks.jar
# The default run (1024 MiB) took 8 minutes on the 2-core VM of the README's table; expect up to
# about 25 on a slow disk; the first run of a size also makes the images (about a minute).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

size=${BENCH_SIZE_MIB:-1024}
out=${BENCH_OUT:-benchmarks/target/bench-results}
work=${BENCH_WORK:-benchmarks/target/bench-work}
warmups=2
iterations=8
runs=3
only=()
build=1
extra=()
args="$*"
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift 2 ;;
    --quick) size=64; warmups=0; iterations=1; runs=1; shift ;;
    --iterations) iterations=$2; shift 2 ;;
    --warmups) warmups=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --only) only=("$2"); shift 2 ;;
    --out) out=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --no-build) build=0; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ?/, ""); print }' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$size" in ''|*[!0-9]*) echo "--size must be a number of MiB" >&2; exit 2 ;; esac
mkdir -p "$out" "$work"
out=$(cd "$out" && pwd)
work=$(cd "$work" && pwd)
jar=$root/benchmarks/target/benchmarks.jar
log() { printf '[bench] %s\n' "$*"; }

# --- tools ------------------------------------------------------------------------------------
# A JDK, Maven and qemu-img come from the project's setup script; the rest is only needed here.
bash scripts/setup.sh demo
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi; }
missing=()
ensure() { # ensure <command> <Debian package>
  command -v "$1" >/dev/null 2>&1 && return 0
  log "installing $2 from Debian's packages"
  { as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2"; } >/dev/null 2>&1 || true
  command -v "$1" >/dev/null 2>&1 || { missing+=("$1 (Debian package $2)"); return 1; }
}
ensure curl curl || true
ensure openssl openssl || true
ensure dd coreutils || true
libvirt=1
if ! virsh -c qemu:///system version >/dev/null 2>&1; then
  command -v libvirtd >/dev/null 2>&1 || ensure virsh libvirt-daemon-system || true
  if command -v libvirtd >/dev/null 2>&1; then
    log "starting libvirtd"
    as_root mkdir -p /var/log/libvirt >/dev/null 2>&1 || true
    as_root libvirtd -d >/dev/null 2>&1 || true
    for _ in $(seq 1 60); do virsh -c qemu:///system version >/dev/null 2>&1 && break; sleep 0.5; done
  fi
  virsh -c qemu:///system version >/dev/null 2>&1 || { libvirt=0; missing+=("a running libvirtd at qemu:///system"); }
fi
if [ ${#missing[@]} -gt 0 ]; then
  log "missing, so their rows will read n/a:"
  printf '  - %s\n' "${missing[@]}"
fi

avail_mib=$(df -Pm "$work" | awk 'NR == 2 { print $4 }')
if [ "$avail_mib" -lt $((size * 8)) ]; then
  echo "[bench] $work has $avail_mib MiB free; a run of $size MiB needs about $((size * 8)) MiB (use --work or --size)" >&2
  exit 1
fi

if [ $build -eq 1 ] || [ ! -f "$jar" ]; then
  log "building $jar"
  mvn -B -ntp -q -pl benchmarks -am package -DskipTests
fi

# --- the S3 server: one process for the JMH forks and for curl ---------------------------------
server_pid=
link_name=
disk_pool=
loop_dev=
loop_dir=$work/loop
cleanup() {
  if [ -n "$link_name" ]; then
    bash scripts/shaped-link.sh down "$link_name" || true
  fi
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  if [ -n "$disk_pool" ]; then
    virsh -q -c qemu:///system pool-destroy "$disk_pool" >/dev/null 2>&1 || true
  fi
  # Only the loop device this run attached, and only while it is still over this run's file.
  if [ -n "$loop_dev" ] && [ "$(losetup -n -O BACK-FILE "$loop_dev" 2>/dev/null)" = "$loop_dir/disk.img" ]; then
    losetup -d "$loop_dev" || true
  fi
  rm -rf "$work/scratch" "$work/baseline" "$work/tmp" "$work/server.properties" "$loop_dir"
}
trap cleanup EXIT
rm -f "$work/server.properties" "$out"/{jmh.json,jmh.log,baselines.properties,table.md}
mkdir -p "$work/tmp"
log "starting the S3 server with objects of $size MiB (making the images the first time takes a while)"
# Unset: the figures come from the embedded server, never from whatever a test run points at.
env -u TEST_MINIO_ENDPOINT -u TEST_MINIO_ACCESS_KEY -u TEST_MINIO_SECRET_KEY \
  java -Djava.io.tmpdir="$work/tmp" -cp "$jar" org.volprov.benchmarks.BenchServer "$work" "$size" \
  >"$out/server.log" 2>&1 &
server_pid=$!
until [ -f "$work/server.properties" ]; do
  if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "[bench] the S3 server stopped; see $out/server.log:" >&2
    tail -n 20 "$out/server.log" >&2
    exit 1
  fi
  sleep 1
done
prop() { grep "^$1=" "$work/server.properties" | cut -d= -f2-; }
images=$(prop images)
bytes=$((size * 1024 * 1024))

# --- the link shaped to 1 Gbit/s: the same server, reached through the kernel's shaper -----------
server_port=$(prop endpoint | sed 's|.*:\([0-9]*\)/*$|\1|')
link=
link_note="no shaped link (needs root, ip, tc, socat, nsenter): the shaped rows read n/a"
if [ "$(id -u)" -eq 0 ] && link=$(bash scripts/shaped-link.sh up "b$$" "$server_port" 1gbit); then
  link_name=b$$
  link_note="1 Gbit/s: tbf (burst 256 KiB, 10 ms queue) on both ends of a veth pair into network namespace vpl-$link_name; socat there forwards to the server; clients connect to $link"
else
  link=
fi

# --- the run's description --------------------------------------------------------------------
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
disk=$(df -PT "$work" | awk 'NR == 2 { print $2 " on " $1 }')
{
  echo "date=$(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "command=scripts/bench.sh${args:+ $args}"
  echo "machine=${cpu:-unknown CPU}, $(nproc) cores, ${mem:-? GiB} RAM, Linux $(uname -r)"
  echo "disk=work directory on $disk"
  echo "size=$size MiB objects and images (virtual size), $bytes bytes"
  echo "server=$(prop server) on 127.0.0.1, one process for JMH and curl"
  echo "jmh=1 fork, $warmups warmup and $iterations measured iterations per benchmark, one full copy per operation"
  echo "baselines=mean of $runs timed runs of each tool after one untimed run"
  echo "tools=$(java -version 2>&1 | head -n 1); $(qemu-img --version | head -n 1); $(curl --version 2>/dev/null | head -n 1 | cut -d' ' -f1-2); $(openssl version 2>/dev/null)"
} >"$out/meta.properties"

# --- a libvirt disk pool on a loop device: dd and the libvirt-disk benchmarks write the same device
# (a block device, as an LV is). Its source device is a link named loopNp, so that libvirt can
# delete the partitions it makes (see the adapter's README).
disk_note="no disk pool (needs root, losetup, parted and libvirtd): the disk pool rows read n/a"
if [ $libvirt -eq 1 ] && [ "$(id -u)" -eq 0 ] && command -v losetup >/dev/null && command -v parted >/dev/null; then
  rm -rf "$loop_dir" && mkdir -p "$loop_dir"
  truncate -s $(((size + 4) * 1024 * 1024)) "$loop_dir/disk.img"
  if loop_dev=$(losetup -f --show -P "$loop_dir/disk.img") && parted -s "$loop_dev" mklabel gpt; then
    ln -s "$loop_dev" "$loop_dir/$(basename "$loop_dev")p"
    cat >"$loop_dir/pool.xml" <<XML
<pool type='disk'><name>volprov-bench-disk-$$</name><source><device path='$loop_dir/$(basename "$loop_dev")p'/><format type='gpt'/></source><target><path>/dev</path></target></pool>
XML
    if virsh -q -c qemu:///system pool-create "$loop_dir/pool.xml" >/dev/null; then
      disk_pool=volprov-bench-disk-$$
      disk_note="$loop_dev over a file in the work directory; disk pool $disk_pool"
    fi
  else
    loop_dev=
  fi
fi
echo "loop=$disk_note" >>"$out/meta.properties"
echo "link=$link_note" >>"$out/meta.properties"

# --- baselines: the standard tools on the same bytes --------------------------------------------
base=$work/baseline
mkdir -p "$base"
now() { date +%s%N; }
# measure <name> <bytes> <command...>: one untimed run, then $runs timed ones; seconds appended to <name>.
measure() {
  local name=$1 n=$2 times="" t0 t1
  shift 2
  "$@" || { log "$name failed; its row will read n/a"; return 0; }
  for _ in $(seq 1 "$runs"); do
    t0=$(now)
    "$@" || { log "$name failed; its row will read n/a"; return 0; }
    t1=$(now)
    times="$times $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.6f", (b - a) / 1e9 }')"
  done
  echo "$name=$n$times" >>"$out/baselines.properties"
  log "$name: $(awk -v n="$n" -v t="$times" 'BEGIN { k = split(t, s, " "); for (i = 1; i <= k; i++) r += n / s[i] / 1e6; printf "%.0f MB/s", r / k }')"
}
dd_write() { rm -f "$base/dd.out"; dd if="$images/object.bin" of="$base/dd.out" bs=1M conv=fdatasync status=none; }
curl_get() {
  local got
  got=$(curl -sS --fail -o /dev/null -w '%{size_download}' "$(prop objectUrl)") && [ "$got" -eq "$bytes" ]
}
# The image the cold job provisions, across the shaped link: curl connects to the link and sends the
# server's own host name, which the presigned URL's signature covers. Timed per byte of the image's
# virtual size, as the job is, so that the two rates' ratio is the inverse of the two times'.
curl_shaped() {
  local got want
  want=$(stat -c %s "$images/random.qcow2")
  got=$(curl -sS --fail -o /dev/null -w '%{size_download}' --connect-to "127.0.0.1:$server_port:${link%:*}:${link##*:}" \
    "$(prop imageUrl)") && [ "$got" -eq "$want" ]
}
hash_file() { openssl dgst -sha256 "$images/object.bin" >/dev/null; }
qemu_convert() { rm -f "$base/convert.raw"; qemu-img convert -f "$1" -O raw "$2" "$base/convert.raw"; }
: >"$out/baselines.properties"
log "baselines ($runs runs each)"
command -v dd >/dev/null && measure dd "$bytes" dd_write
command -v curl >/dev/null && measure curl "$bytes" curl_get
if [ -n "$link" ] && command -v curl >/dev/null; then measure curl.shaped "$bytes" curl_shaped; fi
command -v openssl >/dev/null && measure openssl "$bytes" hash_file
measure qemu-img.random "$bytes" qemu_convert qcow2 "$images/random.qcow2"
measure qemu-img.halfzero "$bytes" qemu_convert qcow2 "$images/halfzero.qcow2"
measure qemu-img.compressed "$bytes" qemu_convert qcow2 "$images/compressed.qcow2"
measure qemu-img.raw "$bytes" qemu_convert raw "$images/object.bin"
if [ -n "$disk_pool" ]; then
  # The partition the benchmarks' volumes are made in next: the first, at the same offset.
  part=$(basename "$loop_dev")p1
  dd_loop() { dd if="$images/object.bin" of="/dev/$part" bs=1M oflag=direct conv=fsync status=none; }
  # The same through the page cache, as the engine's LOCAL writer writes: it tells the cache's cost apart.
  dd_loop_cached() { dd if="$images/object.bin" of="/dev/$part" bs=1M conv=fsync status=none; }
  if virsh -q -c qemu:///system vol-create-as "$disk_pool" "$part" "$bytes" >/dev/null; then
    measure dd.loop "$bytes" dd_loop
    measure dd.loop.cached "$bytes" dd_loop_cached
    virsh -q -c qemu:///system vol-delete --pool "$disk_pool" "$part" >/dev/null
  else
    log "cannot make partition $part in $disk_pool; the dd oflag=direct row will read n/a"
  fi
fi
rm -rf "$base"

# --- JMH --------------------------------------------------------------------------------------
log "JMH suite at $size MiB"
if [ $libvirt -eq 0 ]; then log "libvirtd does not answer: the libvirt benchmarks will fail and read n/a"; fi
set +e
VOLPROV_BENCH_FIXTURE=$work/server.properties VOLPROV_BENCH_WORK=$work VOLPROV_BENCH_DISK_POOL=$disk_pool \
  VOLPROV_BENCH_SHAPED_LINK=$link \
  java -jar "$jar" -p sizeMiB="$size" -wi "$warmups" -i "$iterations" \
  -rf json -rff "$out/jmh.json" "${only[@]}" "${extra[@]}" 2>&1 | tee "$out/jmh.log"
jmh_status=${PIPESTATUS[0]}
set -e
[ "$jmh_status" -eq 0 ] || log "JMH exited with $jmh_status; see $out/jmh.log (failed benchmarks read n/a)"

java -cp "$jar" org.volprov.benchmarks.Report "$out/jmh.json" "$out/baselines.properties" "$out/meta.properties" \
  >"$out/table.md"
echo
cat "$out/table.md"
echo
log "table: $out/table.md; raw JMH results: $out/jmh.json"
