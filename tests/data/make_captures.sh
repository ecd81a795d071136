#!/bin/sh
# Regenerate every capture in tests/data (needs root: network namespaces,
# veth pairs, tcpdump).  Traffic stays in namespaces this script creates.
#
# Tools: tcpdump, tshark/editcap/mergecap/capinfos (wireshark-common),
# iproute2 (ip, tc), ethtool, nftables, zstd; Python 3 with scapy.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
need=""
for tool in tcpdump:tcpdump tshark:tshark editcap:wireshark-common ip:iproute2 \
            tc:iproute2 ethtool:ethtool nft:nftables zstd:zstd; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || need="$need ${tool#*:}"
done
if [ -n "$need" ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need
fi
python3 -c "import scapy" 2>/dev/null || python3 -m pip install -q scapy
exec python3 "$here/make_captures.py" "${1:-$here}"
