"""Parser face.  STUB."""


class CaptureFile:
    pass


def open(path, **kwargs):
    raise NotImplementedError


def read_segments(path, **kwargs):
    raise NotImplementedError


def parse_packets(*args, **kwargs):
    raise NotImplementedError
