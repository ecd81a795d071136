#!/bin/sh
# Makes the loss captures: one TCP connection per scenario between two
# network namespaces (lossA client 10.88.0.1, lossB server 10.88.0.2) joined
# only through relay.py, a user-space netem between two TAP devices that
# lives in a third namespace (lossR).  Each scenario is captured at both
# ends (the client is the sender of the bulk data) with snaplen 128:
# loss_<scenario>_client.pcap and loss_<scenario>_server.pcap.
# Every process has a deadline.  Needs root, iproute2, tcpdump, python3.
# Usage: sudo sh tests/data/loss/make_loss.sh [OUTDIR]   (ONLY="loss rto" for some)
set -eu
OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
A=lossA; B=lossB; R=lossR
cleanup() { for ns in $A $B $R; do ip netns del $ns 2>/dev/null || true; done; }
trap cleanup EXIT

run() {   # run NAME SCENARIO RELAY-RULES...
    name=$1; scenario=$2; shift 2
    case " ${ONLY:-$name} " in *" $name "*) ;; *) return 0;; esac
    cleanup
    ip netns add $A; ip netns add $B; ip netns add $R
    ip netns exec $R timeout 25 python3 "$HERE/relay.py" lossa lossb --seconds 22 "$@" > /tmp/loss_relay.$$ &
    RELAY=$!
    for _ in $(seq 50); do grep -q ready /tmp/loss_relay.$$ 2>/dev/null && break; sleep 0.1; done
    ip -n $R link set lossa netns $A; ip -n $R link set lossb netns $B
    ip -n $A addr add 10.88.0.1/24 dev lossa; ip -n $B addr add 10.88.0.2/24 dev lossb
    ip -n $A link set lossa up; ip -n $B link set lossb up
    ip -n $A link set lo up; ip -n $B link set lo up
    ip netns exec $A timeout 20 tcpdump -i lossa -s 128 -U -w "$OUT/loss_${name}_client.pcap" tcp 2>/dev/null &
    DA=$!
    ip netns exec $B timeout 20 tcpdump -i lossb -s 128 -U -w "$OUT/loss_${name}_server.pcap" tcp 2>/dev/null &
    DB=$!
    sleep 1
    ip netns exec $B timeout 15 python3 "$HERE/traffic.py" server "$scenario" &
    SRV=$!
    sleep 0.5
    ip netns exec $A timeout 14 python3 "$HERE/traffic.py" client "$scenario" || true
    wait $SRV 2>/dev/null || true
    sleep 1
    kill -INT $DA $DB 2>/dev/null || true
    wait $DA $DB 2>/dev/null || true
    kill $RELAY 2>/dev/null || true
    wait $RELAY 2>/dev/null || true
    rm -f /tmp/loss_relay.$$
}

run loss bulk --loss 0.03 --delay 5 --seed 3
run reorder bulk --delay 10 --reorder 0.1 --seed 4
run dup bulk --dup 0.05 --delay 2 --seed 5
run delay bulk --delay 20 --jitter 1 --seed 6
run zerowin zerowin --delay 1 --seed 7
run keepalive keepalive --delay 1 --seed 8
run rto rto --delay 5 --blackhole-after 12 --seed 9
