#!/usr/bin/env bash
#   vedetta demo: one broker and five agencies on this machine, keys made on the fly.
#   COSC Toscana, Comune di Siena, ANCI Toscana, COSC Sicilia Occidentale and Comune di
#   Caltanissetta subscribe to what they are entitled to; a few real messages go through the
#   real broker over CurveZMQ, and the script shows what each party received.
#
#   usage: deploy/demo.sh [--bin DIR] [--check] [--keep]
#     --bin DIR   where vedettad and vedetta are (default: build/ next to this script's repo)
#     --check     exit 1 unless every party received exactly what it should (used by the tests)
#     --keep      keep the temporary folder (keys, config, logs) and print its path
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin="$here/../build"
check=0
keep=0
while [ $# -gt 0 ]; do
    case "$1" in
        --bin) bin=$2; shift 2 ;;
        --check) check=1; shift ;;
        --keep) keep=1; shift ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^#//'; exit 0 ;;
        *) echo "demo: unknown option $1" >&2; exit 1 ;;
    esac
done
vedettad="$bin/vedettad"
vedetta="$bin/vedetta"
for tool in "$vedettad" "$vedetta"; do
    [ -x "$tool" ] || { echo "demo: $tool not found: build first (see README)" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "demo: jq is needed (deploy/install-deps.sh)" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/vedetta-demo.XXXXXX")
pids=()
cleanup() {
    # Only the processes this script started, by PID.
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ "$keep" = 1 ]; then echo "demo: kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

bold=$(tput bold 2>/dev/null || true)
plain=$(tput sgr0 2>/dev/null || true)
say() { printf '%s\n' "$*"; }
step() { printf '\n%s%s%s\n' "$bold" "$*" "$plain"; }

# party table: short name | org id | role | jurisdiction | display name
parties=(
    "cosc-toscana|cosc:toscana|cosc|toscana|COSC Toscana"
    "siena|comune:i726|comune|toscana|Comune di Siena"
    "anci-toscana|anci:toscana|anci|toscana|ANCI Toscana"
    "cosc-sicilia|cosc:sicilia-occ|cosc|sicilia-occ|COSC Sicilia Occidentale"
    "caltanissetta|comune:b429|comune|sicilia-occ|Comune di Caltanissetta"
)
field() { local IFS='|'; read -r -a f <<<"$1"; printf '%s' "${f[$2]}"; }
party() { for p in "${parties[@]}"; do [ "$(field "$p" 0)" = "$1" ] && { printf '%s' "$p"; return; }; done; }
slug() { printf '%s' "${1/:/-}"; }

step "1. Keys: each agency makes its own key pair; the broker's operator installs the public files"
mkdir -p "$work/keys" "$work/agencies"
"$vedetta" keygen --org broker:toscana --name "Broker Toscana" --role broker \
    --jurisdiction toscana --out "$work/keys" >/dev/null
for p in "${parties[@]}"; do
    org=$(field "$p" 1)
    "$vedetta" keygen --org "$org" --name "$(field "$p" 4)" --role "$(field "$p" 2)" \
        --jurisdiction "$(field "$p" 3)" --out "$work/keys" >/dev/null
    mv "$work/keys/$(slug "$org").default.agency" "$work/agencies/"
    say "   $(printf '%-26s' "$(field "$p" 4)") $org  (secret key: mode $(stat -c %a "$work/keys/$(slug "$org").default.secret"))"
done

step "2. The broker starts on the embedded default policy"
cat >"$work/vedettad.cfg" <<EOF
broker
    endpoint = "tcp://127.0.0.1:*"
    secret = "keys/broker-toscana.default.secret"
    registry = "agencies"
    endpoint-file = "endpoint"
log
    level = "info"
EOF
"$vedettad" --config "$work/vedettad.cfg" 2>"$work/broker.log" &
pids+=($!)
for _ in $(seq 1 500); do [ -s "$work/endpoint" ] && break; sleep 0.02; done
[ -s "$work/endpoint" ] || { echo "demo: the broker did not start:" >&2; cat "$work/broker.log" >&2; exit 1; }
export VEDETTA_BROKER=$(cat "$work/endpoint")
export VEDETTA_BROKER_KEY="$work/keys/broker-toscana.default.agency"
say "   vedettad listening on $VEDETTA_BROKER (CurveZMQ; unknown keys are refused)"

step "3. Each party subscribes to what it wants; the broker grants only what the policy allows"
say "   (each checks every message's signature against the agencies' public files: --verify)"
subscribe() { # name pattern...
    local name=$1; shift
    local org; org=$(field "$(party "$name")" 1)
    VEDETTA_KEY="$work/keys/$(slug "$org").default.secret" \
        "$vedetta" sub --verify "$work/agencies" "$@" >"$work/$name.out" 2>"$work/$name.err" &
    pids+=($!)
    say "   $(printf '%-26s' "$(field "$(party "$name")" 4)") $*"
}
subscribe cosc-toscana alert.toscana.'>' report.toscana.'>' bulletin.toscana inbox.toscana.cosc-toscana
subscribe siena bulletin.toscana inbox.toscana.comune-i726
subscribe anci-toscana report.toscana.'*' bulletin.toscana inbox.toscana.anci-toscana
subscribe cosc-sicilia alert.sicilia-occ.'>' bulletin.sicilia-occ inbox.sicilia-occ.cosc-sicilia-occ
subscribe caltanissetta bulletin.sicilia-occ inbox.sicilia-occ.comune-b429
expect_subscribed() { # name count
    for _ in $(seq 1 500); do
        [ "$(grep -c '^subscribed' "$work/$1.err" 2>/dev/null || true)" -ge "$2" ] && return 0
        sleep 0.02
    done
    echo "demo: $1 did not subscribe:" >&2; cat "$work/$1.err" >&2; exit 1
}
expect_subscribed cosc-toscana 4; expect_subscribed siena 2; expect_subscribed anci-toscana 3
expect_subscribed cosc-sicilia 3; expect_subscribed caltanissetta 2
rc=0
VEDETTA_KEY="$work/keys/anci-toscana.default.secret" "$vedetta" sub 'alert.toscana.>' \
    --timeout 1000 >/dev/null 2>"$work/anci-denied.err" || rc=$?
say "   ANCI Toscana tries alert.toscana.> too: $(grep -m1 -v '^subscribed' "$work/anci-denied.err") (exit $rc)"
[ "$rc" = 2 ] || { echo "demo: ANCI's subscription to Comune alerts should be denied" >&2; exit 1; }

publish() { # name expected-status description pub-args...
    local name=$1 expected=$2 what=$3; shift 3
    local org; org=$(field "$(party "$name")" 1)
    say "   $(field "$(party "$name")" 4): $what"
    local receipt rc=0
    receipt=$(VEDETTA_KEY="$work/keys/$(slug "$org").default.secret" "$vedetta" pub "$@") || rc=$?
    local status; status=$(jq -r .status <<<"$receipt")
    if [ "$status" = rejected ]; then
        say "      -> rejected: $(jq -r '.error + " " + .reason' <<<"$receipt")"
    else
        say "      -> $status, seq $(jq -r .seq <<<"$receipt")"
    fi
    [ "$status" = "$expected" ] || { echo "demo: expected $expected, got: $receipt (exit $rc)" >&2; exit 1; }
}

step "4. Messages"
publish siena accepted "alert from its SIEM on alert.toscana.i726 (TLP:AMBER)" \
    --topic alert.toscana.i726 --tlp amber --category intrusions --severity severe \
    --body "SIEM: 40 failed VPN logins/min from 203.0.113.7"
publish siena accepted "segnalazione on report.toscana.i726 (TLP:GREEN, early warning)" \
    --topic report.toscana.i726 --tlp green --category fraud --severity moderate \
    --stage early-warning --aware-at "$(($(date +%s) * 1000))" \
    --body "Phishing e-mails to staff impersonating PagoPA"
publish siena accepted "details of the same report (TLP:AMBER: not for ANCI)" \
    --topic report.toscana.i726 --tlp amber --category fraud --severity moderate \
    --body "Two staff accounts entered credentials; passwords reset"
publish cosc-toscana accepted "bulletin for Tuscany on bulletin.toscana (TLP:GREEN)" \
    --topic bulletin.toscana --tlp green --category vulnerable --severity severe \
    --body "Advisory: patch the VPN appliances (CVE-2024-3400 class)"
publish cosc-toscana accepted "TLP:RED advisory directed to Comune di Siena only" \
    --topic inbox --to comune:i726 --tlp red --category intrusions --severity extreme \
    --body "203.0.113.7 is tied to an active campaign against your VPN: block it now"
publish caltanissetta rejected "tries to publish on Siena's alert topic" \
    --topic alert.toscana.i726 --tlp green --body "forged alert"
publish cosc-sicilia accepted "bulletin for western Sicily (TLP:CLEAR)" \
    --topic bulletin.sicilia-occ --tlp clear --category other --severity minor \
    --body "Training: phishing awareness session on Monday"
# Closing markers: the broker delivers to each session in order, so once a party has its
# marker it has everything published before it.
publish cosc-toscana accepted "end of demo (Tuscany)" --topic bulletin.toscana --tlp clear --body "end of demo"
publish cosc-sicilia accepted "end of demo (Sicily)" --topic bulletin.sicilia-occ --tlp clear --body "end of demo"
publish siena accepted "end of demo (to COSC Toscana's inbox)" --topic inbox --to cosc:toscana --tlp clear --body "end of demo"

for name in cosc-toscana siena anci-toscana cosc-sicilia caltanissetta; do
    for _ in $(seq 1 500); do grep -q '"end of demo"' "$work/$name.out" 2>/dev/null && break; sleep 0.02; done
done
want_markers() { [ "$(grep -c '"end of demo"' "$work/$1.out")" -eq "$2" ]; }
for _ in $(seq 1 250); do want_markers cosc-toscana 2 && break; sleep 0.02; done

step "5. What each party received"
for p in "${parties[@]}"; do
    name=$(field "$p" 0)
    say "   ${bold}$(field "$p" 4)${plain} ($(field "$p" 1))"
    if [ -s "$work/$name.out" ]; then
        jq -r '"      seq \(.seq)  TLP:\(.tlp | ascii_upcase)  \(.topic)  from \(.sender): \(.body // "(binary)")\n        \(if .verified then "signed by \(.signer)" else "NOT VERIFIED: \(.verify_reason)" end)"' "$work/$name.out"
    else
        say "      (nothing)"
    fi
done
say ""
say "   Refusals and withheld deliveries, as the broker logged them:"
grep -E 'rejected|denied|refused|withheld' "$work/broker.log" | sed 's/^.*vdb_[a-z]*: /      /' || true

if [ "$check" = 1 ]; then
    bodies() { jq -r '.body' "$work/$1.out" | sort | tr '\n' '|'; }
    expect() { # name bodies...
        local name=$1; shift
        local want; want=$(printf '%s\n' "$@" | sort | tr '\n' '|')
        local got; got=$(bodies "$name")
        if [ "$got" != "$want" ]; then
            echo "demo check: $name received [$got], expected [$want]" >&2
            exit 1
        fi
    }
    expect cosc-toscana "SIEM: 40 failed VPN logins/min from 203.0.113.7" \
        "Phishing e-mails to staff impersonating PagoPA" \
        "Two staff accounts entered credentials; passwords reset" \
        "Advisory: patch the VPN appliances (CVE-2024-3400 class)" "end of demo" "end of demo"
    expect siena "Advisory: patch the VPN appliances (CVE-2024-3400 class)" \
        "203.0.113.7 is tied to an active campaign against your VPN: block it now" "end of demo"
    expect anci-toscana "Phishing e-mails to staff impersonating PagoPA" \
        "Advisory: patch the VPN appliances (CVE-2024-3400 class)" "end of demo"
    expect cosc-sicilia "Training: phishing awareness session on Monday" "end of demo"
    expect caltanissetta "Training: phishing awareness session on Monday" "end of demo"
    for name in cosc-toscana siena anci-toscana cosc-sicilia caltanissetta; do
        unverified=$(jq -r 'select(.verified != true) | .id' "$work/$name.out")
        [ -z "$unverified" ] || { echo "demo check: $name got messages that did not verify: $unverified" >&2; exit 1; }
    done
    say ""
    say "demo check: every party received exactly what it may, and nothing else, each message signed by its sender"
fi
