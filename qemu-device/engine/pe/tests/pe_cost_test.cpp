// SPDX-License-Identifier: GPL-2.0-or-later
// The cost model (docs/pe-isa.md section 4), pinned to the cycle: hand-encoded
// programs whose every instruction is known, so each expected count is the
// documented formula and nothing else. Modelled cycles are deterministic,
// whatever the number of worker threads, so they are asserted exactly.
#include <gtest/gtest.h>

#include "pe_harness.hpp"

using namespace kt;
using namespace kt::rv;

namespace {

constexpr uint32_t kGrid = 8;                   // the default 8x8 device
constexpr uint32_t kChunk = 256 * 1024;         // bytes per DMA
constexpr uint32_t kReps = 12;                  // 3 MiB per PE
constexpr uint64_t kPerPe = (uint64_t)kChunk * kReps;

uint64_t div_up(uint64_t a, uint64_t b)
{
    return (a + b - 1) / b;
}

// Cycles to move @bytes at @bps, as the docs define it: rounded up.
uint64_t xfer(uint64_t bytes, uint64_t bps)
{
    return div_up(bytes * KILN_PE_CLOCK_HZ, bps);
}

inline uint32_t slli(uint32_t rd, uint32_t rs, uint32_t sh) { return I((int32_t)sh, rs, 1, rd, 0x13); }
inline uint32_t bne(uint32_t a, uint32_t b, int32_t off) { return B(off, b, a, 1); }
inline uint32_t beq(uint32_t a, uint32_t b, int32_t off) { return B(off, b, a, 0); }
inline uint32_t bgeu(uint32_t a, uint32_t b, int32_t off) { return B(off, b, a, 7); }

// Workgroups below `active` DMA `reps` chunks of `chunk` bytes from src to
// dst back to back on tag 0, then wait. With `spin` != 0 (a COOPERATIVE
// launch) every workgroup then meets at the barrier and counts `spin` down.
struct StreamArgs {
    uint64_t src, chunk, reps, active, dst, spin;
};
const std::vector<uint32_t> kStream = {
    ld(t0, a0, 0), ld(t1, a0, 8), ld(t2, a0, 16), ld(t3, a0, 24), ld(t4, a0, 32),
    ld(s1, a0, 40),
    bgeu(a1, t3, 4 * 15),                       // -> idle
    addi(s0, sp, -64),                          // the descriptor, in local memory
    sd(t4, s0, 0), sd(t0, s0, 8), sd(zero, s0, 16), sd(zero, s0, 24),
    addi(t5, zero, 1), slli(t5, t5, 32), op(0, 6, t5, t5, t1), sd(t5, s0, 32),  // rows 1
    custom(KILN_UNIT_DMA, KILN_DMA_COPY2D, zero, s0, zero),                   // loop:
    addi(t2, t2, -1),
    bne(t2, zero, -8),
    addi(t6, zero, 1),
    custom(KILN_UNIT_DMA, KILN_DMA_WAIT, zero, t6, zero),
    beq(s1, zero, 4 * 4),                       // idle: -> done
    custom(KILN_UNIT_SYS, KILN_SYS_BARRIER, zero, zero, zero),
    addi(s1, s1, -1),                           // spin:
    bne(s1, zero, -4),
    ret(),                                      // done:
};
// The cycle at which an active workgroup's first DMA starts: 16 one-cycle
// instructions, six of them loads from device memory, and the issue.
constexpr uint64_t kFirstDma = 16 + 6 * KILN_COST_GLOBAL_EXTRA + KILN_COST_UNIT_ISSUE;
// From the last completion: the wait, beq and ret retire.
constexpr uint64_t kTail = 3;

struct Stream {
    Machine m{kGrid, kGrid, 3};
    Stream() { m.load_code(kStream); }
    KilnLaunchResult run(uint64_t src, uint64_t dst, uint32_t grid, uint32_t active,
                         uint64_t spin = 0, uint32_t chunk = kChunk, uint32_t reps = kReps)
    {
        StreamArgs a{src, chunk, reps, active, dst, spin};
        memcpy(m.at<uint8_t>(kArgsVa), &a, sizeof(a));
        return m.launch(kCodeVa, kArgsVa, grid, 1, 1, spin ? KILN_LAUNCH_FLAG_COOPERATIVE : 0);
    }
    // Cycles of `grid` workgroups streaming, the same for 1 and 3 workers
    uint64_t cycles(uint64_t src, uint32_t grid, uint32_t chunk = kChunk,
                    uint32_t reps = kReps)
    {
        uint64_t c[2];
        for (uint32_t w : {1u, 3u}) {
            m.set_workers(w);
            KilnLaunchResult r = run(src, KILN_LOCAL_MEM_BASE, grid, grid, 0, chunk, reps);
            EXPECT_EQ(r.status, KILN_STATUS_OK) << r.pc;
            c[w == 3] = r.cycles;
        }
        EXPECT_EQ(c[0], c[1]) << "modelled cycles depend on the worker count";
        return c[0];
    }
};

// One PE alone: the DMAs run back to back at the slower of its local port
// (1 TB/s) and the fabric, then the tag completes after the latency.
uint64_t one_pe(uint64_t bps, uint32_t chunk = kChunk, uint32_t reps = kReps)
{
    uint64_t per = xfer(chunk, std::min<uint64_t>(bps, KILN_COST_LOCAL_BPS));
    return kFirstDma + reps * per + KILN_COST_DMA_LATENCY + kTail;
}

double chip_gbps(uint32_t pes, uint64_t cycles, uint64_t per_pe = kPerPe)
{
    return (double)per_pe * pes * KILN_PE_CLOCK_HZ / (double)cycles / 1e9;
}

}  // namespace

// 1, 8 and 64 PEs each stream 3 MiB from `src` on a fabric of `bps`: one PE
// alone runs at the slower of its local port and the fabric; several take
// at least as long as the fabric needs for all their bytes.
struct Streamed {
    uint64_t one, eight, all;
};
Streamed stream_1_8_64(Stream &s, uint64_t src, uint64_t bps)
{
    Streamed r{s.cycles(src, 1), s.cycles(src, 8), s.cycles(src, 64)};
    EXPECT_EQ(r.one, std::max(one_pe(bps), xfer(kPerPe, bps)));
    EXPECT_EQ(r.eight, std::max(one_pe(bps), xfer(8 * kPerPe, bps)));
    EXPECT_EQ(r.all, std::max(one_pe(bps), xfer(64 * kPerPe, bps)));
    return r;
}

// SRAM: one PE is held to its 1 TB/s local port; eight already need more
// than SRAM's 2.7 TB/s, so 8 and 64 PEs take as long as SRAM needs for all
// their bytes: 8x and 64x the traffic, 8x and 64x the time.
TEST(PeCost, SramStreamingSharesTheChipWideBandwidth)
{
    Stream s;
    Streamed r = stream_1_8_64(s, kSramVa, KILN_COST_SRAM_BPS);
    EXPECT_EQ(r.one, 5165u);
    EXPECT_EQ(r.eight, 12583u);
    EXPECT_EQ(r.all, 100664u);
    EXPECT_NEAR(chip_gbps(8, r.eight), 2700.0, 0.1);
    EXPECT_NEAR(chip_gbps(64, r.all), 2700.0, 0.1);
}

// DRAM: one PE can already use all of DRAM's 204.8 GB/s, so 8 and 64 PEs
// need exactly 8x and 64x the fabric time.
TEST(PeCost, DramStreamingSharesTheChipWideBandwidth)
{
    Stream s;
    Streamed r = stream_1_8_64(s, s.m.alloc(kChunk), KILN_COST_DRAM_BPS);
    EXPECT_EQ(r.one, 21653u);
    EXPECT_EQ(r.eight, 165888u);
    EXPECT_EQ(r.all, 1327104u);
    EXPECT_NEAR(chip_gbps(8, r.eight), 204.8, 0.01);
    EXPECT_NEAR(chip_gbps(64, r.all), 204.8, 0.01);
}

// The host link (PCIe Gen5 x8, 32 GB/s) is shared the same way.
TEST(PeCost, HostLinkStreamingSharesTheChipWideBandwidth)
{
    Stream s;
    const uint32_t chunk = 64 * 1024, reps = 2;
    EXPECT_EQ(s.cycles(kHostVa, 1, chunk, reps), one_pe(KILN_COST_HOST_BPS, chunk, reps));
    EXPECT_EQ(s.cycles(kHostVa, 8, chunk, reps), xfer(8ull * chunk * reps, KILN_COST_HOST_BPS));
}

// A transfer counts on every fabric it crosses: DRAM -> SRAM loads both,
// and SRAM -> SRAM reads and writes SRAM, so 64 PEs copying within SRAM
// take twice as long as 64 PEs reading it.
TEST(PeCost, TransferChargedOnEveryFabricItCrosses)
{
    Stream s;
    const uint32_t chunk = 8 * 1024, reps = 4;
    const uint64_t bytes = 64ull * chunk * reps;
    const uint64_t dram = s.m.alloc(chunk);
    auto run = [&](uint64_t src, uint64_t dst) {
        KilnLaunchResult r = s.run(src, dst, 64, 64, 0, chunk, reps);
        EXPECT_EQ(r.status, KILN_STATUS_OK) << r.pc;
        return r.cycles;
    };
    EXPECT_EQ(run(kSramVa, KILN_LOCAL_MEM_BASE), xfer(bytes, KILN_COST_SRAM_BPS));
    EXPECT_EQ(run(kSramVa, kSramVa + 512 * 1024), xfer(2 * bytes, KILN_COST_SRAM_BPS));
    // into SRAM from DRAM: DRAM is the busier fabric
    EXPECT_EQ(run(dram, kSramVa), xfer(bytes, KILN_COST_DRAM_BPS));
}

// Idle workgroups move nothing, so they slow nobody down.
TEST(PeCost, IdleWorkgroupsCostNothing)
{
    Stream s;
    KilnLaunchResult r = s.run(kSramVa, KILN_LOCAL_MEM_BASE, 64, 1);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    EXPECT_EQ(r.cycles, one_pe(KILN_COST_SRAM_BPS));
}

// Fabric time is charged per barrier phase: what 64 PEs load before a
// barrier is not overlapped with what they compute after it.
TEST(PeCost, FabricTimeChargedPerBarrierPhase)
{
    Stream s;
    const uint64_t spin = 5000;
    for (uint32_t w : {1u, 3u}) {
        s.m.set_workers(w);
        KilnLaunchResult r = s.run(kSramVa, KILN_LOCAL_MEM_BASE, 64, 64, spin);
        ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
        // after the release: the spin loop and ret
        EXPECT_EQ(r.cycles,
                  xfer(64 * kPerPe, KILN_COST_SRAM_BPS) + KILN_COST_BARRIER + 2 * spin + 1)
            << w;
    }
}

// One DPE op costs its MACs at the type's rate plus the issue, nothing else.
TEST(PeCost, DpeOpCycles)
{
    Machine m(kGrid, kGrid);
    // copy the 56-byte descriptor from the args into local memory, issue it
    std::vector<uint32_t> code = {addi(s0, sp, -64)};
    for (int i = 0; i < 7; i++) {
        code.push_back(ld(t0, a0, 8 * i));
        code.push_back(sd(t0, s0, 8 * i));
    }
    code.push_back(custom(KILN_UNIT_DPE, KILN_DPE_MATMUL, zero, s0, zero));
    code.push_back(ret());
    m.load_code(code);
    // 15 one-cycle instructions before it, 7 of them device loads; the op
    // and ret retire after it
    const uint64_t base = 15 + 7 * KILN_COST_GLOBAL_EXTRA + KILN_COST_UNIT_ISSUE + 2;
    const uint64_t lm = KILN_LOCAL_MEM_BASE;
    struct Case {
        uint32_t dtype, m, n, k;
        uint64_t cycles;    // of the op alone
    } cases[] = {
        {KILN_DTYPE_BF16, 128, 128, 64, 1024},  // 1024 MAC/cycle
        {KILN_DTYPE_FP16, 32, 32, 32, 32},
        {KILN_DTYPE_INT8, 128, 128, 64, 512},   // 2048 MAC/cycle
        {KILN_DTYPE_FP32, 128, 128, 64, 4096},  // 256 MAC/cycle
        {KILN_DTYPE_BF16, 1, 1, 1, 1},          // rounded up to a cycle
    };
    for (const Case &c : cases) {
        kiln_dpe_desc d{};
        d.a = lm;
        d.b = lm + 64 * 1024;
        d.c = lm + 128 * 1024;
        d.m = c.m;
        d.n = c.n;
        d.k = c.k;
        d.lda = c.k;
        d.ldb = c.n;
        d.ldc = c.n;
        d.dtype = c.dtype;
        memcpy(m.at<uint8_t>(kDataVa), &d, sizeof(d));
        KilnLaunchResult r = m.launch(kCodeVa, kDataVa);
        ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
        EXPECT_EQ(r.cycles, base + c.cycles) << c.dtype << " " << c.m;
    }
}
