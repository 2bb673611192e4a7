// SPDX-License-Identifier: MIT
#include <kiln/device/kiln_device.h>
KILN_KERNEL KILN_LOCAL_MEM(65536) void meta_test(const float *in, KILN_OUT kiln_bf16_t *out,
                                                 int8_t q, double scale, uint64_t count)
{
    kiln_se_fill(KILN_LM(float, 0), (float)scale, 4);
    kiln_dma_copy(out, in, (uint32_t)count * q, 0);
    kiln_dma_wait_all();
}

/* <stdint.h> typedefs reach the metadata as their element types, not as "none". */
KILN_KERNEL void fixed_width(const uint8_t *u8p, int8_t *i8p, const int16_t *i16p, int32_t *i32p,
                             uint32_t *u32p, const uint64_t *u64p, size_t *szp)
{
    i8p[0] = (int8_t)u8p[0];
    i32p[0] = i16p[0];
    u32p[0] = (uint32_t)u64p[0];
    szp[0] = 0;
}
