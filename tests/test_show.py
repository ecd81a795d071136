"""`fastseg show` prints what `tcpdump -n -S -tt -r FILE` prints for TCP packets."""
import subprocess
from pathlib import Path

import pytest

from fastseg.show import _Truncated, format_options, show_lines

DATA = Path(__file__).parent / "data"

# Captures tcpdump's output cannot be matched on, and why:
SKIP = {
    "any_sll2.pcap": "tcpdump names SLL2 interfaces through the reading machine's if_indextoname",
    "snap110_vxlan.pcap": "tcpdump prints the VXLAN encapsulation first",
    "synth_options.pcap": "tcpdump prints IPv6 routing/destination options and MPTCP; "
                          "test_show_damaged_options_and_atomic_fragments",
    "synth_frag.pcap": "tcpdump decodes HTTP payloads and IPv6 extension headers in the line",
    "synth_malformed.pcap": "malformed packets: fastseg does not print them",
    "multi_if.pcapng": "tcpdump cannot read a pcapng whose interfaces differ in link type",
    "syn_flood.pcap": "tcpdump appends its HTTP decoding to payloads on port 8080",
}
# tcpdump prints each encapsulation (MPLS labels, PPPoE, GRE, ...) before
# the TCP line; show prints the TCP line alone.
CAPTURES = sorted(p for p in list(DATA.glob("*.pcap")) + list(DATA.glob("*.pcapng"))
                  + list(DATA.glob("checksum/*.pcap"))
                  if p.name not in SKIP and not p.name.startswith("encap_"))


@pytest.mark.parametrize("path", CAPTURES, ids=lambda p: p.name)
def test_show_matches_tcpdump_line_for_line(path, tcpdump):
    out = subprocess.run([tcpdump, "-n", "-S", "-tt", "-r", str(path)], capture_output=True,
                         text=True).stdout  # exit 1 on a cut-off file, after printing it
    expected = [line for line in out.splitlines() if "Flags [" in line]
    assert expected, "the capture has TCP packets"
    assert list(show_lines(str(path))) == expected


def test_show_damaged_options_and_atomic_fragments(tcpdump):
    """Bad option lengths, wrong lengths for a kind, reserved flag bits and
    an IPv6 atomic fragment print as tcpdump prints them (frames 9 and
    13-16 need MPTCP and IPv6 header text that show does not reproduce)."""
    path = DATA / "synth_options.pcap"
    out = subprocess.run([tcpdump, "-n", "-S", "-tt", "-r", str(path)], capture_output=True,
                         text=True).stdout.splitlines()
    ours = list(show_lines(str(path)))
    assert len(out) == len(ours) == 17
    keep = [i for i in range(17) if i + 1 not in (9, 13, 14, 15, 16)]
    assert [ours[i] for i in keep] == [out[i] for i in keep]
    assert ours[-1].split(": ", 1)[1].startswith("frag (0|24) 44002 > 80: Flags [S]")


def test_options_common_syn_set():
    opts = bytes([2, 4, 0x05, 0xB4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7])
    assert format_options(opts) == "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7"


def test_options_sack_blocks_print_absolute_edges():
    opts = bytes([1, 1, 5, 18]) + (100).to_bytes(4, "big") + (200).to_bytes(4, "big") \
        + (300).to_bytes(4, "big") + (400).to_bytes(4, "big")
    assert format_options(opts) == "nop,nop,sack 2 {100:200}{300:400}"


def test_options_tfo_request_and_cookie_have_two_spaces_like_tcpdump():
    assert format_options(bytes([34, 2])) == "tfo  cookiereq"
    assert format_options(bytes([34, 6, 1, 2, 3, 4])) == "tfo  cookie 01020304"
    assert format_options(bytes([254, 4, 0xF9, 0x89])) == "exp-tfo cookiereq"


def test_options_unknown_kind_and_wrong_length():
    assert format_options(bytes([99, 4, 0xAB, 0xCD])) == "unknown-99 0xabcd"
    # tcpdump reads on where the option's own fixed length ends.
    assert format_options(bytes([3, 4, 7, 0])) == "wscale 7[len 4],eol"


def test_options_bad_length_stops_the_line():
    with pytest.raises(_Truncated) as bad:
        format_options(bytes([1, 2, 1]))
    assert bad.value.text == "nop,[bad opt]]"
    with pytest.raises(_Truncated) as bad:
        format_options(bytes([2, 8, 5, 0]))
    assert bad.value.text == "[bad opt]"


def test_options_cut_by_snaplen_end_the_line():
    with pytest.raises(_Truncated) as cut:
        format_options(bytes([1, 1, 8, 10, 0, 0]), declared=12)
    assert cut.value.text == "nop,nop,TS [|tcp]>"
