# Text rows at C speed: delimited fields (Zeek conn.log TSV, CSV) formatted
# from numpy columns in one GIL-free loop per chunk of rows.
#
# A column is one of: signed integers (int64), floats with a fixed number of
# decimals (float64, as printf's %.Nf), fixed-width byte strings ('S' dtype,
# cut at the first NUL), or one constant for every row.  Any column may carry
# a mask whose set rows print the unset marker instead.
from libc.stdint cimport int64_t, uint8_t
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

import numpy as np

cdef enum:
    K_INT = 0
    K_FLOAT = 1
    K_BYTES = 2
    K_CONST = 3
    FLOAT_MAX = 40        # longest %.Nf we print (|x| < 1e30, N <= 9)


cdef struct Col:
    int kind
    int decimals
    const char* data
    Py_ssize_t width      # bytes per row (K_BYTES) or length (K_CONST)
    const uint8_t* unset


cdef inline Py_ssize_t put_int(char* p, int64_t v) noexcept nogil:
    cdef char tmp[24]
    cdef Py_ssize_t n = 0, k = 0
    cdef unsigned long long u
    if v < 0:
        p[k] = 45     # '-'
        k += 1
        u = <unsigned long long>(-(v + 1)) + 1
    else:
        u = <unsigned long long>v
    while True:
        tmp[n] = <char>(48 + u % 10)
        n += 1
        u //= 10
        if u == 0:
            break
    while n > 0:
        n -= 1
        p[k] = tmp[n]
        k += 1
    return k


def format_rows(list columns, bytes sep=b"\t", bytes unset=b"-", bytes end=b"\n",
                write=None, Py_ssize_t chunk_rows=8192):
    """Format rows from ``columns``, a list of ``(kind, values, decimals,
    unset_mask)`` with kind "int" (int64 array), "float" (float64 array,
    ``decimals`` places), "bytes" ('S' array) or "const" (``values`` is one
    bytes value); ``unset_mask`` is None or a bool array.  Rows are formatted
    ``chunk_rows`` at a time into one reused buffer; each chunk goes to
    ``write`` (a callable taking a bytes-like object) when given, and the
    bytes written are counted; without ``write`` the text is returned."""
    cdef Py_ssize_t ncol = len(columns), n = -1, j, row_max = 0, pos = 0
    cdef Py_ssize_t nsep, nunset, nend, lo, hi
    cdef const char* c_sep
    cdef const char* c_unset
    cdef const char* c_end
    cdef char* buf
    if ncol == 0:
        return 0 if write is not None else b""
    keep = []
    cdef Col* cols = <Col*>malloc(ncol * sizeof(Col))
    if cols == NULL:
        raise MemoryError()
    try:
        for j, (kind, values, decimals, mask) in enumerate(columns):
            if kind == "const":
                v = bytes(values)
                keep.append(v)
                cols[j].kind = K_CONST
                cols[j].data = <const char*>v
                cols[j].width = len(v)
                row_max += len(v)
            else:
                if kind == "int":
                    arr = np.ascontiguousarray(values, dtype=np.int64)
                    cols[j].kind = K_INT
                    row_max += 21
                elif kind == "float":
                    arr = np.ascontiguousarray(values, dtype=np.float64)
                    if not (0 <= int(decimals) <= 9):
                        raise ValueError("decimals must be 0..9")
                    if arr.size and not np.all(np.abs(arr[np.isfinite(arr)]) < 1e30):
                        raise ValueError("float column out of range")
                    cols[j].kind = K_FLOAT
                    cols[j].decimals = int(decimals)
                    row_max += FLOAT_MAX
                elif kind == "bytes":
                    arr = np.ascontiguousarray(values)
                    if arr.dtype.kind != "S":
                        raise ValueError("bytes columns must have an 'S' dtype")
                    cols[j].kind = K_BYTES
                    cols[j].width = arr.dtype.itemsize
                    row_max += arr.dtype.itemsize
                else:
                    raise ValueError(f"unknown column kind {kind!r}")
                if n < 0:
                    n = len(arr)
                elif len(arr) != n:
                    raise ValueError("columns differ in length")
                keep.append(arr)
                cols[j].data = <const char*>(<char*><size_t>arr.ctypes.data) if arr.size else NULL
            if mask is not None:
                m = np.ascontiguousarray(mask, dtype=np.bool_).view(np.uint8)
                if n >= 0 and len(m) != n:
                    raise ValueError("mask and column differ in length")
                keep.append(m)
                cols[j].unset = <const uint8_t*><size_t>m.ctypes.data if m.size else NULL
            else:
                cols[j].unset = NULL
            row_max += len(unset) + len(sep)
        if n < 0:
            raise ValueError("at least one column must be an array")
        row_max += len(end)
        if chunk_rows < 1:
            raise ValueError("chunk_rows must be positive")
        out = np.empty(max(min(n, chunk_rows) * row_max, 1), dtype=np.uint8)
        c_sep, c_unset, c_end = <const char*>sep, <const char*>unset, <const char*>end
        nsep, nunset, nend = len(sep), len(unset), len(end)
        buf = <char*><size_t>out.ctypes.data
        parts = []
        total = 0
        for lo in range(0, n, chunk_rows):
            hi = min(n, lo + chunk_rows)
            with nogil:
                pos = _fill(cols, ncol, lo, hi, buf, c_sep, nsep, c_unset, nunset, c_end, nend)
            if write is not None:
                write(memoryview(out)[:pos])
            else:
                parts.append(out[:pos].tobytes())
            total += pos
        return total if write is not None else b"".join(parts)
    finally:
        free(cols)


cdef Py_ssize_t _fill(const Col* cols, Py_ssize_t ncol, Py_ssize_t lo, Py_ssize_t hi, char* p,
                      const char* sep, Py_ssize_t nsep, const char* unset, Py_ssize_t nunset,
                      const char* end, Py_ssize_t nend) noexcept nogil:
    cdef Py_ssize_t i, j, k, pos = 0
    cdef const char* s
    cdef double x
    for i in range(lo, hi):
        for j in range(ncol):
            if j:
                memcpy(p + pos, sep, nsep)
                pos += nsep
            if cols[j].unset != NULL and cols[j].unset[i]:
                memcpy(p + pos, unset, nunset)
                pos += nunset
            elif cols[j].kind == K_INT:
                pos += put_int(p + pos, (<const int64_t*>cols[j].data)[i])
            elif cols[j].kind == K_FLOAT:
                x = (<const double*>cols[j].data)[i]
                if x != x:
                    memcpy(p + pos, unset, nunset)
                    pos += nunset
                else:
                    pos += snprintf(p + pos, FLOAT_MAX, "%.*f", cols[j].decimals, x)
            elif cols[j].kind == K_BYTES:
                s = cols[j].data + i * cols[j].width
                k = 0
                while k < cols[j].width and s[k] != 0:
                    k += 1
                memcpy(p + pos, s, k)
                pos += k
            else:
                memcpy(p + pos, cols[j].data, cols[j].width)
                pos += cols[j].width
        memcpy(p + pos, end, nend)
        pos += nend
    return pos
