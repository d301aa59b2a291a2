#!/usr/bin/env bash
# Installs or starts what the build and the tests need on a Debian host, and says what is
# missing when it cannot. Usage: scripts/setup.sh [demo|test]
#   demo: a JDK 17, Maven and qemu-utils (the embedded defaults need nothing else)
#   test: also libvirtd, PostgreSQL and Redis on 127.0.0.1, and what the block-device tests need
#         (root, loop devices, parted for libvirt's disk pools; TEST_LOOP_DEVICES=off skips them)
#         and the shaped link's tools (iproute2's ip and tc, nsenter, socat)
set -uo pipefail
what=${1:-test}
missing=()
log() { printf '[setup] %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo -n "$@"; else return 1; fi
}

apt_updated=0
apt_install() {
  command -v apt-get >/dev/null || return 1
  if [ $apt_updated -eq 0 ]; then
    as_root apt-get update -qq >/dev/null 2>&1 || return 1
    apt_updated=1
  fi
  log "installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
    -o Dpkg::Options::=--force-confnew -o Dpkg::Options::=--force-confdef "$@" >/dev/null 2>&1
}

need_cmd() { # need_cmd <command> <package>
  command -v "$1" >/dev/null 2>&1 && return 0
  apt_install "$2" && command -v "$1" >/dev/null 2>&1 && return 0
  missing+=("$1 (Debian package $2)")
  return 1
}

wait_for() { # wait_for <seconds> <command...>
  local t=$1; shift
  for _ in $(seq 1 $((t * 4))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.25; done
  return 1
}

# --- build tools -----------------------------------------------------------------------------
if ! java -version 2>&1 | grep -qE 'version "(1[7-9]|[2-9][0-9])'; then
  apt_install openjdk-17-jdk-headless || missing+=("a JDK 17 or newer (Debian package openjdk-17-jdk-headless)")
fi
need_cmd mvn maven
need_cmd qemu-img qemu-utils
need_cmd sha256sum coreutils

if [ "$what" = test ]; then
  # --- libvirtd ---------------------------------------------------------------------------------
  if ! command -v libvirtd >/dev/null 2>&1 || ! ldconfig -p 2>/dev/null | grep -q 'libvirt.so.0'; then
    apt_install libvirt-daemon-system libvirt0 || true
  fi
  if command -v libvirtd >/dev/null 2>&1; then
    if ! virsh -c qemu:///system version >/dev/null 2>&1; then
      log "starting libvirtd"
      as_root mkdir -p /var/log/libvirt
      as_root libvirtd -d >/dev/null 2>&1 || true
      wait_for 30 virsh -c qemu:///system version || missing+=("a running libvirtd (libvirtd -d failed; see /var/log/libvirt)")
    fi
  else
    missing+=("libvirtd (Debian package libvirt-daemon-system)")
  fi

  # --- a link shaped to 1 Gbit/s (scripts/shaped-link.sh): a network namespace, tbf, socat ------
  need_cmd ip iproute2
  need_cmd tc iproute2
  need_cmd nsenter util-linux
  need_cmd socat socat

  # --- block devices: loop devices with partitions, parted (libvirt's disk pools call it) ---------
  if [ "${TEST_LOOP_DEVICES:-}" != off ]; then
    need_cmd parted parted
    need_cmd losetup mount
    need_cmd blockdev util-linux
    need_cmd blkdiscard util-linux
    [ -e /dev/loop-control ] || as_root modprobe loop >/dev/null 2>&1 || true
    if [ "$(id -u)" -ne 0 ] || [ ! -e /dev/loop-control ]; then
      missing+=("loop devices for the block-device tests: run as root on a kernel with loop support (or set TEST_LOOP_DEVICES=off)")
    fi
  fi

  # --- PostgreSQL on 127.0.0.1:5432, trust auth, database test ----------------------------------
  if [ -z "${TEST_POSTGRES_DSN:-}" ]; then
    if ! command -v pg_ctlcluster >/dev/null 2>&1; then
      apt_install postgresql || true
    fi
    if ! pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
      if command -v pg_ctlcluster >/dev/null 2>&1; then
        ver=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
        if [ -n "$ver" ]; then
          log "starting PostgreSQL $ver"
          as_root pg_ctlcluster --skip-systemctl-redirect "$ver" main start >/dev/null 2>&1 || true
        fi
      fi
      wait_for 30 pg_isready -q -h 127.0.0.1 -p 5432 || missing+=("PostgreSQL on 127.0.0.1:5432 (or set TEST_POSTGRES_DSN)")
    fi
    if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
      # The tests connect as postgres over TCP without a password and use database "test".
      if ! psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1; then
        as_root su postgres -c "psql -q -Atc \"select 1 from pg_database where datname='test'\" | grep -q 1 || createdb test" >/dev/null 2>&1 || true
        psql -h 127.0.0.1 -U postgres -d test -Atc 'select 1' >/dev/null 2>&1 \
          || missing+=("PostgreSQL access: user postgres, database test, trust auth on 127.0.0.1 (or set TEST_POSTGRES_DSN)")
      fi
    fi
  fi

  # --- Redis on 127.0.0.1:6379 --------------------------------------------------------------------
  if [ -z "${TEST_REDIS_URL:-}" ]; then
    redis_up() { redis-cli -h 127.0.0.1 -p 6379 ping 2>/dev/null | grep -q PONG; }
    if ! redis_up; then
      command -v redis-server >/dev/null 2>&1 || apt_install redis-server || true
      if command -v redis-server >/dev/null 2>&1; then
        log "starting Redis"
        as_root mkdir -p /var/lib/redis /var/log/redis
        as_root redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
          --dir /var/lib/redis --logfile /var/log/redis/ci.log >/dev/null 2>&1 || true
      fi
      wait_for 15 redis_up || missing+=("Redis on 127.0.0.1:6379 (Debian package redis-server, or set TEST_REDIS_URL)")
    fi
  fi
fi

if [ ${#missing[@]} -gt 0 ]; then
  printf '[setup] missing, and could not be installed or started:\n' >&2
  printf '  - %s\n' "${missing[@]}" >&2
  exit 1
fi
log "ready ($what): $(java -version 2>&1 | head -n 1), $(mvn -v 2>/dev/null | head -n 1), $(qemu-img --version | head -n 1)"
