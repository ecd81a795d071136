"""Writing tables to files: JSON lines, CSV, Parquet, Zeek conn.log.

Every file is written to a temporary name beside the target and renamed into
place only when complete, so a failed run never leaves a partial output.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import sys
import tempfile
from typing import Dict, Iterator, List, Optional

import numpy as np

from ._format import address_bytes
from .segments import format_addresses

__all__ = ["atomic_output", "TableWriter", "text_columns", "output_format",
           "FORMAT_BY_EXTENSION"]

# -o's extension -> the format written when --format is not given
FORMAT_BY_EXTENSION = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".log": "zeek", ".tsv": "zeek",
}


def output_format(path: Optional[str], fmt: Optional[str], allowed=("jsonl", "csv", "parquet"),
                  default: str = "jsonl") -> str:
    """The format to write ``path`` in: ``fmt`` when given, else the one its
    extension names (``FORMAT_BY_EXTENSION``), else ``default`` for stdout or
    a name without extension.  Raises ValueError (one clear sentence) when
    ``fmt`` contradicts the extension, when the extension names a format not
    in ``allowed``, or when an unknown extension leaves the format open."""
    ext = os.path.splitext(path)[1].lower() if path and path != "-" else ""
    by_ext = FORMAT_BY_EXTENSION.get(ext)
    if fmt is not None:
        if by_ext is not None and by_ext != fmt:
            raise ValueError(f"{path}: --format {fmt} contradicts the {ext} extension "
                             f"({by_ext}); rename the file or drop --format")
        return fmt
    if by_ext is None:
        if ext:
            raise ValueError(f"{path}: no format is known for the {ext} extension; "
                             f"give --format ({'|'.join(allowed)})")
        return default
    if by_ext not in allowed:
        raise ValueError(f"{path}: the {ext} extension means {by_ext}, which this command "
                         f"does not write ({'|'.join(allowed)})")
    return by_ext


@contextlib.contextmanager
def atomic_output(path: Optional[str], binary: bool = False) -> Iterator:
    """Yield a file object for ``path`` (stdout for None or '-').  The file
    appears under its name only if the block completes."""
    if path is None or path == "-":
        stream = sys.stdout.buffer if binary else sys.stdout
        yield stream
        stream.flush()
        return
    target = os.path.abspath(path)
    if os.path.exists(target) and not os.path.isfile(target):
        # a device or a pipe (/dev/stdout, a FIFO): write straight to it
        with open(target, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})) as fh:
            yield fh
        return
    directory = os.path.dirname(target) or "."
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(target) + ".", suffix=".tmp",
                               dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)   # as open() would have created it
    try:
        with os.fdopen(fd, "wb" if binary else "w", newline="" if not binary else None,
                       **({} if binary else {"encoding": "utf-8"})) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def text_columns(table) -> Dict[str, List]:
    """Columns of a Segments/Connections table as Python lists ready for text
    output: addresses as strings, absent values as None, floats rounded to
    6 decimals (the microsecond, for the columns in seconds)."""
    names = table.columns
    out: Dict[str, List] = {}
    for name in names:
        col = table[name]
        if col.ndim == 2 and col.shape[1] == 16:
            out[name] = list(format_addresses(col, table["ip_version"]))
            continue
        # floats (seconds) to the microsecond: more digits are float noise
        values = (np.round(col, 6) if col.dtype.kind == "f" else col).tolist()
        mask = table.null_mask(name) if hasattr(table, "null_mask") else None
        if mask is not None and mask.any():
            values = [None if m else v for v, m in zip(values, mask.tolist())]
        if col.dtype.kind == "f":
            values = [None if (v is None or (isinstance(v, float) and math.isnan(v))) else v
                      for v in values]
        out[name] = values
    if "analysis" in out:
        from .loss import distinct_flag_names
        names, inv = distinct_flag_names(table["analysis"])
        texts = np.array([",".join(n) for n in names] or [""], dtype=object)
        out["analysis"] = texts[inv].tolist()
    if "checksum_status" in out:
        from ._consts import CHECKSUM_STATUS_NAMES
        out["checksum_status"] = [CHECKSUM_STATUS_NAMES[v] for v in out["checksum_status"]]
    if "ip_checksum_status" in out:
        from ._consts import CHECKSUM_STATUS_NAMES
        out["ip_checksum_status"] = [CHECKSUM_STATUS_NAMES[v] for v in out["ip_checksum_status"]]
    return out


def _analysis_text(col: np.ndarray, json_list: bool) -> np.ndarray:
    """The tcp.analysis names of each bitmask, comma-separated as tshark
    prints them: a JSON string, or a CSV field (quoted when it has a comma)."""
    from .loss import distinct_flag_names
    distinct, inv = distinct_flag_names(col)
    texts = []
    for names in distinct:
        text = ",".join(names)
        if json_list:
            texts.append(json.dumps(text))
        else:
            texts.append(text if len(names) < 2 else '"' + text + '"')
    return np.array([t.encode() for t in texts] or [b""], dtype="S")[inv]


def _text_fields(table, json_strings: bool):
    """Per public column: (name, format_rows column).  Values come out as
    Python's csv/json modules write them (ints, shortest float repr, True/False
    or true/false, None as unset); ``json_strings`` quotes text."""
    from ._consts import CHECKSUM_STATUS_NAMES
    out = []
    for name in table.columns:
        col = np.asarray(table[name])
        mask = table.null_mask(name) if hasattr(table, "null_mask") else None
        string = False
        if col.ndim == 2 and col.shape[1] == 16:
            values, string = address_bytes(col, table["ip_version"]), True
        elif name in ("checksum_status", "ip_checksum_status"):
            values = np.array(CHECKSUM_STATUS_NAMES, dtype="S")[col]
            string = True
        elif name == "analysis":
            values = _analysis_text(col, json_strings)
        elif col.dtype.kind == "b":
            values = np.where(col, b"true" if json_strings else b"True",
                              b"false" if json_strings else b"False")
        elif col.dtype.kind == "f":
            nan = np.isnan(col)
            mask = nan if mask is None else (mask | nan)
            # to the microsecond, as text_columns; written as repr() writes
            out.append((name, ("repr", np.round(col, 6), 0, mask)))
            continue
        elif col.dtype.kind == "u" and col.dtype.itemsize == 8:
            out.append((name, ("uint", col, 0, mask)))
            continue
        elif col.dtype.kind in "iu":
            out.append((name, ("int", col, 0, mask)))
            continue
        else:
            values = table.text_bytes(name) if hasattr(table, "text_bytes") else col.astype("S")
            string = True
        if string and json_strings:
            values = np.char.add(np.char.add(b'"', values), b'"')
        out.append((name, ("bytes", values, 0, mask)))
    return out


def format_table(table, fmt: str, header: bool = False, write=None):
    """A table's rows as jsonl or csv text, formatted by the C row kernel
    (the same text the json and csv modules write).  Returned as str, or
    handed to ``write`` (a callable taking bytes) chunk by chunk."""
    from . import _format
    out = []
    emit = write if write is not None else out.append
    if header and fmt == "csv":
        emit((",".join(table.columns) + "\n").encode())
    if len(table):
        fields = _text_fields(table, fmt == "jsonl")
        if fmt == "csv":
            _format.format_rows([c for _, c in fields], sep=b",", unset=b"", write=emit)
        else:
            cols = []
            for i, (name, col) in enumerate(fields):
                key = ("{" if i == 0 else ",").encode() + json.dumps(name).encode() + b":"
                cols.append(("const", key, 0, None))
                cols.append(col)
            cols.append(("const", b"}", 0, None))
            _format.format_rows(cols, sep=b"", unset=b"null", write=emit)
    if write is None:
        return b"".join(bytes(p) for p in out).decode("ascii")
    return None


class TableWriter:
    """Writes a sequence of tables (batches) in one format to one output."""

    FORMATS = ("jsonl", "csv", "parquet")

    def __init__(self, fh, fmt: str):
        if fmt not in self.FORMATS:
            raise ValueError(f"unknown format {fmt!r}")
        self.fh = fh
        self.fmt = fmt
        self._csv = None
        self._parquet = None
        self.rows = 0

    def write(self, table) -> None:
        if self.fmt == "parquet":
            import pyarrow.parquet as pq
            arrow = table.to_arrow()
            if self._parquet is None:
                self._parquet = pq.ParquetWriter(self.fh, arrow.schema)
            self._parquet.write_table(arrow)
            self.rows += len(table)
            return
        n = len(table)
        header = self.fmt == "csv" and self._csv is None
        self._csv = True
        raw = getattr(self.fh, "buffer", None)
        if raw is not None:
            # The text is ASCII: straight to the byte stream, no re-encoding.
            self.fh.flush()
            format_table(table, self.fmt, header=header, write=raw.write)
        else:
            self.fh.write(format_table(table, self.fmt, header=header))
        self.rows += n

    def close(self) -> None:
        if self._parquet is not None:
            self._parquet.close()

