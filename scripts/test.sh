#!/usr/bin/env bash
# Runs the whole test suite: unit tests, adapter tests against real services and every
# integration category. Installs or starts what it needs first (scripts/setup.sh test).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
exec mvn -B -ntp verify "$@"
