# Text rows at C speed: delimited fields (Zeek conn.log TSV, CSV) formatted
# from numpy columns in one GIL-free loop per chunk of rows.
#
# A column is one of: signed integers (int64), floats with a fixed number of
# decimals (float64, as printf's %.Nf), floats as Python's repr() writes them
# (the shortest text that reads back as the same double), fixed-width byte
# strings ('S' dtype, cut at the first NUL), or one constant for every row.  Any column may carry
# a mask whose set rows print the unset marker instead.
from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.math cimport fabs, llround, signbit
from libc.stdio cimport snprintf
from libc.stdlib cimport free, malloc, strtod
from libc.string cimport memcpy

import numpy as np

cdef enum:
    K_INT = 0
    K_FLOAT = 1
    K_BYTES = 2
    K_CONST = 3
    K_REPR = 4
    K_UINT = 5
    FLOAT_MAX = 40        # longest %.Nf we print (|x| < 1e30, N <= 9)
    REPR_MAX = 32         # longest repr of a double ("-1.2345678901234567e-308")


cdef struct Col:
    int kind
    int decimals
    const char* data
    Py_ssize_t width      # bytes per row (K_BYTES) or length (K_CONST)
    const uint8_t* unset


cdef inline Py_ssize_t put_int(char* p, int64_t v) noexcept nogil:
    if v < 0:
        p[0] = 45     # '-'
        return 1 + put_uint(p + 1, <unsigned long long>(-(v + 1)) + 1)
    return put_uint(p, <unsigned long long>v)


cdef inline Py_ssize_t put_uint(char* p, unsigned long long u) noexcept nogil:
    cdef char tmp[24]
    cdef Py_ssize_t n = 0, k = 0
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


cdef Py_ssize_t layout_repr(char* p, bint negative, const char* digits, int ndigits,
                            int decpt) noexcept nogil:
    """Python's float repr from the shortest digits and the decimal point's
    position (value = 0.DIGITS x 10**decpt): positional when -4 < decpt <= 16,
    else d.ddde+XX."""
    cdef Py_ssize_t k = 0
    cdef int i, e
    if negative:
        p[k] = 45
        k += 1
    if -4 < decpt <= 16:
        if decpt <= 0:
            p[k] = 48
            p[k + 1] = 46
            k += 2
            for i in range(-decpt):
                p[k] = 48
                k += 1
            memcpy(p + k, digits, ndigits)
            return k + ndigits
        if decpt >= ndigits:
            memcpy(p + k, digits, ndigits)
            k += ndigits
            for i in range(decpt - ndigits):
                p[k] = 48
                k += 1
            p[k] = 46
            p[k + 1] = 48
            return k + 2
        memcpy(p + k, digits, decpt)
        k += decpt
        p[k] = 46
        k += 1
        memcpy(p + k, digits + decpt, ndigits - decpt)
        return k + ndigits - decpt
    p[k] = digits[0]
    k += 1
    if ndigits > 1:
        p[k] = 46
        k += 1
        memcpy(p + k, digits + 1, ndigits - 1)
        k += ndigits - 1
    e = decpt - 1
    p[k] = 101        # 'e'
    p[k + 1] = 45 if e < 0 else 43
    k += 2
    if e < 0:
        e = -e
    if e < 10:
        p[k] = 48
        k += 1
    return k + put_int(p + k, e)


cdef bint bump_last_digit(char* s, int step) noexcept nogil:
    """Add ``step`` (+1 or -1) to the last mantissa digit of printf's
    d.dddde+XX text, carrying; False when it would change the exponent."""
    cdef int i = 0
    while s[i] != 101:
        i += 1
    i -= 1
    while i >= 0:
        if s[i] == 46:
            i -= 1
            continue
        if step > 0:
            if s[i] != 57:
                s[i] += 1
                return True
            s[i] = 48
        else:
            if s[i] != 48:
                if i == 0 and s[i] == 49:
                    return False
                s[i] -= 1
                return True
            s[i] = 57
        i -= 1
    return False


cdef Py_ssize_t put_repr(char* p, double x) noexcept nogil:
    """Write ``repr(x)`` at ``p`` (at most REPR_MAX bytes); its length."""
    cdef char tmp[48]
    cdef char digits[20]
    cdef double ax = fabs(x)
    cdef bint neg = signbit(x)
    cdef int64_t n = -1, whole, frac
    cdef int nd = 0, decpt, prec, i, e, esign
    cdef Py_ssize_t k = 0
    if x != x:
        memcpy(p, b"nan", 3)
        return 3
    if ax == 1.0 / 0.0:
        if neg:
            memcpy(p, b"-inf", 4)
            return 4
        memcpy(p, b"inf", 3)
        return 3
    if ax == 0:
        if neg:
            memcpy(p, b"-0.0", 4)
            return 4
        memcpy(p, b"0.0", 3)
        return 3
    if 1e-4 <= ax < 4294967296.0:
        # At most six decimals below 2**32 (timestamps, durations): the
        # digits of round(|x| * 1e6) are the shortest text when they read
        # back as |x|, since doubles there are closer than 1e-6 apart.
        n = llround(ax * 1e6)
        # n / 1e6 is correctly rounded, as strtod of the text would be
        if <double>n / 1e6 != ax:
            n = -1
    if n >= 0:
        whole = n // 1000000
        frac = n % 1000000
        k = put_int(tmp, whole)
        tmp[k] = 46
        k += 1
        if frac == 0:
            tmp[k] = 48
            k += 1
        else:
            for i in range(6):
                tmp[k + 5 - i] = <char>(48 + frac % 10)
                frac //= 10
            k += 6
            while tmp[k - 1] == 48:
                k -= 1
        if neg:
            p[0] = 45
            memcpy(p + 1, tmp, k)
            return k + 1
        memcpy(p, tmp, k)
        return k
    # the shortest of 15, 16 and 17 significant digits that reads back
    # (subnormals carry fewer: from 1 digit up)
    for prec in range(14 if ax >= 2.2250738585072014e-308 else 0, 17):
        snprintf(tmp, sizeof(tmp), "%.*e", prec, ax)
        if prec == 16 or strtod(tmp, NULL) == ax:
            break
        # next to a power of two the doubles below are twice as close as
        # those above: the decimal one step away may read back when the
        # nearest does not
        if bump_last_digit(tmp, 1) and strtod(tmp, NULL) == ax:
            break
        snprintf(tmp, sizeof(tmp), "%.*e", prec, ax)
        if bump_last_digit(tmp, -1) and strtod(tmp, NULL) == ax:
            break
    # tmp is d.dddde[+-]XX
    i = 0
    while tmp[i] != 101:
        if tmp[i] != 46:
            digits[nd] = tmp[i]
            nd += 1
        i += 1
    while nd > 1 and digits[nd - 1] == 48:
        nd -= 1
    i += 1
    esign = -1 if tmp[i] == 45 else 1
    i += 1
    e = 0
    while tmp[i] != 0:
        e = e * 10 + (tmp[i] - 48)
        i += 1
    decpt = esign * e + 1
    return layout_repr(p, neg, digits, nd, decpt)


def float_repr(values):
    """``repr()`` of each float64, as an 'S' array (the row kernel's text)."""
    cdef const double[::1] v = np.ascontiguousarray(values, dtype=np.float64).reshape(-1)
    cdef Py_ssize_t n = v.shape[0], i
    out = np.zeros(n, dtype="S%d" % REPR_MAX)
    if n == 0:
        return out
    cdef char* buf = <char*><size_t>out.ctypes.data
    with nogil:
        for i in range(n):
            put_repr(buf + i * REPR_MAX, v[i])
    return out


def format_rows(list columns, bytes sep=b"\t", bytes unset=b"-", bytes end=b"\n",
                write=None, Py_ssize_t chunk_rows=8192):
    """Format rows from ``columns``, a list of ``(kind, values, decimals,
    unset_mask)`` with kind "int" (int64 array), "uint" (uint64 array), "float" (float64 array,
    ``decimals`` places), "repr" (float64 array, as Python's repr; NaN
    unset), "bytes" ('S' array) or "const" (``values`` is one
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
                elif kind == "uint":
                    arr = np.ascontiguousarray(values, dtype=np.uint64)
                    cols[j].kind = K_UINT
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
                elif kind == "repr":
                    arr = np.ascontiguousarray(values, dtype=np.float64)
                    cols[j].kind = K_REPR
                    row_max += REPR_MAX
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
            elif cols[j].kind == K_UINT:
                pos += put_uint(p + pos, (<const uint64_t*>cols[j].data)[i])
            elif cols[j].kind == K_FLOAT:
                x = (<const double*>cols[j].data)[i]
                if x != x:
                    memcpy(p + pos, unset, nunset)
                    pos += nunset
                else:
                    pos += snprintf(p + pos, FLOAT_MAX, "%.*f", cols[j].decimals, x)
            elif cols[j].kind == K_REPR:
                x = (<const double*>cols[j].data)[i]
                if x != x:
                    memcpy(p + pos, unset, nunset)
                    pos += nunset
                else:
                    pos += put_repr(p + pos, x)
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


# -- addresses ----------------------------------------------------------------
# Text of (n, 16) address rows (IPv4 stored IPv4-mapped, in the last four
# bytes): dotted quad for IPv4; RFC 5952 for IPv6 (lower-case hex without
# leading zeros, the longest run of two or more zero groups -- the first of
# equal runs -- written "::"), the text of Python's ipaddress.
cdef enum:
    ADDR_WIDTH = 39       # "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"

cdef const char* HEX = b"0123456789abcdef"


cdef inline Py_ssize_t put_u8(char* p, unsigned int v) noexcept nogil:
    if v >= 100:
        p[0] = <char>(48 + v // 100)
        p[1] = <char>(48 + (v // 10) % 10)
        p[2] = <char>(48 + v % 10)
        return 3
    if v >= 10:
        p[0] = <char>(48 + v // 10)
        p[1] = <char>(48 + v % 10)
        return 2
    p[0] = <char>(48 + v)
    return 1


cdef inline Py_ssize_t put_hex16(char* p, unsigned int v) noexcept nogil:
    cdef Py_ssize_t k = 0
    cdef int shift = 12
    while shift > 0 and ((v >> shift) & 15) == 0:
        shift -= 4
    while shift >= 0:
        p[k] = HEX[(v >> shift) & 15]
        k += 1
        shift -= 4
    return k


cdef Py_ssize_t put_address(char* p, const uint8_t* a, bint v4) noexcept nogil:
    """Write one address at ``p`` (at most ADDR_WIDTH bytes); its length."""
    cdef Py_ssize_t k = 0
    cdef int i
    cdef int g[8]
    cdef int best = -1, best_len = 1, run = -1, run_len = 0
    if v4:
        for i in range(4):
            if i:
                p[k] = 46     # '.'
                k += 1
            k += put_u8(p + k, a[12 + i])
        return k
    for i in range(8):
        g[i] = (a[2 * i] << 8) | a[2 * i + 1]
        if g[i] == 0:
            if run < 0:
                run = i
                run_len = 0
            run_len += 1
            if run_len > best_len:
                best, best_len = run, run_len
        else:
            run = -1
    i = 0
    while i < 8:
        if i == best:
            p[k] = 58         # ':'
            p[k + 1] = 58
            k += 2
            i += best_len
            continue
        if i and i != best + best_len:
            p[k] = 58
            k += 1
        k += put_hex16(p + k, g[i])
        i += 1
    return k


def address_bytes(addrs, ip_version):
    """Text of (n, 16) uint8 address rows as an ``'S39'`` array (dotted quad
    where ``ip_version`` is 4, RFC 5952 otherwise), formatted in one GIL-free
    loop."""
    cdef const uint8_t[:, ::1] a = np.ascontiguousarray(addrs, dtype=np.uint8).reshape(-1, 16)
    cdef const uint8_t[::1] v = np.ascontiguousarray(ip_version, dtype=np.uint8).reshape(-1)
    cdef Py_ssize_t n = a.shape[0], i, k
    if v.shape[0] != n:
        raise ValueError("addresses and ip_version differ in length")
    out = np.zeros(n, dtype="S%d" % ADDR_WIDTH)
    if n == 0:
        return out
    cdef char* buf = <char*><size_t>out.ctypes.data
    with nogil:
        for i in range(n):
            put_address(buf + i * ADDR_WIDTH, &a[i, 0], v[i] == 4)
    return out


def address_text(addrs, ip_version):
    """Like :func:`address_bytes`, as an object array of ``str``."""
    cdef const uint8_t[:, ::1] a = np.ascontiguousarray(addrs, dtype=np.uint8).reshape(-1, 16)
    cdef const uint8_t[::1] v = np.ascontiguousarray(ip_version, dtype=np.uint8).reshape(-1)
    cdef Py_ssize_t n = a.shape[0], i, k
    cdef char tmp[ADDR_WIDTH + 1]
    if v.shape[0] != n:
        raise ValueError("addresses and ip_version differ in length")
    out = np.empty(n, dtype=object)
    cdef object[:] o = out
    for i in range(n):
        k = put_address(tmp, &a[i, 0], v[i] == 4)
        o[i] = tmp[:k].decode("ascii")
    return out
