"""fastseg: fast batch analysis of TCP in packet captures.

Read pcap/pcapng into columnar TCP segments, verify checksums in bulk, track
connections through the TCP state machine, analyse handshakes and teardowns,
and encode/verify Linux-compatible SYN cookies.
"""
from .errors import CaptureError, TruncatedCaptureWarning
from .segments import Segments, CaptureStats, format_addresses, parse_addresses
from .capture import PacketBatch, open_capture
from .parse import open, read_segments, parse_packets, CaptureFile
from .checksum import internet_checksum, verify_checksums, tcp_checksums, fix_checksums
from .track import track, Tracker, transition, TRANSITIONS, Connections
from . import syncookies, synth, whatif
from .syncookies import siphash24
from .analyze import analyze, Report
from .loss import ANALYSIS_FLAGS

__version__ = "0.1.0"

__all__ = [
    "CaptureError", "TruncatedCaptureWarning",
    "Segments", "CaptureStats", "format_addresses", "parse_addresses",
    "PacketBatch", "open_capture",
    "open", "read_segments", "parse_packets", "CaptureFile",
    "internet_checksum", "verify_checksums", "tcp_checksums", "fix_checksums",
    "track", "Tracker", "transition", "TRANSITIONS", "Connections",
    "syncookies", "siphash24", "synth", "whatif",
    "analyze", "Report", "ANALYSIS_FLAGS",
    "__version__",
]
