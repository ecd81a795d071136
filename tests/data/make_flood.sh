#!/bin/sh
# Makes syn_flood.pcap: a SYN flood from spoofed sources against a listening
# socket, with a few legitimate connections during it.  Everything runs in two
# network namespaces joined only to each other by a veth pair; the flood is a
# fixed number of packets and stops by itself.  Needs root, iproute2, tcpdump
# and scapy.   Usage: sudo sh tests/data/make_flood.sh [OUTDIR]
set -eu
OUT=$(cd "${1:-$(dirname "$0")}" && pwd)
HERE=$(cd "$(dirname "$0")" && pwd)
A=fsf_a; B=fsf_b
cleanup() { ip netns del $A 2>/dev/null || true; ip netns del $B 2>/dev/null || true; }
trap cleanup EXIT
cleanup
ip netns add $A; ip netns add $B
ip link add fsfa type veth peer name fsfb
ip link set fsfa netns $A; ip link set fsfb netns $B
ip -n $A addr add 10.77.0.1/24 dev fsfa; ip -n $B addr add 10.77.0.2/24 dev fsfb
ip -n $A link set fsfa up; ip -n $B link set fsfb up
ip -n $A link set lo up; ip -n $B link set lo up
# replies to the spoofed sources leave through the veth (and die in A)
ip -n $B route add default via 10.77.0.1
ip netns exec $A sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.fsfa.rp_filter=0
ip netns exec $B sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.fsfb.rp_filter=0
ip netns exec $B sysctl -qw net.ipv4.tcp_syncookies=1 net.ipv4.tcp_synack_retries=2
ip netns exec $B timeout 20 tcpdump -i fsfb -U -w "$OUT/syn_flood.pcap" tcp 2>/dev/null &
DUMP=$!
ip netns exec $B timeout 15 python3 "$HERE/flood_traffic.py" server &
SRV=$!
sleep 1.5
ip netns exec $A timeout 12 python3 "$HERE/flood_traffic.py" client
sleep 1
kill $SRV 2>/dev/null || true
sleep 1
kill -INT $DUMP 2>/dev/null || true
wait $DUMP 2>/dev/null || true
