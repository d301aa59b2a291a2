#!/usr/bin/env bash
# The public API baselines: every published module keeps the signature of its public API (every
# package without an "internal" segment) in <module>/api/<artifactId>.api, and `mvn verify` fails
# when the compiled classes differ from it (scripts/ApiDump.java).
#
#   bash scripts/api.sh accept [mvn options]   rewrites every baseline from the current sources
#   bash scripts/api.sh check  [mvn options]   compares without running the tests
#
# Review the diff of the .api files before committing them: it is the change of the API.
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-}"
case "$mode" in
  accept|check) shift ;;
  *) echo "usage: bash scripts/api.sh accept|check [mvn options]" >&2; exit 2 ;;
esac
# Only the modules that publish a jar run the check; -am builds what they need first.
modules=$(grep -l '<artifactId>exec-maven-plugin</artifactId>' */pom.xml | xargs -n1 dirname | paste -sd, -)
exec mvn -B -ntp -q -DskipTests -DskipITs -Dvolprov.api="$mode" -pl "$modules" -am verify "$@"
