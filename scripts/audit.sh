#!/usr/bin/env bash
# npm audit of the production dependencies: fails on high or critical advisories. Some registry
# mirrors do not serve npm's advisory endpoint; then the audit is reported as skipped, not passed.
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(npm audit --omit=dev --audit-level=high 2>&1)
code=$?
echo "$out" | tail -n 20
if echo "$out" | grep -q "audit endpoint returned an error"; then
  echo "[audit] SKIPPED: this registry does not serve the advisory endpoint; run 'npm audit --omit=dev' against registry.npmjs.org"
  exit 0
fi
exit $code
