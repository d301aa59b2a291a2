#!/usr/bin/env bash
# The main job on embedded defaults: makes a real qcow2 image with qemu-img, provisions it twice
# through the engine into file-backed volumes (the second run is a cache hit), and checks the
# volume's bytes against qemu-img convert of the same image. Work files go to .demo/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh demo
exec mvn -B -q -ntp -pl core test-compile exec:java \
  -Dexec.mainClass=org.volprov.demo.EmbeddedDemo -Dexec.classpathScope=test \
  -Dexec.args="${DEMO_DIR:-.demo} ${DEMO_SIZE_MIB:-256}"
