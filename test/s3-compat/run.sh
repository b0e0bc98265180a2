#!/usr/bin/env bash
# ceph's s3-tests against the embedded S3 server: the in-scope test ids listed by category in
# ../shared/vendor/ceph-s3-tests-inscope/, run from the pinned suite in ../shared/vendor (never
# copied here). Prints pass/fail per category; fails when any test fails that the suite does not
# mark fails_on_aws. Needs Debian's python3-munch python3-isodate python3-tz python3-pytest-timeout
# python3-dateutil (.ci/run installs them); creates .venv-s3tests on first use.
# Usage: bash test/s3-compat/run.sh [--vendor DIR] [--json FILE]
set -euo pipefail
cd "$(dirname "$0")/../.."
vendor=../shared/vendor
json=""
while [ $# -gt 0 ]; do
  case "$1" in
    --vendor) vendor=$2; shift 2 ;;
    --json) json=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
suite=$(cd "$vendor/ceph-s3-tests" && pwd)
inscope=$(cd "$vendor/ceph-s3-tests-inscope" && pwd)

venv=.venv-s3tests
if ! "$venv/bin/python" -c 'import boto3, munch, isodate, pytz, dateutil, lxml, requests, pytest' 2>/dev/null; then
  echo "[s3-compat] creating $venv (system Python with Debian's packages, plus boto3 lxml requests from pip)" >&2
  rm -rf "$venv"
  /usr/bin/python3 -m venv --system-site-packages "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --retries 0 --timeout 5 boto3 pytest lxml requests >&2
fi
python=$(pwd)/$venv/bin/python

work=$(mktemp -d)
server_pid=""
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

node_modules/.bin/tsx scripts/local-s3.ts --data-dir "$work/data" --port 0 --buckets "" > "$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  grep -q '^s3 ready' "$work/server.log" && break
  sleep 0.2
done
endpoint=$(sed -n 's/^s3 ready //p' "$work/server.log")
[ -n "$endpoint" ] || { cat "$work/server.log" >&2; echo "[s3-compat] the S3 server did not start" >&2; exit 1; }
port=${endpoint##*:}

sed "s/@PORT@/$port/" test/s3-compat/s3tests.conf > "$work/s3tests.conf"
cat "$inscope"/*.txt > "$work/ids.txt"
echo "[s3-compat] $(wc -l < "$work/ids.txt") in-scope tests against $endpoint" >&2
status=0
(cd "$suite" && S3TEST_CONF="$work/s3tests.conf" "$python" -m pytest -p no:cacheprovider -q --timeout 120 \
  --junitxml "$work/junit.xml" $(cat "$work/ids.txt") > "$work/pytest.log" 2>&1) || status=$?
tail -n 3 "$work/pytest.log" >&2
"$python" test/s3-compat/summarize.py --junit "$work/junit.xml" --inscope "$inscope" --suite "$suite" ${json:+--json "$json"}
