/* libFuzzer driver for the SipHash kernels (_siphash.h, and the 8-lane
 * _siphash_lanes.h when present), built with -fsanitize=fuzzer,address,undefined.
 *
 * Differential against a SipHash-2-4 written here from the paper (byte at a
 * time, no shared macros); the flow key must not depend on the direction;
 * the lane kernels (scalar and AVX2) must equal the scalar hash per lane.
 * Input: 16 key bytes, then the message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_siphash.h"
#if defined(__has_include)
#if __has_include("_siphash_lanes.h")
#include "_siphash_lanes.h"
#define HAVE_LANES 1
#endif
#endif

static uint64_t rotl(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static void round_(uint64_t v[4]) {
    v[0] += v[1]; v[1] = rotl(v[1], 13); v[1] ^= v[0]; v[0] = rotl(v[0], 32);
    v[2] += v[3]; v[3] = rotl(v[3], 16); v[3] ^= v[2];
    v[0] += v[3]; v[3] = rotl(v[3], 21); v[3] ^= v[0];
    v[2] += v[1]; v[1] = rotl(v[1], 17); v[1] ^= v[2]; v[2] = rotl(v[2], 32);
}

static uint64_t ref_siphash(const uint8_t key[16], const uint8_t *m, size_t len) {
    uint64_t k0 = 0, k1 = 0;
    for (int i = 7; i >= 0; i--) { k0 = (k0 << 8) | key[i]; k1 = (k1 << 8) | key[8 + i]; }
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    size_t blocks = len / 8 + 1;            /* the last block carries the length */
    for (size_t b = 0; b < blocks; b++) {
        uint64_t w = 0;
        for (int i = 7; i >= 0; i--) {
            size_t at = b * 8 + (size_t)i;
            uint8_t byte = at < len ? m[at] : 0;
            if (b == blocks - 1 && i == 7)
                byte = (uint8_t)len;
            w = (w << 8) | byte;
        }
        v[3] ^= w; round_(v); round_(v); v[0] ^= w;
    }
    v[2] ^= 0xff;
    round_(v); round_(v); round_(v); round_(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 16)
        return 0;
    size_t len = size - 16;
    uint8_t *m = malloc(len ? len : 1);
    memcpy(m, data + 16, len);
    uint64_t k0 = fs_load_le64(data), k1 = fs_load_le64(data + 8);
    uint64_t want = ref_siphash(data, m, len);
    if (fs_siphash24(k0, k1, m, len) != want)
        __builtin_trap();
    if (len >= 36) {
        uint16_t sp = (uint16_t)(m[32] << 8 | m[33]), dp = (uint16_t)(m[34] << 8 | m[35]);
        if (fs_flow_key(m, sp, m + 16, dp) != fs_flow_key(m + 16, dp, m, sp))
            __builtin_trap();
    }
#ifdef HAVE_LANES
    /* every lane hashes the same words under its own key (key rotated by lane) */
    size_t nw = len / 8;
    uint64_t *words = malloc((nw ? nw : 1) * FS_SIP_LANES * sizeof(uint64_t));
    uint64_t lk0[FS_SIP_LANES], lk1[FS_SIP_LANES], last[FS_SIP_LANES], out[FS_SIP_LANES];
    uint64_t tail = ((uint64_t)(len & 0xff)) << 56;
    for (size_t i = 0; i < (len & 7); i++)
        tail |= (uint64_t)m[nw * 8 + i] << (8 * i);
    for (int lane = 0; lane < FS_SIP_LANES; lane++) {
        lk0[lane] = rotl(k0, lane + 1);
        lk1[lane] = k1 ^ (uint64_t)lane;
        last[lane] = tail;
        for (size_t w = 0; w < nw; w++)
            words[w * FS_SIP_LANES + lane] = fs_load_le64(m + 8 * w);
    }
    for (int simd = 0; simd <= 1; simd++) {
        /* the kernel picked for nw words (w2 / w5 specialisations included) */
        fs_sip_lanes_fn fn = fs_sip_lanes_select(simd, (int)nw);
        fn(lk0, lk1, words, nw, last, out);
        for (int lane = 0; lane < FS_SIP_LANES; lane++)
            if (out[lane] != fs_siphash24(lk0[lane], lk1[lane], m, len))
                __builtin_trap();
    }
    free(words);
#endif
    free(m);
    return 0;
}
