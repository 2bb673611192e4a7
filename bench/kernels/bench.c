/* SPDX-License-Identifier: MIT */
/*
 * Benchmark kernels (bench/): a scalar, compute-bound loop for the
 * interpreter benchmark. Each workgroup runs `iters` iterations of an
 * xorshift + local-memory update loop (the same shape as kiln_pe_bench's
 * bench_scalar) and stores its retired-instruction count (CSR instret) in
 * out[wg] so the host can compute instructions per second.
 */
#include <kiln/device/kiln_device.h>

static inline uint64_t read_instret(void)
{
    uint64_t v;
    __asm__ volatile("csrr %0, 0xc02" : "=r"(v));
    return v;
}

KILN_KERNEL void bench_scalar(KILN_OUT uint64_t *out, KILN_OUT uint64_t *sink, uint32_t iters)
{
    uint32_t *lm = KILN_LM(uint32_t, 0);
    uint64_t x = 88172645463325252ull + kiln_wg_id(), acc = 0;
    for (uint32_t i = 0; i < iters; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        lm[i & 1023] += (uint32_t)x;
        acc += lm[(i * 7) & 1023];
    }
    sink[kiln_wg_id()] = acc;
    out[kiln_wg_id()] = read_instret();
}
