"""Exceptions and warnings raised by fastseg."""


class CaptureError(ValueError):
    """A capture file is damaged or is not a capture.

    ``path`` names the file, ``offset`` the byte offset (in the decompressed
    stream for .gz/.zst input) where reading stopped, ``reason`` what was wrong.
    ``partial`` holds whatever was read before the damage (a ``Segments`` table
    for :func:`fastseg.read_segments`, else ``None``).
    """

    def __init__(self, path, offset, reason, partial=None):
        self.path = str(path)
        self.offset = offset
        self.reason = reason
        self.partial = partial
        where = f" at byte offset {offset}" if offset is not None else ""
        super().__init__(f"{self.path}{where}: {reason}")


class TruncatedCaptureWarning(UserWarning):
    """The file ends inside a record (e.g. tcpdump was killed); the records
    before it were read."""
