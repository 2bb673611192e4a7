/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE: element type conversions (round to nearest even, saturation).
 */
#include <math.h>
#include <string.h>

#include "pe_internal.h"

static uint32_t f2u(float f)
{
    uint32_t u;

    memcpy(&u, &f, 4);
    return u;
}

static float u2f(uint32_t u)
{
    float f;

    memcpy(&f, &u, 4);
    return f;
}

uint16_t kiln_f32_to_bf16(float f)
{
    uint32_t u = f2u(f);

    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (uint16_t)((u >> 16) | 0x40);     /* quiet NaN, sign kept */
    }
    u += 0x7fffu + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float kiln_bf16_to_f32(uint16_t h)
{
    return u2f((uint32_t)h << 16);
}

uint16_t kiln_f32_to_f16(float f)
{
    uint32_t u = f2u(f);
    uint32_t sign = (u >> 16) & 0x8000u;
    uint32_t a = u & 0x7fffffffu;
    int32_t e;
    uint32_t m, r;

    if (a > 0x7f800000u) {
        return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x1ff));
    }
    if (a >= 0x477ff000u) {
        /* >= 65520 rounds to infinity */
        return (uint16_t)(sign | 0x7c00u);
    }
    e = (int32_t)(a >> 23) - 127 + 15;
    if (e >= 1) {
        /* normal: round 23-bit mantissa to 10 bits, RNE */
        m = a & 0x7fffffu;
        r = ((uint32_t)e << 10) | (m >> 13);
        m &= 0x1fffu;
        if (m > 0x1000u || (m == 0x1000u && (r & 1))) {
            r++;
        }
        return (uint16_t)(sign | r);
    }
    if (e < -10) {
        return (uint16_t)sign;     /* below half the smallest subnormal */
    }
    /* subnormal: value = (1.m) * 2^(e-15-... ) */
    m = (a & 0x7fffffu) | 0x800000u;
    {
        uint32_t shift = (uint32_t)(14 - e);    /* 14..24 */
        uint32_t q = m >> shift;
        uint32_t rem = m & ((1u << shift) - 1);
        uint32_t half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1))) {
            q++;
        }
        return (uint16_t)(sign | q);
    }
}

float kiln_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t e = (h >> 10) & 0x1f, m = h & 0x3ffu;

    if (e == 0x1f) {
        /* a NaN comes out quiet, payload kept (as the host's vcvtph2ps) */
        return u2f(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    }
    if (e == 0) {
        float v = (float)m * (1.0f / 16777216.0f);  /* m * 2^-24, exact */
        return sign ? -v : v;
    }
    return u2f(sign | ((e + 112) << 23) | (m << 13));
}

int8_t kiln_f32_to_i8(float f)
{
    float r;

    if (isnan(f)) {
        return 0;
    }
    r = nearbyintf(f);
    if (r <= -128.0f) {
        return -128;
    }
    if (r >= 127.0f) {
        return 127;
    }
    return (int8_t)r;
}

int32_t kiln_f32_to_i32(float f)
{
    float r;

    if (isnan(f)) {
        return 0;
    }
    r = nearbyintf(f);
    if (r <= -2147483648.0f) {
        return INT32_MIN;
    }
    if (r >= 2147483648.0f) {
        return INT32_MAX;
    }
    return (int32_t)r;
}

/* RISC-V fmin.s / fmax.s: -0 < +0, a single NaN operand yields the other */
static float minmax_rv(float a, float b, bool max)
{
    if (isnan(a)) {
        return isnan(b) ? NAN : b;
    }
    if (isnan(b)) {
        return a;
    }
    if (a == b) {
        return (signbit(a) != 0) == max ? b : a;
    }
    return (a < b) != max ? a : b;
}

float kiln_fminf_rv(float a, float b)
{
    return minmax_rv(a, b, false);
}

float kiln_fmaxf_rv(float a, float b)
{
    return minmax_rv(a, b, true);
}
