#!/usr/bin/env bash
# Smoke test of a deployed environment: /api/ready answers 200, and a reading PUT with the
# write token is read back with the read token. Run by the pipeline's SmokeTest stage and
# by .github/workflows/deploy.yml. Readings cannot be deleted: the smoke reading carries
# its own sensor id (smoke-<run>) and expires with the table's TTL.
#
# Environment: SERVICE_URL, SMOKE_WRITE_TOKEN, SMOKE_READ_TOKEN, SMOKE_RUN_ID (optional),
#              SMOKE_RETRIES (10), SMOKE_RETRY_DELAY (6).
set -euo pipefail

die() { echo "smoke: $*" >&2; exit 1; }

for v in SERVICE_URL SMOKE_WRITE_TOKEN SMOKE_READ_TOKEN; do
  [[ -n "${!v:-}" ]] || die "$v is not set"
done
url="${SERVICE_URL%/}"
retries="${SMOKE_RETRIES:-10}"
delay="${SMOKE_RETRY_DELAY:-6}"
curl_opts=(--silent --show-error --fail --max-time 10)

ready=""
for ((i = 1; i <= retries; i++)); do
  if ready="$(curl "${curl_opts[@]}" "$url/api/ready")"; then break; fi
  ready=""
  sleep "$delay"
done
[[ -n "$ready" ]] || die "$url/api/ready did not answer 200 after $retries tries"
echo "smoke: ready: $ready"

sensor="smoke-${SMOKE_RUN_ID:-$(date +%s)}"
time="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
from="$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)"
to="$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)"

curl "${curl_opts[@]}" -X PUT "$url/api/temperature" \
  -H "authorization: Bearer $SMOKE_WRITE_TOKEN" -H 'content-type: application/json' \
  -d "{\"sensorID\": \"$sensor\", \"temperature\": 21.5, \"time\": \"$time\"}" >/dev/null \
  || die "PUT /api/temperature failed"

readings="$(curl "${curl_opts[@]}" -G "$url/api/readings" \
  -H "authorization: Bearer $SMOKE_READ_TOKEN" \
  --data-urlencode "sensorID=$sensor" --data-urlencode "from=$from" --data-urlencode "to=$to")" \
  || die "GET /api/readings failed"

jq -e --arg s "$sensor" --arg t "$time" \
  'any(.readings[]; .sensorID == $s and .time == $t and .temperature == 21.5)' <<<"$readings" >/dev/null \
  || die "the reading PUT for $sensor at $time was not read back: $readings"
echo "smoke: PUT/GET round trip for $sensor passed"
