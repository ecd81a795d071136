"""Synthetic TCP captures with ground truth.

``generate()`` writes a pcap or pcapng file of realistic TCP connections (Ethernet
by default, also 802.1Q, raw IP and Linux SLL; IPv4 and IPv6; Linux-like option
layouts, retransmission and keepalive timers; lognormal RTTs) together with a
ground-truth file that says, for every connection, what it is and what a correct
analyser must report about it (Zeek's conn_state, Wireshark's initial RTT, who
closed and how, ...).  ``scenarios()`` lists the connection kinds.  It is the
benchmark input of fastseg and the capture behind ``fastseg demo``.

The parts, in the order the data flows:

* ``scenarios``: the connection kinds, each a script of packet steps run with
  numpy over all the connections of that kind at once, and the raw truth;
* ``headers``: Ethernet/IP/TCP header bytes and checksums for those steps,
  column-wise;
* ``writer``: pcap/pcapng records and files (also the writer of the tests'
  and fuzzers' captures: ``write_capture``);
* ``truth``: the ground-truth rows as CSV or JSON lines;
* ``driver``: blocks of connections merged in global time order, so memory
  stays bounded by the block size, to a file (``generate``) or to memory
  (``packets``).
"""
from .driver import (DEMO_BAD_CHECKSUM_FRACTION, DEMO_CONNECTIONS, LINKS, SynthPackets,
                     SynthResult, demo, demo_note, generate, packets)
from .scenarios import CONN_STATES, DEFAULT_MIX, KINDS, scenarios
from .truth import TRUTH_COLUMNS
from .writer import capture_bytes, write_capture

__all__ = ["generate", "packets", "demo", "demo_note", "scenarios", "SynthResult",
           "SynthPackets", "KINDS", "DEFAULT_MIX", "TRUTH_COLUMNS", "CONN_STATES", "LINKS",
           "DEMO_CONNECTIONS", "DEMO_BAD_CHECKSUM_FRACTION", "capture_bytes",
           "write_capture"]
