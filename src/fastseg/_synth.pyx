# cython: language_level=3
"""Record assembly for fastseg.synth: header rows + payload pattern -> file bytes.

Headers and checksums are built column-wise in numpy; only the final
variable-length concatenation, which numpy cannot express without a
per-byte index array, lives here.
"""
from libc.string cimport memcpy, memset
from libc.stdint cimport uint8_t, int32_t, int64_t, uint32_t


cdef inline void _put_le32(uint8_t* p, uint32_t v) noexcept nogil:
    p[0] = v & 0xff
    p[1] = (v >> 8) & 0xff
    p[2] = (v >> 16) & 0xff
    p[3] = (v >> 24) & 0xff


cdef Py_ssize_t _assemble(uint8_t* out, Py_ssize_t out_len,
                          const uint8_t[:, ::1] pre, Py_ssize_t pre_len,
                          const uint8_t[:, ::1] head, const int32_t[::1] head_cap,
                          const uint8_t[::1] pattern, const int64_t[::1] pay_off,
                          const int32_t[::1] pay_cap, bint pcapng) noexcept nogil:
    cdef Py_ssize_t n = head.shape[0], i, pos = 0, start, body, pad
    cdef Py_ssize_t npat = pattern.shape[0]
    for i in range(n):
        start = pos
        body = head_cap[i] + pay_cap[i]
        pad = ((4 - body % 4) % 4) if pcapng else 0
        # Callers size `out` from the same lengths; stop rather than overrun.
        if pos + pre_len + body + pad + (4 if pcapng else 0) > out_len:
            return -1
        if pay_cap[i] > 0 and pay_off[i] + pay_cap[i] > npat:
            return -1
        memcpy(out + pos, &pre[i, 0], pre_len)
        pos += pre_len
        memcpy(out + pos, &head[i, 0], head_cap[i])
        pos += head_cap[i]
        if pay_cap[i] > 0:
            memcpy(out + pos, &pattern[pay_off[i]], pay_cap[i])
            pos += pay_cap[i]
        if pcapng:
            memset(out + pos, 0, pad)
            pos += pad
            # Enhanced Packet Block: the total length is repeated at the end.
            memcpy(out + pos, out + start + 4, 4)
            pos += 4
    return pos


def assemble(unsigned char[::1] out, const uint8_t[:, ::1] pre, Py_ssize_t pre_len,
             const uint8_t[:, ::1] head, const int32_t[::1] head_cap,
             const uint8_t[::1] pattern, const int64_t[::1] pay_off,
             const int32_t[::1] pay_cap, bint pcapng):
    """Write one capture record per row into ``out``; return the bytes written.

    Record i is ``pre[i, :pre_len] + head[i, :head_cap[i]] +
    pattern[pay_off[i] : pay_off[i] + pay_cap[i]]`` and, for pcapng, zero
    padding to 4 bytes and the block length copied from ``pre[i, 4:8]``.
    Raises ValueError if ``out`` is too small or an offset is out of range.
    """
    if pre.shape[1] < pre_len or head.shape[0] != pre.shape[0] \
            or head_cap.shape[0] != head.shape[0] or pay_off.shape[0] != head.shape[0] \
            or pay_cap.shape[0] != head.shape[0]:
        raise ValueError("assemble: inconsistent array shapes")
    cdef Py_ssize_t i, n = head.shape[0], width = head.shape[1]
    for i in range(n):
        if head_cap[i] < 0 or head_cap[i] > width or pay_cap[i] < 0 or pay_off[i] < 0:
            raise ValueError("assemble: length out of range")
    cdef Py_ssize_t written
    with nogil:
        written = _assemble(&out[0] if out.shape[0] else NULL, out.shape[0], pre, pre_len,
                            head, head_cap, pattern, pay_off, pay_cap, pcapng)
    if written < 0:
        raise ValueError("assemble: output buffer too small or payload offset out of range")
    return written
