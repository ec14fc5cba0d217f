#!/bin/sh
# Installs the Debian packages ipsweep needs when they are missing.
# Usage: deps.sh REQUIRED... -- OPTIONAL...
# A no-op when everything is installed. On a system without apt/dpkg it prints
# what to install and exits non-zero.
required=""; optional=""; seen_sep=0
for p in "$@"; do
  if [ "$p" = "--" ]; then seen_sep=1; continue; fi
  if [ $seen_sep = 0 ]; then required="$required $p"; else optional="$optional $p"; fi
done
missing() {
  out=""
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p"
  done
  echo $out
}
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "deps: this is not a Debian-like system. Install the equivalents of:" >&2
  echo "  $required" >&2
  echo "  (optional, for benchmarks and cross-checks:$optional)" >&2
  exit 1
fi
need=$(missing $required)
want=$(missing $optional)
[ -z "$need$want" ] && exit 0
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
echo "deps: installing:$need $want" >&2
$SUDO apt-get update -q >/dev/null || { echo "deps: apt-get update failed" >&2; exit 1; }
if [ -n "$need" ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $need >/dev/null \
    || { echo "deps: could not install:$need" >&2; exit 1; }
fi
if [ -n "$want" ]; then
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $want >/dev/null \
    || echo "deps: optional packages not installed:$want (benchmarks/cross-checks will skip)" >&2
fi
exit 0
