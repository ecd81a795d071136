"""Checksum face.  STUB."""


def internet_checksum(buffer):
    raise NotImplementedError


def verify_checksums(segments):
    raise NotImplementedError


def tcp_checksums(segments):
    raise NotImplementedError


def fix_checksums(*args, **kwargs):
    raise NotImplementedError
