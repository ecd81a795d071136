# Byte-order reads shared by every kernel.  Callers check lengths first; these
# only load.  memcpy keeps unaligned loads defined behaviour and compiles to a
# single mov on x86-64.
from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy


cdef inline uint16_t ld_be16(const uint8_t* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[0] << 8) | p[1])


cdef inline uint32_t ld_be32(const uint8_t* p) noexcept nogil:
    return ((<uint32_t>p[0] << 24) | (<uint32_t>p[1] << 16)
            | (<uint32_t>p[2] << 8) | <uint32_t>p[3])


cdef inline uint16_t ld_le16(const uint8_t* p) noexcept nogil:
    return <uint16_t>((<uint16_t>p[1] << 8) | p[0])


cdef inline uint32_t ld_le32(const uint8_t* p) noexcept nogil:
    return ((<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16)
            | (<uint32_t>p[1] << 8) | <uint32_t>p[0])


cdef inline uint64_t ld_le64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>ld_le32(p)) | ((<uint64_t>ld_le32(p + 4)) << 32)


cdef inline uint16_t ld16(const uint8_t* p, bint big) noexcept nogil:
    return ld_be16(p) if big else ld_le16(p)


cdef inline uint32_t ld32(const uint8_t* p, bint big) noexcept nogil:
    return ld_be32(p) if big else ld_le32(p)
