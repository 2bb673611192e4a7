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

/* ---- fidelity figures (docs/fidelity.md) --------------------------------- */

/* Does nothing: the modelled cost of a launch itself. */
KILN_KERNEL void bench_noop(void)
{
}

/*
 * Streams @bytes_per_wg bytes from @src (DRAM or SRAM) into local memory,
 * in 64 KiB transfers on alternating tags, as a bandwidth-bound kernel
 * does: every workgroup reads the same source, the fabric carries all of
 * it.
 */
KILN_KERNEL void bench_stream(const uint8_t *src, uint64_t bytes_per_wg)
{
    const uint32_t chunk = 64 * 1024;
    for (uint64_t off = 0, i = 0; off < bytes_per_wg; off += chunk, i++) {
        if (i >= 2) {
            kiln_dma_wait(1u << (i & 1));
        }
        kiln_dma_copy(KILN_LM(uint8_t, (i & 1) * chunk), src + off, chunk, (uint32_t)(i & 1));
    }
    kiln_dma_wait_all();
}

/*
 * Full-load GEMM: each workgroup keeps a 128 x 128 tile of A in local memory
 * (weight stationary, as MTIA's DPE caches one operand) and streams @tiles
 * tiles of B (cycling through @b_tiles of them) from @b, double-buffered,
 * accumulating into a 128 x 128 tile of C (fp32, or int32 for int8) it
 * stores at c + wg * 128 * 128 at the end. With 64 workgroups every DPE is
 * busy: bf16 needs 1.38 TB/s of SRAM traffic (half of SRAM's bandwidth),
 * int8 the same bytes per second at twice the MACs.
 */
KILN_ALWAYS_INLINE void full_load_gemm(const void *a, const void *b, void *c, uint32_t tiles,
                                   uint32_t b_tiles, uint32_t dtype, uint32_t elem_bytes)
{
    const uint32_t t = 128, tile = t * t * elem_bytes;
    uint8_t *la = KILN_LM(uint8_t, 0);
    uint8_t *lc = KILN_LM(uint8_t, 3 * tile);
    kiln_dma_copy(la, a, tile, 2);
    kiln_dma_copy(KILN_LM(uint8_t, tile), b, tile, 0);
    kiln_dma_wait(1u << 2);
    for (uint32_t i = 0; i < tiles; i++) {
        uint32_t cur = i & 1;
        if (i + 1 < tiles) {
            kiln_dma_copy(KILN_LM(uint8_t, (2 - cur) * tile),
                          (const uint8_t *)b + (uint64_t)((i + 1) % b_tiles) * tile, tile, 1 - cur);
        }
        kiln_dma_wait(1u << cur);
        kiln_matmul(lc, la, KILN_LM(uint8_t, (1 + cur) * tile), t, t, t, t, t, t,
                    dtype, i ? KILN_DPE_ACCUM : 0);
    }
    kiln_dma_copy((uint8_t *)c + (uint64_t)kiln_wg_id() * t * t * 4, lc, t * t * 4, 0);
    kiln_dma_wait(1);
}

/* bf16 x bf16 -> fp32: the energy model's calibration point (85 W). */
KILN_KERNEL void bench_gemm_bf16(const uint16_t *a, const uint16_t *b, KILN_OUT float *c,
                                 uint32_t tiles, uint32_t b_tiles)
{
    full_load_gemm(a, b, c, tiles, b_tiles, KILN_DTYPE_BF16, 2);
}

/* int8 x int8 -> int32: the int8 peak (354 TOPS). */
KILN_KERNEL void bench_gemm_int8(const int8_t *a, const int8_t *b, KILN_OUT int32_t *c,
                                 uint32_t tiles, uint32_t b_tiles)
{
    full_load_gemm(a, b, c, tiles, b_tiles, KILN_DTYPE_INT8, 1);
}
