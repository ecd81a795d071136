/* libFuzzer driver for the header-only checksum kernels (_csum.h), built with
 * -fsanitize=fuzzer,address,undefined.  Differential: every path (the
 * portable loop, the AVX2 clone when the CPU has it, any alignment, any split
 * of the buffer at an even offset) must equal RFC 1071 summed one 16-bit
 * word at a time.  The input is copied to an exact-size heap block so that
 * ASan sees any read past the end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "_csum.h"

static uint16_t ref_checksum(const uint8_t *p, size_t len) {
    uint64_t s = 0;
    for (size_t i = 0; i + 1 < len; i += 2)
        s += ((uint32_t)p[i] << 8) | p[i + 1];
    if (len & 1)
        s += (uint32_t)p[len - 1] << 8;
    while (s >> 16)
        s = (s & 0xffff) + (s >> 16);
    return (uint16_t)~s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0)
        return 0;
    size_t shift = data[0] & 7;         /* alignment of the copy */
    size_t split = size > 1 ? data[1] : 0;
    const uint8_t *msg = data + (size > 1 ? 2 : 1);
    size_t len = size - (size > 1 ? 2 : 1);
    uint8_t *block = malloc(len + shift ? len + shift : 1);
    uint8_t *p = block + shift;
    memcpy(p, msg, len);

    uint16_t want = ref_checksum(p, len);
    if (fs_internet_checksum(p, len) != want)
        __builtin_trap();
#ifdef FS_CSUM_DISPATCH
    if (fs_csum_have_avx2() && fs_csum_words_avx2(p, len / 4) != fs_csum_words_base(p, len / 4))
        __builtin_trap();
#endif
    /* RFC 1071 2(C): sums of parts split at an even offset add up */
    size_t cut = (split * 2) % (len + 1);
    cut &= ~(size_t)1;
    uint64_t parts = fs_csum_partial(p, cut) + fs_csum_partial(p + cut, len - cut);
    if ((uint16_t)~fs_csum_fold(parts) != want)
        __builtin_trap();
    free(block);
    return 0;
}
