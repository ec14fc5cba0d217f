#!/bin/sh
# Prints every sanitizer report left in DIR by `make test-san` and fails when
# there is one. The reports are files (ASAN_OPTIONS=log_path) because Criterion
# does not fail a test whose process reports a leak only as it exits.
dir=${1:?usage: san-report.sh DIR}
n=0
for f in "$dir"/*; do
  [ -f "$f" ] || continue
  n=$((n + 1))
  echo "== sanitizer report $f" >&2
  cat "$f" >&2
done
if [ "$n" -gt 0 ]; then
  echo "test-san: $n sanitizer report(s) (above): failing" >&2
  exit 1
fi
echo "test-san: no sanitizer reports"
