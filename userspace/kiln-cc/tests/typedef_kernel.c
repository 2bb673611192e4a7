// SPDX-License-Identifier: MIT
/* Parameter types spelled through typedefs: the metadata records the type they stand for. */
#include <kiln/device/kiln_device.h>

typedef float real_t;                   /* chain: real_t -> float */
typedef real_t weight_t;                /* two levels */
typedef const float cfloat_t;           /* const inside the typedef */
typedef uint8_t byte_t;                 /* -> uint8_t -> __uint8_t -> unsigned char */
typedef int32_t index_t;
typedef uint32_t count_t;
typedef int8_t q8_t;
typedef float *fptr_t;                  /* a pointer typedef */
typedef kiln_bf16_t bf16_alias_t;       /* alias of kiln_bf16_t: storage uint16_t */
enum mode { MODE_A, MODE_B };
typedef enum mode mode_t_;

KILN_KERNEL void typedef_args(const weight_t *w, real_t *restrict out, cfloat_t *cin,
                              KILN_OUT byte_t *bytes, const index_t *idx, count_t n,
                              q8_t q, fptr_t fp, KILN_INOUT const q8_t *qin,
                              bf16_alias_t *bf, const kiln_fp16_t *h, mode_t_ mode,
                              kiln_bf16_t sbf, index_t sidx, byte_t sb, _Bool flag,
                              unsigned short us, long l, void *vp, KILN_IN real_t *rin,
                              volatile int *vi)
{
    out[0] = w[0] + cin[0] + (float)n + q + fp[0] + qin[0] + bf[0] + h[0] + mode + sbf +
             sidx + sb + flag + us + (float)l + rin[0] + *vi;
    bytes[0] = (byte_t)idx[0];
    (void)vp;
}
