"""Capture reader face (pcap / pcapng / .gz / .zst -> PacketBatch).  STUB."""


class PacketBatch:
    pass


def open_capture(path, **kwargs):
    raise NotImplementedError
