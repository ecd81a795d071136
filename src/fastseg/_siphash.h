/* SipHash-2-4 (Aumasson & Bernstein), scalar, for short messages.
 * Shared by the flow key (parse) and the SYN cookies (cookies). */
#ifndef FASTSEG_SIPHASH_H
#define FASTSEG_SIPHASH_H
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define FS_ROTL64(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))
#define FS_SIPROUND(v0, v1, v2, v3) do {                              \
    v0 += v1; v1 = FS_ROTL64(v1, 13); v1 ^= v0; v0 = FS_ROTL64(v0, 32); \
    v2 += v3; v3 = FS_ROTL64(v3, 16); v3 ^= v2;                       \
    v0 += v3; v3 = FS_ROTL64(v3, 21); v3 ^= v0;                       \
    v2 += v1; v1 = FS_ROTL64(v1, 17); v1 ^= v2; v2 = FS_ROTL64(v2, 32); \
} while (0)

static inline uint64_t fs_load_le64(const uint8_t *p) {
    return (uint64_t)p[0] | ((uint64_t)p[1] << 8) | ((uint64_t)p[2] << 16) |
           ((uint64_t)p[3] << 24) | ((uint64_t)p[4] << 32) |
           ((uint64_t)p[5] << 40) | ((uint64_t)p[6] << 48) |
           ((uint64_t)p[7] << 56);
}

/* k0, k1: the 16-byte key as two little-endian 64-bit words. */
static inline uint64_t fs_siphash24(uint64_t k0, uint64_t k1,
                                    const uint8_t *in, size_t len) {
    uint64_t v0 = 0x736f6d6570736575ULL ^ k0;
    uint64_t v1 = 0x646f72616e646f6dULL ^ k1;
    uint64_t v2 = 0x6c7967656e657261ULL ^ k0;
    uint64_t v3 = 0x7465646279746573ULL ^ k1;
    const uint8_t *end = in + (len & ~(size_t)7);
    uint64_t m, b = ((uint64_t)len) << 56;
    for (; in != end; in += 8) {
        m = fs_load_le64(in);
        v3 ^= m;
        FS_SIPROUND(v0, v1, v2, v3);
        FS_SIPROUND(v0, v1, v2, v3);
        v0 ^= m;
    }
    switch (len & 7) {
    case 7: b |= ((uint64_t)in[6]) << 48; /* fall through */
    case 6: b |= ((uint64_t)in[5]) << 40; /* fall through */
    case 5: b |= ((uint64_t)in[4]) << 32; /* fall through */
    case 4: b |= ((uint64_t)in[3]) << 24; /* fall through */
    case 3: b |= ((uint64_t)in[2]) << 16; /* fall through */
    case 2: b |= ((uint64_t)in[1]) << 8;  /* fall through */
    case 1: b |= ((uint64_t)in[0]); break;
    case 0: break;
    }
    v3 ^= b;
    FS_SIPROUND(v0, v1, v2, v3);
    FS_SIPROUND(v0, v1, v2, v3);
    v0 ^= b;
    v2 ^= 0xff;
    FS_SIPROUND(v0, v1, v2, v3);
    FS_SIPROUND(v0, v1, v2, v3);
    FS_SIPROUND(v0, v1, v2, v3);
    FS_SIPROUND(v0, v1, v2, v3);
    return v0 ^ v1 ^ v2 ^ v3;
}

/* The flow key: SipHash-2-4 under a fixed public key over the 36-byte
 * canonical 4-tuple  lo_addr[16] hi_addr[16] lo_port(be16) hi_port(be16),
 * where (lo, hi) orders the two (address, port) endpoints by address bytes,
 * then port.  Addresses are 16 bytes (IPv4 as ::ffff:a.b.c.d).  The same in
 * both directions, every process and every machine, so work can be
 * partitioned by it.  Not a defence against chosen collisions: the tracker
 * rehashes it with a per-process secret. */
#define FS_FLOWKEY_K0 0x6b20776f6c662067ULL /* "g flow k" LE */
#define FS_FLOWKEY_K1 0x6765737473616679ULL /* "yfastseg" LE */

static inline uint64_t fs_flow_key(const uint8_t *src, uint16_t sport,
                                   const uint8_t *dst, uint16_t dport) {
    uint8_t buf[36];
    int c = memcmp(src, dst, 16);
    const uint8_t *lo = src, *hi = dst;
    uint16_t lop = sport, hip = dport;
    if (c > 0 || (c == 0 && sport > dport)) {
        lo = dst; hi = src; lop = dport; hip = sport;
    }
    memcpy(buf, lo, 16);
    memcpy(buf + 16, hi, 16);
    buf[32] = (uint8_t)(lop >> 8); buf[33] = (uint8_t)lop;
    buf[34] = (uint8_t)(hip >> 8); buf[35] = (uint8_t)hip;
    return fs_siphash24(FS_FLOWKEY_K0, FS_FLOWKEY_K1, buf, 36);
}
#endif
