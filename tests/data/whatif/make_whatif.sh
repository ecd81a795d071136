#!/bin/sh
# Makes the whatif floods: SYN floods from spoofed sources against a listener
# with known sysctls, plus a bounded legitimate client, captured on the victim
# (headers only) with the victim's nstat counters before and after.
# Two network namespaces joined only to each other by a veth pair; every
# traffic loop is bounded.  Needs root, iproute2, tcpdump, nstat and scapy.
# Usage: sh tests/data/whatif/make_whatif.sh [OUTDIR [NAME...]]  (NAMEs: only those floods)
set -eu
OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
[ $# -gt 0 ] && shift
ONLY="$*"
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${PYTHON:-python3}
A=whatif_a; V=whatif_v
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $V 2>/dev/null || true; }
trap cleanup EXIT

# name syncookies backlog synack_retries accept bursts(start:count:duration,...)
run() {
    name=$1 cookies=$2 backlog=$3 retries=$4 accept=$5 bursts=$6
    case " ${ONLY:-$name} " in *" $name "*) ;; *) return 0 ;; esac
    cleanup
    ip netns add $A; ip netns add $V
    ip link add whatifa type veth peer name whatifv
    ip link set whatifa netns $A; ip link set whatifv netns $V
    ip -n $A addr add 10.78.0.1/24 dev whatifa; ip -n $V addr add 10.78.0.2/24 dev whatifv
    ip -n $A link set whatifa up; ip -n $V link set whatifv up
    ip -n $A link set lo up; ip -n $V link set lo up
    # SYN-ACKs to the spoofed sources leave through the veth and die in A
    ip -n $V route add default via 10.78.0.1
    ip netns exec $A sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.whatifa.rp_filter=0
    ip netns exec $V sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.whatifv.rp_filter=0
    ip netns exec $V sysctl -qw net.ipv4.tcp_syncookies=$cookies \
        net.ipv4.tcp_synack_retries=$retries net.core.somaxconn=4096 \
        net.ipv4.tcp_max_syn_backlog=4096
    hist=$(mktemp); export NSTAT_HISTORY=$hist
    ip netns exec $V nstat -asz --json > "$OUT/$name.before.json"
    ip netns exec $V timeout 35 tcpdump -i whatifv -s 96 -U -w "$OUT/$name.pcap" tcp 2>/dev/null &
    dump=$!
    ip netns exec $V timeout 30 $PY "$HERE/flood.py" server "$backlog" "$accept" 26 &
    srv=$!
    sleep 1.5
    ip netns exec $A timeout 25 $PY "$HERE/flood.py" client 12 40 "$bursts" || true
    sleep 3
    kill -INT $dump 2>/dev/null || true
    wait $dump 2>/dev/null || true
    ip netns exec $V nstat -asz --json > "$OUT/$name.after.json"
    kill $srv 2>/dev/null || true
    wait $srv 2>/dev/null || true
    rm -f "$hist"
    printf '{"syncookies": %s, "backlog": %s, "synack_retries": %s, "accept": "%s", "somaxconn": 4096, "max_syn_backlog": 4096, "bursts": "%s", "kernel": "%s"}\n' \
        "$cookies" "$backlog" "$retries" "$accept" "$bursts" "$(uname -r)" > "$OUT/$name.settings.json"
}

run c0_b16      0 16  5 all   "2:300:0.6"
run c0_b128     0 128 5 all   "2:500:0.8"
run c1_b16      1 16  5 all   "2:300:0.6"
run c0_b16_r2   0 16  2 all   "1:150:0.3,9:150:0.3"
run c1_b16_noaccept 1 16 5 never "4:200:0.4"
