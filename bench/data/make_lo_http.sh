#!/bin/sh
# Makes lo_http.pcap.gz: N short HTTP/1.0 connections on loopback, captured
# by tcpdump on lo.  Checksums stay unfilled as the sending host offloads them
# (loopback never computes TCP checksums), which is what a capture taken on the
# sending host looks like.  bench/scale_capture.py replicates it to millions of
# packets.  Needs tcpdump and python3.   Usage: sh bench/data/make_lo_http.sh [N]
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-1000}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
timeout 60 tcpdump -i lo -U -s 256 -w "$TMP/lo_http.pcap" "tcp port 8080 and host 127.0.0.2" 2>/dev/null &
DUMP=$!
sleep 1
timeout 40 python3 "$HERE/lo_http_traffic.py" server "$N" &
SRV=$!
sleep 0.5
timeout 40 python3 "$HERE/lo_http_traffic.py" client "$N"
wait $SRV || true
sleep 1
kill -INT $DUMP 2>/dev/null || true
wait $DUMP 2>/dev/null || true
gzip -9 -n -c "$TMP/lo_http.pcap" > "$HERE/lo_http.pcap.gz"
