#!/usr/bin/env bash
# Installs the Debian packages that parts of the test suite need when they are missing
# (a fresh machine has none of them). Called by .ci/run before `npm test`; safe to run again.
# As root it uses apt-get; otherwise it only reports what is missing.
set -euo pipefail
# package:command-it-provides
wanted=(chromium:chromium pgbouncer:pgbouncer)
missing=()
for entry in "${wanted[@]}"; do
  pkg=${entry%%:*}
  cmd=${entry#*:}
  command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-system-deps: missing ${missing[*]} (not root or no apt-get; the tests that need them will say so)" >&2
  exit 0
fi
echo "ensure-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" </dev/null
