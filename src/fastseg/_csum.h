/* One's-complement Internet checksum (RFC 1071) kernels shared by the parser
 * and the checksum module.  fs_csum_partial returns an unfolded 64-bit sum of
 * the bytes taken as big-endian 16-bit words; fs_csum_fold folds it to 16 bits.
 * Several independent accumulators over 32-bit loads let the compiler keep the
 * adds in flight; carries are folded at the end (a 64-bit accumulator of 32-bit
 * words cannot overflow below 2^32 words). */
#ifndef FASTSEG_CSUM_H
#define FASTSEG_CSUM_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>

static inline uint64_t fs_csum_partial(const uint8_t *p, size_t len) {
    uint64_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    uint32_t w0, w1, w2, w3;
    while (len >= 16) {
        memcpy(&w0, p, 4); memcpy(&w1, p + 4, 4);
        memcpy(&w2, p + 8, 4); memcpy(&w3, p + 12, 4);
        a0 += w0; a1 += w1; a2 += w2; a3 += w3;
        p += 16; len -= 16;
    }
    while (len >= 4) { memcpy(&w0, p, 4); a0 += w0; p += 4; len -= 4; }
    uint64_t s = a0 + a1 + a2 + a3;
    /* s is a sum of native-order (little-endian on x86) 32-bit words; fold to
     * 16 bits, then byte-swap once to big-endian word order (RFC 1071 1.2.B). */
    s = (s & 0xffffffffULL) + (s >> 32);
    s = (s & 0xffffffffULL) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    s = ((s & 0xff) << 8) | (s >> 8);
#endif
    if (len >= 2) { s += ((uint32_t)p[0] << 8) | p[1]; p += 2; len -= 2; }
    if (len) s += (uint32_t)p[0] << 8;
    return s;
}

static inline uint16_t fs_csum_fold(uint64_t s) {
    s = (s & 0xffffffffULL) + (s >> 32);
    s = (s & 0xffffffffULL) + (s >> 32);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    s = (s & 0xffff) + (s >> 16);
    return (uint16_t)s;
}

/* Checksum (complemented) of a buffer: the value that goes in the field. */
static inline uint16_t fs_internet_checksum(const uint8_t *p, size_t len) {
    return (uint16_t)~fs_csum_fold(fs_csum_partial(p, len));
}
#endif
