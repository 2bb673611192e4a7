/* SPDX-License-Identifier: MIT */
/*
 * GEMM: C[m x n] = act(A[m x k] * B[k x n] (+ C) + bias[n]) over the PE grid.
 * int8: C and bias are int32 (wrap-around) and the only activation is relu.
 * flags: bit 0 A transposed (stored k x m), bit 1 B transposed (n x k),
 * bit 2 accumulate into C, bits 8..11 activation (KILN_ACT_*).
 *
 * Two kernels per type (docs/pe-isa.md §7 explains the choice and the numbers):
 *
 *  kiln_gemm_<t>         every workgroup computes whole C tiles, streaming k
 *                        from wherever A and B are. The tile is as large as
 *                        local memory allows while every PE still gets one
 *                        (256 x 256 at 2048^2), so each byte read is used by
 *                        256 multiply-adds; with A and B in SRAM the shared
 *                        2.7 TB/s then carries a 2K^3 bf16 GEMM in half its
 *                        compute time. k is streamed in chunks through two
 *                        buffers (DMA of chunk i+1 overlaps the DPE on chunk
 *                        i), and with several tiles per workgroup the C tile
 *                        just finished is written back while the next one is
 *                        computed.
 *
 *  kiln_gemm_<t>_staged  COOPERATIVE, for A and B in DRAM: the 204.8 GB/s of
 *                        DRAM would be read (m/TM + n/TN) times over, so the
 *                        workgroups first copy A and B once into an SRAM
 *                        workspace `ws` and compute from there (reuse across
 *                        PEs through SRAM). Work runs in rounds of one tile
 *                        per workgroup, each round's k in panels, one barrier
 *                        phase per panel; in every phase the DMA engines copy
 *                        the next panel's new A/B slices DRAM -> SRAM and
 *                        write back a slice of the previous round's C while
 *                        the DPEs compute, so DRAM stays busy and the time
 *                        approaches bytes / 204.8 GB/s.
 */
#include "ops_common.h"

#define GEMM_FLAG_TRANS_A 1u
#define GEMM_FLAG_TRANS_B 2u
#define GEMM_FLAG_ACCUM 4u

/* DMA tags */
#define TAG_CHUNK 0        /* 0, 1: the two k-chunk buffers */
#define TAG_WB 2           /* 2, 3: write-back of C buffer 0, 1 */
#define TAG_CIN 4          /* C (accumulate) or the int8 bias rows into the tile */
#define TAG_BIAS 5
#define TAG_STAGE 6        /* staged kernel: DRAM -> SRAM copies */

/* Local memory the kernel leaves to its stack (descriptors, spills) */
#define STACK_RESERVE (16u << 10)

struct gemm {
    const uint8_t *a, *b;
    uint8_t *c;
    const uint8_t *bias;
    uint32_t m, n, k, lda, ldb, ldc, flags, dtype, es, act;
};

/* Tile shape and local-memory layout */
struct tiling {
    uint32_t tm, tn, tk, cbufs;     /* C tile, k chunk, C buffers (1 or 2) */
    uint32_t tiles_m, tiles_n;
    uint32_t lm_c[2], lm_a[2], lm_b[2], lm_bias;
};

static uint32_t div_up(uint32_t a, uint32_t b)
{
    return (a + b - 1) / b;
}

/*
 * The largest tile (fewest bytes moved per multiply-add) that still gives at
 * least @min_tiles tiles, then the largest k chunk that fits next to it (a
 * multiple of 16, at most 256): bigger chunks mean fewer DPE ops, so less
 * per-op overhead.
 */
static void pick_tiling(struct tiling *t, uint32_t m, uint32_t n, uint32_t es,
                        uint32_t min_tiles, int need_two_c)
{
    static const uint16_t shapes[][2] = {
        { 256, 256 }, { 256, 128 }, { 128, 128 }, { 128, 64 }, { 64, 64 }, { 64, 32 }, { 32, 32 },
    };
    uint32_t budget = (uint32_t)kiln_local_size() - STACK_RESERVE, i, used, off;

    for (i = 0; i + 1 < sizeof(shapes) / sizeof(shapes[0]); i++) {
        uint32_t two_c = 2u * shapes[i][0] * shapes[i][1] * 4 + 2u * (shapes[i][0] + shapes[i][1]) * 16 * es;
        if (div_up(m, shapes[i][0]) * div_up(n, shapes[i][1]) >= min_tiles &&
            (!need_two_c || two_c + shapes[i][1] * 4u <= budget)) {
            break;
        }
    }
    t->tm = shapes[i][0];
    t->tn = shapes[i][1];
    t->tiles_m = div_up(m, t->tm);
    t->tiles_n = div_up(n, t->tn);
    /* two C buffers (write-back overlaps the next tile) when there is room */
    used = t->tm * t->tn * 4;
    t->cbufs = 2 * used + 2 * (t->tm + t->tn) * 16 * es + t->tn * 4 <= budget ? 2 : 1;
    used = t->cbufs * t->tm * t->tn * 4 + t->tn * 4;
    t->tk = (budget - used) / (2 * (t->tm + t->tn) * es) / 16 * 16;
    t->tk = t->tk > 256 ? 256 : t->tk < 16 ? 16 : t->tk;
    t->lm_c[0] = 0;
    t->lm_c[1] = t->tm * t->tn * 4;
    off = t->cbufs * t->tm * t->tn * 4;
    t->lm_a[0] = off;
    t->lm_a[1] = off + t->tm * t->tk * es;
    off += 2 * t->tm * t->tk * es;
    t->lm_b[0] = off;
    t->lm_b[1] = off + t->tk * t->tn * es;
    t->lm_bias = off + 2 * t->tk * t->tn * es;
}

/* Issue a prepared DMA / DPE descriptor (the kiln_dma_copy2d / kiln_matmul instructions) */
static inline void dma_issue(const struct kiln_dma_desc *d, uint32_t tag)
{
    __asm__ volatile(".insn r 0x0b, 1, 0, x0, %0, %1" ::"r"(d), "r"((uint64_t)tag) : "memory");
}
static inline void dpe_issue(const struct kiln_dpe_desc *d)
{
    __asm__ volatile(".insn r 0x0b, 2, 0, x0, %0, x0" ::"r"(d) : "memory");
}

/* The descriptors of buffer @buf for a chunk of @kt: A rows / B columns in, and the DPE op */
static void chunk_desc(const struct gemm *g, const struct tiling *t, uint32_t buf, uint32_t mt,
                       uint32_t nt, uint32_t kt, uint32_t lda, uint32_t ldb, float *lc,
                       struct kiln_dma_desc *da, struct kiln_dma_desc *db,
                       struct kiln_dpe_desc *dp)
{
    uint32_t es = g->es;
    int ta = g->flags & GEMM_FLAG_TRANS_A, tb = g->flags & GEMM_FLAG_TRANS_B;

    da->dst = KILN_LOCAL_MEM_BASE + t->lm_a[buf];
    da->src_stride = (int64_t)lda * es;
    da->row_bytes = (ta ? mt : kt) * es;        /* A^T: kt rows of mt */
    da->rows = ta ? kt : mt;
    da->dst_stride = da->row_bytes;
    db->dst = KILN_LOCAL_MEM_BASE + t->lm_b[buf];
    db->src_stride = (int64_t)ldb * es;
    db->row_bytes = (tb ? kt : nt) * es;        /* B^T: nt rows of kt */
    db->rows = tb ? nt : kt;
    db->dst_stride = db->row_bytes;
    dp->a = da->dst;
    dp->b = db->dst;
    dp->c = (uint64_t)(uintptr_t)lc;
    dp->m = mt;
    dp->n = nt;
    dp->k = kt;
    dp->lda = ta ? mt : kt;
    dp->ldb = tb ? kt : nt;
    dp->ldc = nt;
    dp->dtype = g->dtype;
    dp->flags = (ta ? KILN_DPE_TRANS_A : 0) | (tb ? KILN_DPE_TRANS_B : 0) | KILN_DPE_ACCUM;
}

/*
 * C tile (+)= A[i0.., k0..k1) * B[k0..k1), j0..): chunks of tk through the
 * two buffers, the DMA of the next chunk overlapping the DPE on this one.
 * The descriptors are built once per buffer; per chunk only the source
 * addresses advance (as MTIA 2i's auto-increment offsets do), which keeps
 * the scalar work per DPE op to a few instructions.
 * @accum: add to the tile (else the first chunk overwrites it).
 */
static void mac_range(const struct gemm *g, const struct tiling *t, const uint8_t *a,
                      uint32_t lda, const uint8_t *b, uint32_t ldb, uint32_t i0, uint32_t j0,
                      uint32_t mt, uint32_t nt, uint32_t k0, uint32_t k1, float *lc, int accum)
{
    struct kiln_dma_desc da[2], db[2];
    struct kiln_dpe_desc dp[2];
    uint32_t es = g->es, n, last;
    int ta = g->flags & GEMM_FLAG_TRANS_A, tb = g->flags & GEMM_FLAG_TRANS_B;
    uint64_t a_src, b_src, a_step, b_step;

    if (k0 >= k1) {
        return;
    }
    n = div_up(k1 - k0, t->tk);
    last = k1 - k0 - (n - 1) * t->tk;
    a_src = (uint64_t)(uintptr_t)a + (ta ? (uint64_t)k0 * lda + i0 : (uint64_t)i0 * lda + k0) * es;
    b_src = (uint64_t)(uintptr_t)b + (tb ? (uint64_t)j0 * ldb + k0 : (uint64_t)k0 * ldb + j0) * es;
    a_step = (uint64_t)t->tk * es * (ta ? lda : 1);
    b_step = (uint64_t)t->tk * es * (tb ? 1 : ldb);
    for (uint32_t buf = 0; buf < 2; buf++) {
        chunk_desc(g, t, buf, mt, nt, t->tk, lda, ldb, lc, &da[buf], &db[buf], &dp[buf]);
    }
    for (uint32_t i = 0; i <= n; i++) {
        uint32_t buf = i & 1;
        /* issue chunk i (i < n), then run chunk i - 1 */
        if (i < n) {
            if (i == n - 1 && last != t->tk) {
                chunk_desc(g, t, buf, mt, nt, last, lda, ldb, lc, &da[buf], &db[buf], &dp[buf]);
            }
            da[buf].src = a_src + i * a_step;
            db[buf].src = b_src + i * b_step;
            dma_issue(&da[buf], TAG_CHUNK + buf);
            dma_issue(&db[buf], TAG_CHUNK + buf);
        }
        if (i > 0) {
            buf ^= 1;
            kiln_dma_wait(1u << (TAG_CHUNK + buf));
            if (!accum) {
                dp[buf].flags &= ~(uint32_t)KILN_DPE_ACCUM;
            }
            dpe_issue(&dp[buf]);
            dp[buf].flags |= KILN_DPE_ACCUM;
            accum = 1;
        }
    }
}

/*
 * What the tile holds before the first multiply-add: the old C when
 * accumulating; for int8 with a bias, the bias in every row (int32 addition
 * in the DPE's accumulator is exact and wraps, which the fp32 SE is not).
 * Returns whether the DPE must accumulate onto it.
 */
static int tile_init(const struct gemm *g, const struct tiling *t, float *lc, uint32_t i0,
                     uint32_t j0, uint32_t mt, uint32_t nt)
{
    if (g->flags & GEMM_FLAG_ACCUM) {
        kiln_dma_copy2d(lc, g->c + ((uint64_t)i0 * g->ldc + j0) * 4, nt * 4, mt, (int64_t)nt * 4,
                        (int64_t)g->ldc * 4, TAG_CIN);
        kiln_dma_wait(1u << TAG_CIN);
        return 1;
    }
    if (g->dtype == KILN_DTYPE_INT8 && g->bias) {
        kiln_dma_copy(KILN_LM(uint8_t, t->lm_bias), g->bias + (uint64_t)j0 * 4, nt * 4, TAG_BIAS);
        kiln_dma_wait(1u << TAG_BIAS);
        /* row broadcast: local to local, source stride 0 */
        kiln_dma_copy2d(lc, KILN_LM(uint8_t, t->lm_bias), nt * 4, mt, (int64_t)nt * 4, 0, TAG_CIN);
        kiln_dma_wait(1u << TAG_CIN);
        return 1;
    }
    if (g->k == 0) {
        kiln_se_fill(lc, 0.0f, mt * nt);
        return 1;
    }
    return 0;
}

/* The int8 epilogue when accumulating with a bias: exact int32 on the scalar core */
static void i8_add_bias(int32_t *c, const int32_t *bias, uint32_t mt, uint32_t nt)
{
    for (uint32_t i = 0; i < mt; i++) {
        int32_t *row = c + (uint64_t)i * nt;
        for (uint32_t j = 0; j < nt; j++) {
            row[j] = (int32_t)((uint32_t)row[j] + (uint32_t)bias[j]);
        }
    }
}

/* Bias and activation on a finished tile */
static void epilogue(const struct gemm *g, const struct tiling *t, float *lc, uint32_t j0,
                     uint32_t mt, uint32_t nt)
{
    int bias_in_tile = g->dtype == KILN_DTYPE_INT8 && !(g->flags & GEMM_FLAG_ACCUM);

    if (g->bias && !bias_in_tile) {
        kiln_dma_copy(KILN_LM(uint8_t, t->lm_bias), g->bias + (uint64_t)j0 * 4, nt * 4, TAG_BIAS);
        kiln_dma_wait(1u << TAG_BIAS);
        if (g->dtype == KILN_DTYPE_INT8) {
            i8_add_bias((int32_t *)lc, KILN_LM(int32_t, t->lm_bias), mt, nt);
        } else {
            OPS_SE_ROWVEC(KILN_SE_ADD, lc, lc, KILN_LM(float, t->lm_bias), mt, nt, 0);
        }
    }
    if (g->dtype == KILN_DTYPE_INT8) {
        if (g->act == KILN_ACT_RELU) {
            ops_se_relu_i32((int32_t *)lc, (int32_t *)lc, mt * nt);
        }
    } else {
        ops_activation(lc, mt * nt, g->act);
    }
}

/* Start writing rows [r0, r1) of a finished tile to C */
static void write_rows(const struct gemm *g, const float *lc, uint32_t i0, uint32_t j0,
                       uint32_t nt, uint32_t r0, uint32_t r1, uint32_t tag)
{
    if (r1 > r0) {
        kiln_dma_copy2d(g->c + ((uint64_t)(i0 + r0) * g->ldc + j0) * 4, lc + (uint64_t)r0 * nt,
                        nt * 4, r1 - r0, (int64_t)g->ldc * 4, (int64_t)nt * 4, tag);
    }
}

static void gemm_direct(const struct gemm *g)
{
    struct tiling t;
    uint32_t nwg = kiln_num_wg(), iter = 0;

    pick_tiling(&t, g->m, g->n, g->es, nwg, 0);
    for (uint32_t tile = kiln_wg_id(); tile < t.tiles_m * t.tiles_n; tile += nwg, iter++) {
        uint32_t i0 = (tile / t.tiles_n) * t.tm, j0 = (tile % t.tiles_n) * t.tn;
        uint32_t mt = kiln_min_u32(t.tm, g->m - i0), nt = kiln_min_u32(t.tn, g->n - j0);
        uint32_t cb = t.cbufs == 2 ? (iter & 1) : 0;
        float *lc = KILN_LM(float, t.lm_c[cb]);
        int accum;

        kiln_dma_wait(1u << (TAG_WB + cb));     /* its previous tile has left */
        accum = tile_init(g, &t, lc, i0, j0, mt, nt);
        mac_range(g, &t, g->a, g->lda, g->b, g->ldb, i0, j0, mt, nt, 0, g->k, lc, accum);
        epilogue(g, &t, lc, j0, mt, nt);
        write_rows(g, lc, i0, j0, nt, 0, mt, TAG_WB + cb);
    }
    kiln_dma_wait((1u << TAG_WB) | (1u << (TAG_WB + 1)));
}

/* ---- staged through SRAM (cooperative) ------------------------------------------------ */

/*
 * Tiles are taken in blocks of one per workgroup (a round); a round is a
 * block of gh x gw tiles, blocks in column-major order, so the first block
 * column brings in A row by row and every later block column only new
 * columns of B.
 */
struct rounds {
    uint32_t gh, gw, blocks_m, count;
};

static void round_tile(const struct rounds *rs, uint32_t r, uint32_t w, uint32_t *ti,
                       uint32_t *tj)
{
    uint32_t bi = r % rs->blocks_m, bj = r / rs->blocks_m;
    *ti = bi * rs->gh + w % rs->gh;
    *tj = bj * rs->gw + w / rs->gh;
}

/* Tile rows of A and tile columns of B a round needs (ends; they only grow) */
static void round_needs(const struct tiling *t, const struct rounds *rs, uint32_t r,
                        uint32_t *a_end, uint32_t *b_end)
{
    uint32_t bi = r % rs->blocks_m, bj = r / rs->blocks_m;
    *a_end = bj ? t->tiles_m : kiln_min_u32(t->tiles_m, (bi + 1) * rs->gh);
    *b_end = kiln_min_u32(t->tiles_n, (bj + 1) * rs->gw);
}

/*
 * This workgroup's share of a 2-D copy of @rows rows into the workspace:
 * rows are split evenly over the workgroups.
 */
static void stage_rows(uint8_t *dst, const uint8_t *src, uint32_t row_bytes, uint32_t rows,
                       uint64_t dst_stride, uint64_t src_stride)
{
    uint32_t w = kiln_wg_id(), nwg = kiln_num_wg();
    uint32_t r0 = (uint32_t)((uint64_t)rows * w / nwg), r1 = (uint32_t)((uint64_t)rows * (w + 1) / nwg);

    if (r1 > r0 && row_bytes) {
        kiln_dma_copy2d(dst + r0 * dst_stride, src + r0 * src_stride, row_bytes, r1 - r0,
                        (int64_t)dst_stride, (int64_t)src_stride, TAG_STAGE);
    }
}

/*
 * Copy k-panel [k0, k1) of A's tile rows [a0, a1) and of B's tile columns
 * [b0, b1) into the workspace, which holds A and B packed in their stored
 * layout (A: m x k, or k x m transposed; B: k x n, or n x k transposed).
 */
static void stage_panel(const struct gemm *g, const struct tiling *t, uint8_t *wa, uint8_t *wb,
                        uint32_t a0, uint32_t a1, uint32_t b0, uint32_t b1, uint32_t k0,
                        uint32_t k1)
{
    uint32_t es = g->es;
    uint32_t r0 = a0 * t->tm, r1 = kiln_min_u32(g->m, a1 * t->tm);
    uint32_t c0 = b0 * t->tn, c1 = kiln_min_u32(g->n, b1 * t->tn);

    if (r1 > r0) {
        if (g->flags & GEMM_FLAG_TRANS_A) {
            stage_rows(wa + ((uint64_t)k0 * g->m + r0) * es, g->a + ((uint64_t)k0 * g->lda + r0) * es,
                       (r1 - r0) * es, k1 - k0, (uint64_t)g->m * es, (uint64_t)g->lda * es);
        } else {
            stage_rows(wa + ((uint64_t)r0 * g->k + k0) * es, g->a + ((uint64_t)r0 * g->lda + k0) * es,
                       (k1 - k0) * es, r1 - r0, (uint64_t)g->k * es, (uint64_t)g->lda * es);
        }
    }
    if (c1 > c0) {
        if (g->flags & GEMM_FLAG_TRANS_B) {
            stage_rows(wb + ((uint64_t)c0 * g->k + k0) * es, g->b + ((uint64_t)c0 * g->ldb + k0) * es,
                       (k1 - k0) * es, c1 - c0, (uint64_t)g->k * es, (uint64_t)g->ldb * es);
        } else {
            stage_rows(wb + ((uint64_t)k0 * g->n + c0) * es, g->b + ((uint64_t)k0 * g->ldb + c0) * es,
                       (c1 - c0) * es, k1 - k0, (uint64_t)g->n * es, (uint64_t)g->ldb * es);
        }
    }
}

static void gemm_staged(const struct gemm *g, uint8_t *ws)
{
    struct tiling t;
    struct rounds rs;
    uint32_t w = kiln_wg_id(), nwg = kiln_num_wg();
    /* fp32 is compute-bound: more, smaller rounds shorten the final write-back */
    uint32_t min_tiles = nwg * (g->dtype == KILN_DTYPE_FP32 ? 4 : 2);
    uint32_t panels, kp, a_done = 0, b_done = 0, a_end, b_end;
    uint8_t *wa = ws, *wb = ws + (uint64_t)g->m * g->k * g->es;
    /* the previous round's finished tile, written back a slice per phase */
    int prev = 0;
    uint32_t prev_i0 = 0, prev_j0 = 0, prev_mt = 0, prev_nt = 0;

    pick_tiling(&t, g->m, g->n, g->es, min_tiles, 1);
    rs.gh = kiln_min_u32(t.tiles_m, 8);
    while (rs.gh > 1 && nwg % rs.gh) {
        rs.gh--;
    }
    rs.gw = nwg / rs.gh;
    rs.blocks_m = div_up(t.tiles_m, rs.gh);
    rs.count = rs.blocks_m * div_up(t.tiles_n, rs.gw);
    /* about 16 phases in all: enough to overlap, few enough barriers */
    panels = kiln_min_u32(kiln_min_u32(8, div_up(16, rs.count)), div_up(g->k ? g->k : 1, t.tk));
    kp = div_up(div_up(g->k ? g->k : 1, panels), t.tk) * t.tk;
    panels = div_up(g->k ? g->k : 1, kp);

    /* head: the first panel of round 0 */
    round_needs(&t, &rs, 0, &a_end, &b_end);
    stage_panel(g, &t, wa, wb, 0, a_end, 0, b_end, 0, kiln_min_u32(kp, g->k));
    kiln_dma_wait(1u << TAG_STAGE);
    kiln_barrier();

    for (uint32_t r = 0; r < rs.count; r++) {
        uint32_t ti, tj, cb = r & 1, i0, j0, mt = 0, nt = 0;
        uint32_t cur_a = a_done, cur_b = b_done, cur_a_end, cur_b_end;
        float *lc = KILN_LM(float, t.lm_c[cb]);
        int mine, accum = 0;

        round_needs(&t, &rs, r, &cur_a_end, &cur_b_end);
        round_tile(&rs, r, w, &ti, &tj);
        mine = ti < t.tiles_m && tj < t.tiles_n;
        i0 = ti * t.tm;
        j0 = tj * t.tn;
        if (mine) {
            mt = kiln_min_u32(t.tm, g->m - i0);
            nt = kiln_min_u32(t.tn, g->n - j0);
            accum = tile_init(g, &t, lc, i0, j0, mt, nt);
        }
        for (uint32_t p = 0; p < panels; p++) {
            uint32_t k0 = p * kp, k1 = kiln_min_u32(g->k, k0 + kp);
            /* DRAM -> SRAM for the next phase: this round's next panel or the next round's first */
            if (p + 1 < panels) {
                stage_panel(g, &t, wa, wb, cur_a, cur_a_end, cur_b, cur_b_end, k1,
                            kiln_min_u32(g->k, k1 + kp));
            } else if (r + 1 < rs.count) {
                uint32_t na, nb;
                round_needs(&t, &rs, r + 1, &na, &nb);
                stage_panel(g, &t, wa, wb, cur_a_end, na, cur_b_end, nb, 0, kiln_min_u32(kp, g->k));
            }
            if (prev) {
                write_rows(g, KILN_LM(float, t.lm_c[cb ^ 1]), prev_i0, prev_j0, prev_nt,
                           prev_mt * p / panels, prev_mt * (p + 1) / panels, TAG_WB + (cb ^ 1));
            }
            if (mine) {
                /* A rows staged before this round (cur_a) hold all k; newer ones get panel p now */
                mac_range(g, &t, wa, (g->flags & GEMM_FLAG_TRANS_A) ? g->m : g->k, wb,
                          (g->flags & GEMM_FLAG_TRANS_B) ? g->k : g->n, i0, j0, mt, nt, k0, k1, lc,
                          accum);
                accum = 1;
                if (p + 1 == panels) {
                    epilogue(g, &t, lc, j0, mt, nt);
                }
            }
            kiln_dma_wait((1u << TAG_STAGE) | (1u << TAG_WB) | (1u << (TAG_WB + 1)));
            kiln_barrier();
        }
        a_done = cur_a_end > a_done ? cur_a_end : a_done;
        b_done = cur_b_end > b_done ? cur_b_end : b_done;
        prev = mine;
        prev_i0 = i0;
        prev_j0 = j0;
        prev_mt = mt;
        prev_nt = nt;
    }
    /* tail: the last round's tiles, after the barrier that ended their compute */
    if (prev) {
        write_rows(g, KILN_LM(float, t.lm_c[(rs.count - 1) & 1]), prev_i0, prev_j0, prev_nt, 0,
                   prev_mt, TAG_WB);
        kiln_dma_wait(1u << TAG_WB);
    }
}

static void gemm_args(struct gemm *g, const void *a, const void *b, void *c, const void *bias,
                      uint32_t m, uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb, uint32_t ldc,
                      uint32_t flags, uint32_t dtype, uint32_t es)
{
    g->a = a;
    g->b = b;
    g->c = c;
    g->bias = bias;
    g->m = m;
    g->n = n;
    g->k = k;
    g->lda = lda;
    g->ldb = ldb;
    g->ldc = ldc;
    g->flags = flags;
    g->dtype = dtype;
    g->es = es;
    g->act = (flags >> 8) & 15;
    /* only relu is exact and meaningful on int32 accumulators */
    if (dtype == KILN_DTYPE_INT8 && g->act > KILN_ACT_RELU) {
        kiln_trap(3);
    }
}

#define GEMM_KERNELS(suffix, type, ctype, dtype, es)                                              \
    KILN_KERNEL void kiln_gemm_##suffix(const type *a, const type *b, KILN_INOUT ctype *c,      \
                                        const ctype *bias, uint32_t m, uint32_t n, uint32_t k,  \
                                        uint32_t lda, uint32_t ldb, uint32_t ldc, uint32_t flags) \
    {                                                                                             \
        struct gemm g;                                                                            \
        gemm_args(&g, a, b, c, bias, m, n, k, lda, ldb, ldc, flags, dtype, es);                   \
        gemm_direct(&g);                                                                          \
    }                                                                                             \
    KILN_KERNEL KILN_COOPERATIVE void kiln_gemm_##suffix##_staged(                                \
        const type *a, const type *b, KILN_INOUT ctype *c, const ctype *bias, uint32_t m,        \
        uint32_t n, uint32_t k, uint32_t lda, uint32_t ldb, uint32_t ldc, uint32_t flags,        \
        KILN_INOUT type *ws)                                                                      \
    {                                                                                             \
        struct gemm g;                                                                            \
        gemm_args(&g, a, b, c, bias, m, n, k, lda, ldb, ldc, flags, dtype, es);                   \
        gemm_staged(&g, (uint8_t *)ws);                                                           \
    }

GEMM_KERNELS(f32, float, float, KILN_DTYPE_FP32, 4)
GEMM_KERNELS(bf16, kiln_bf16_t, float, KILN_DTYPE_BF16, 2)
GEMM_KERNELS(f16, kiln_fp16_t, float, KILN_DTYPE_FP16, 2)
/* int8 x int8 -> int32, + int32 bias[n] (wrap-around), relu or no activation */
GEMM_KERNELS(i8, int8_t, int32_t, KILN_DTYPE_INT8, 1)
