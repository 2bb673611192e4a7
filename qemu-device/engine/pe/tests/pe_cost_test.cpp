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
    // Cycles of `grid` workgroups streaming, the same for 1 and 3 workers,
    // without the launch's fixed dispatch cost (PeCost.LaunchCost)
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
        return c[0] - KILN_COST_LAUNCH;
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
        return r.cycles - KILN_COST_LAUNCH;
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
    EXPECT_EQ(r.cycles, KILN_COST_LAUNCH + one_pe(KILN_COST_SRAM_BPS));
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
        EXPECT_EQ(r.cycles, KILN_COST_LAUNCH + xfer(64 * kPerPe, KILN_COST_SRAM_BPS) +
                                KILN_COST_BARRIER + 2 * spin + 1)
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
    const uint64_t base =
        KILN_COST_LAUNCH + 15 + 7 * KILN_COST_GLOBAL_EXTRA + KILN_COST_UNIT_ISSUE + 2;
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

// The DMA engine issues at most one row a cycle: a copy of many short rows
// takes its row count in cycles, however few bytes it moves. The same bytes
// in one row take their bandwidth time; everything else in the two launches
// is the same instructions, so their difference is the row cost alone.
TEST(PeCost, DmaRowsIssueOneACycle)
{
    struct RowsArgs {
        uint64_t src, row_bytes, rows, dst;
    };
    Machine m(kGrid, kGrid);
    m.load_code({
        ld(t0, a0, 0), ld(t1, a0, 8), ld(t2, a0, 16), ld(t4, a0, 24),
        addi(s0, sp, -64),
        sd(t4, s0, 0), sd(t0, s0, 8), sd(zero, s0, 16), sd(zero, s0, 24),
        slli(t2, t2, 32), op(0, 6, t5, t2, t1), sd(t5, s0, 32),
        custom(KILN_UNIT_DMA, KILN_DMA_COPY2D, zero, s0, zero),
        addi(t6, zero, 1),
        custom(KILN_UNIT_DMA, KILN_DMA_WAIT, zero, t6, zero),
        ret(),
    });
    auto copy = [&](uint64_t row_bytes, uint64_t rows) {
        RowsArgs a{kSramVa, row_bytes, rows, KILN_LOCAL_MEM_BASE};
        memcpy(m.at<uint8_t>(kArgsVa), &a, sizeof(a));
        KilnLaunchResult r = m.launch(kCodeVa, kArgsVa, 1);
        EXPECT_EQ(r.status, KILN_STATUS_OK) << r.pc;
        return r.cycles;
    };
    constexpr uint64_t kRows = 4096, kRowBytes = 16;
    uint64_t one_row = copy(kRows * kRowBytes, 1);
    uint64_t short_rows = copy(kRowBytes, kRows);
    uint64_t bytes_time = xfer(kRows * kRowBytes, KILN_COST_LOCAL_BPS);
    EXPECT_EQ(bytes_time, 89u);
    EXPECT_EQ(short_rows - one_row, kRows * KILN_COST_DMA_ROW - bytes_time);
    // rows longer than the port moves in a cycle cost their bytes only
    uint64_t per_cycle = KILN_COST_LOCAL_BPS / KILN_PE_CLOCK_HZ;
    EXPECT_EQ(copy(2 * per_cycle, 64), copy(128 * per_cycle, 1));
    // empty rows move nothing and cost nothing, however many
    EXPECT_EQ(copy(0, 1u << 31), copy(0, 1));
}

// A unit op is admitted by the watchdog at its own rate before it does any
// work: zero strides fit millions of elements into a few bytes, and host work
// that the modelled time does not bound would hold a worker thread for
// seconds (fuzz_pe findings 2 and 6, docs/reliability.md).
TEST(PeCost, UnitOpsAdmittedAtTheirOwnRate)
{
    Machine m;
    auto se = [&](uint32_t op, uint32_t rows, uint32_t cols, uint8_t src_type = 0,
                  uint8_t dst_type = 0) {
        std::vector<uint32_t> code = {addi(s0, sp, -128)};
        for (int32_t off = 0; off < (int32_t)sizeof(kiln_se_desc); off += 8)
            code.insert(code.end(), {ld(t0, a0, off), sd(t0, s0, off)});
        code.insert(code.end(), {custom(KILN_UNIT_SE, op, zero, s0, zero), ret()});
        m.load_code(code);
        // every row and column of a and dst is the same 64 KiB of local memory
        kiln_se_desc d{};
        d.dst = d.a = KILN_LOCAL_MEM_BASE;
        d.rows = rows;
        d.cols = cols;
        d.src_type = src_type;
        d.dst_type = dst_type;
        memcpy(m.at<uint8_t>(kArgsVa), &d, sizeof(d));
        return m.launch(kCodeVa, kArgsVa, 1, 1, 1, 0, 0, 1 /* Mcycle watchdog */);
    };
    constexpr uint32_t kRows = 1024, kCols = 16384;     // 2^24 elements
    constexpr uint64_t kElems = (uint64_t)kRows * kCols;
    KilnLaunchResult simple = se(KILN_SE_ADD | KILN_SE_SCALAR, kRows, kCols);
    ASSERT_EQ(simple.status, KILN_STATUS_OK);
    KilnLaunchResult half = se(KILN_SE_ADD | KILN_SE_SCALAR, kRows / 2, kCols);
    EXPECT_EQ(simple.cycles - half.cycles, kElems / 2 / KILN_COST_SE_ELEMS);
    // the same elements at the transcendental rate need more than the watchdog
    static_assert(kElems / KILN_COST_SE_TRANSC_ELEMS > 1000000);
    KilnLaunchResult exp = se(KILN_SE_EXP, kRows, kCols);
    EXPECT_EQ(exp.status, KILN_STATUS_WATCHDOG);
    EXPECT_LT(exp.cycles, simple.cycles) << "the op ran before the watchdog stopped it";
    // a conversion of 2^32 - 1 empty rows moves nothing and costs nothing
    KilnLaunchResult empty = se(KILN_SE_CVT, 0xffffffffu, 0, KILN_DTYPE_FP32, KILN_DTYPE_INT8);
    EXPECT_EQ(empty.status, KILN_STATUS_OK);
    EXPECT_EQ(empty.cycles, se(KILN_SE_CVT, 1, 0, KILN_DTYPE_FP32, KILN_DTYPE_INT8).cycles);
}

// A launch costs its dispatch (KILN_COST_LAUNCH) once and the replacement
// of a wave (KILN_COST_WAVE) for every wave after the first. A no-op launch
// of 64 workgroups (each one `ret`) is therefore 1,216 cycles = 0.90 us:
// MTIA 2i launches a job in under 1 us.
TEST(PeCost, LaunchCost)
{
    Machine m(kGrid, kGrid);
    m.load_code({ret()});
    KilnLaunchResult r = m.launch(kCodeVa, kArgsVa, 64);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    EXPECT_EQ(r.cycles, KILN_COST_LAUNCH + 1);
    EXPECT_EQ(r.cycles, 1216u);
    EXPECT_LE(r.cycles * 1000000 / KILN_PE_CLOCK_HZ, 1u) << "us";
    // three waves: two replacements
    r = m.launch(kCodeVa, kArgsVa, 129);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    EXPECT_EQ(r.cycles, KILN_COST_LAUNCH + 3 * 1 + 2 * KILN_COST_WAVE);
}

// ---- profile and energy ----------------------------------------------------

namespace {

// A profile buffer in the data region, read back after a launch
struct Profile {
    Machine &m;
    uint64_t va;
    explicit Profile(Machine &mach, uint32_t size) : m(mach)
    {
        va = m.alloc(size);
        memset(m.at<uint8_t>(va), 0xee, size);
        kiln_profile_header h{};
        h.size = size;
        memcpy(m.at<uint8_t>(va), &h, sizeof(h));
        m.profile_va = va;
    }
    ~Profile() { m.profile_va = 0; }
    const kiln_profile_header &head() const { return *m.at<kiln_profile_header>(va); }
    const kiln_profile_pe &pe(uint32_t i) const
    {
        return m.at<kiln_profile_pe>(va + head().pe_offset)[i];
    }
    const kiln_profile_segment *segs(uint32_t i) const
    {
        return m.at<kiln_profile_segment>(va + head().segment_offset) +
               (uint64_t)i * head().segments_per_pe;
    }
    uint64_t sum(uint32_t i) const
    {
        uint64_t s = 0;
        for (uint64_t c : pe(i).cycles) s += c;
        return s;
    }
};

uint64_t idle_pj(uint64_t cycles)
{
    return (cycles * KILN_POWER_IDLE_MW * 1000 + KILN_PE_CLOCK_MHZ / 2) / KILN_PE_CLOCK_MHZ;
}

}  // namespace

// 64 PEs streaming from DRAM: every PE's cycles add up to the launch's;
// each spends its time on scalar code, waiting for its DMA, then for the
// shared DRAM; the bytes and the energy are the model's counters.
TEST(PeProfile, StreamingFromDramIsFabricBound)
{
    Stream s;
    const uint64_t dram = s.m.alloc(kChunk);
    Profile p(s.m, 64 * 1024);
    for (uint32_t w : {1u, 3u}) {
        s.m.set_workers(w);
        s.m.start_cycles = 777;
        KilnLaunchResult r = s.run(dram, KILN_LOCAL_MEM_BASE, 64, 64);
        ASSERT_EQ(r.status, KILN_STATUS_OK);
        const kiln_profile_header &h = p.head();
        EXPECT_EQ(h.magic, KILN_PROFILE_MAGIC);
        EXPECT_EQ(h.version, (uint32_t)KILN_PROFILE_VERSION);
        EXPECT_EQ(h.num_pes, 64u);
        EXPECT_EQ(h.waves, 1u);
        EXPECT_EQ(h.cycles, r.cycles);
        EXPECT_EQ(h.start_cycles, 777u);
        EXPECT_EQ(h.instructions, r.instructions);
        EXPECT_EQ(h.fabric_bytes[KILN_PROF_FABRIC_DRAM], 64 * kPerPe);
        EXPECT_EQ(h.fabric_bytes[KILN_PROF_FABRIC_LOCAL], 64 * kPerPe);
        EXPECT_EQ(h.fabric_bytes[KILN_PROF_FABRIC_SRAM], 0u);
        ASSERT_EQ(h.pe_offset, sizeof(kiln_profile_header));
        // each PE: its own timeline (the one-PE time), then the fabric
        const uint64_t own = one_pe(KILN_COST_DRAM_BPS);
        // its instructions: 614 cycles to the first DMA, 88 after it
        const uint64_t wait = own - 702;
        for (uint32_t i = 0; i < 64; i++) {
            const kiln_profile_pe &pe = p.pe(i);
            EXPECT_EQ(p.sum(i), r.cycles) << i;
            EXPECT_EQ(pe.workgroups, 1u);
            EXPECT_EQ(pe.cycles[KILN_PROF_LAUNCH], (uint64_t)KILN_COST_LAUNCH);
            EXPECT_EQ(pe.cycles[KILN_PROF_DMA_WAIT], wait) << i;
            EXPECT_EQ(pe.cycles[KILN_PROF_SCALAR], own - wait) << i;
            EXPECT_EQ(pe.cycles[KILN_PROF_FABRIC], xfer(64 * kPerPe, KILN_COST_DRAM_BPS) - own);
            EXPECT_EQ(pe.cycles[KILN_PROF_IDLE], 0u);
            EXPECT_EQ(pe.cycles[KILN_PROF_DPE], 0u);
        }
        // energy: idle power over the launch, the PEs' active cycles, and
        // every byte on DRAM and through a local port
        const uint64_t dyn_fj = 64 * (own - wait) * KILN_ENERGY_PE_ACTIVE_FJ +
                                64 * kPerPe * (KILN_ENERGY_DRAM_BYTE_FJ + KILN_ENERGY_LOCAL_BYTE_FJ);
        EXPECT_EQ(r.dynamic_pj, (dyn_fj + 500) / 1000);
        EXPECT_EQ(h.energy_pj, idle_pj(r.cycles) + r.dynamic_pj);
        // timeline: dispatch, the wait, the fabric; gaps are scalar code
        const kiln_profile_segment *sg = p.segs(5);
        ASSERT_EQ(p.pe(5).segments, 3u);
        EXPECT_EQ(p.pe(5).dropped, 0u);
        EXPECT_EQ(sg[0].activity, (uint32_t)KILN_PROF_LAUNCH);
        EXPECT_EQ(sg[0].start, 0u);
        EXPECT_EQ(sg[0].cycles, (uint32_t)KILN_COST_LAUNCH);
        EXPECT_EQ(sg[1].activity, (uint32_t)KILN_PROF_DMA_WAIT);
        EXPECT_EQ(sg[1].start + sg[1].cycles, KILN_COST_LAUNCH + own - kTail);
        EXPECT_EQ(sg[2].activity, (uint32_t)KILN_PROF_FABRIC);
        EXPECT_EQ(sg[2].start, KILN_COST_LAUNCH + own);
        EXPECT_EQ(sg[2].start + sg[2].cycles, r.cycles);
    }
}

// At a barrier a PE waits for the last arrival, then (64 PEs having loaded
// 192 MiB from SRAM) for the fabric, then the release.
TEST(PeProfile, BarrierAndFabricWaits)
{
    Stream s;
    Profile p(s.m, 64 * 1024);
    const uint64_t spin = 5000;
    KilnLaunchResult r = s.run(kSramVa, KILN_LOCAL_MEM_BASE, 64, 64, spin);
    ASSERT_EQ(r.status, KILN_STATUS_OK) << r.pc;
    // at the barrier: ret does not run, the barrier and its issue do
    const uint64_t own = one_pe(KILN_COST_SRAM_BPS) + 4;
    for (uint32_t i = 0; i < 64; i++) {
        const kiln_profile_pe &pe = p.pe(i);
        EXPECT_EQ(p.sum(i), r.cycles) << i;
        EXPECT_EQ(pe.cycles[KILN_PROF_BARRIER], (uint64_t)KILN_COST_BARRIER) << i;
        EXPECT_EQ(pe.cycles[KILN_PROF_FABRIC], xfer(64 * kPerPe, KILN_COST_SRAM_BPS) - own) << i;
    }
}

// A workgroup that ends early idles until the wave's slowest one is done;
// PEs the grid does not reach idle the whole launch.
TEST(PeProfile, IdleWorkgroupsAndUnusedPes)
{
    Stream s;
    Profile p(s.m, 64 * 1024);
    KilnLaunchResult r = s.run(kSramVa, KILN_LOCAL_MEM_BASE, 8, 1);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    EXPECT_EQ(r.cycles, KILN_COST_LAUNCH + one_pe(KILN_COST_SRAM_BPS));
    for (uint32_t i = 0; i < 64; i++) {
        EXPECT_EQ(p.sum(i), r.cycles) << i;
        EXPECT_EQ(p.pe(i).workgroups, i < 8 ? 1u : 0u);
    }
    EXPECT_EQ(p.pe(0).cycles[KILN_PROF_IDLE], 0u);
    // six argument loads, bgeu, beq, ret; then idle
    EXPECT_EQ(p.pe(1).cycles[KILN_PROF_SCALAR], 6 * (1 + KILN_COST_GLOBAL_EXTRA) + 3u);
    EXPECT_EQ(p.pe(1).cycles[KILN_PROF_IDLE], one_pe(KILN_COST_SRAM_BPS) - 603);
    EXPECT_EQ(p.pe(9).cycles[KILN_PROF_IDLE], r.cycles - KILN_COST_LAUNCH);
}

// A buffer with room for the header only gets the header; one too small
// for it, or not writable, fails the launch before it runs.
TEST(PeProfile, BufferSizes)
{
    Machine m(kGrid, kGrid);
    m.load_code({ret()});
    {
        Profile p(m, sizeof(kiln_profile_header));
        ASSERT_EQ(m.launch(kCodeVa, kArgsVa, 64).status, KILN_STATUS_OK);
        EXPECT_EQ(p.head().magic, KILN_PROFILE_MAGIC);
        EXPECT_EQ(p.head().pe_offset, 0u);
        EXPECT_EQ(p.head().segment_offset, 0u);
        EXPECT_EQ(p.head().cycles, KILN_COST_LAUNCH + 1u);
    }
    {
        Profile p(m, sizeof(kiln_profile_header) + 64 * sizeof(kiln_profile_pe));
        ASSERT_EQ(m.launch(kCodeVa, kArgsVa, 64).status, KILN_STATUS_OK);
        EXPECT_EQ(p.head().pe_offset, sizeof(kiln_profile_header));
        EXPECT_EQ(p.head().segment_offset, 0u);
        EXPECT_EQ(p.pe(63).cycles[KILN_PROF_SCALAR], 1u);
    }
    {
        Profile p(m, sizeof(kiln_profile_header) - 8);
        KilnLaunchResult r = m.launch(kCodeVa, kArgsVa, 64);
        EXPECT_EQ(r.status, KILN_STATUS_BAD_LAUNCH);
        EXPECT_EQ(r.addr, p.va);
        EXPECT_EQ(r.cycles, 0u);
    }
    m.profile_va = kRoVa;     // read-only
    *m.at<uint32_t>(kRoVa + 8) = sizeof(kiln_profile_header);
    KilnLaunchResult r = m.launch(kCodeVa, kArgsVa, 64);
    EXPECT_EQ(r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(r.access, (uint32_t)KILN_ACCESS_WRITE);
    m.profile_va = 0;
}

// Each DPE op is counted by type; its energy is its MACs at the type's
// energy plus the PE's active cycles.
TEST(PeProfile, DpeWorkAndEnergy)
{
    Machine m(kGrid, kGrid);
    std::vector<uint32_t> code = {addi(s0, sp, -64)};
    for (int i = 0; i < 7; i++) {
        code.push_back(ld(t0, a0, 8 * i));
        code.push_back(sd(t0, s0, 8 * i));
    }
    code.push_back(custom(KILN_UNIT_DPE, KILN_DPE_MATMUL, zero, s0, zero));
    code.push_back(ret());
    m.load_code(code);
    Profile p(m, 64 * 1024);
    const uint64_t lm = KILN_LOCAL_MEM_BASE;
    for (uint32_t dt : {KILN_DTYPE_FP32, KILN_DTYPE_BF16, KILN_DTYPE_FP16, KILN_DTYPE_INT8}) {
        kiln_dpe_desc d{};
        d.a = lm;
        d.b = lm + 64 * 1024;
        d.c = lm + 128 * 1024;
        d.m = d.n = 128;
        d.k = 64;
        d.lda = 64;
        d.ldb = d.ldc = 128;
        d.dtype = dt;
        memcpy(m.at<uint8_t>(kDataVa), &d, sizeof(d));
        KilnLaunchResult r = m.launch(kCodeVa, kDataVa, 2);
        ASSERT_EQ(r.status, KILN_STATUS_OK);
        const uint64_t macs = 128 * 128 * 64;
        const uint64_t rate = dt == KILN_DTYPE_FP32 ? KILN_COST_DPE_MACS_FP32
                              : dt == KILN_DTYPE_INT8 ? KILN_COST_DPE_MACS_INT8
                                                      : KILN_COST_DPE_MACS_BF16;
        const uint64_t mac_fj = dt == KILN_DTYPE_FP32 ? KILN_ENERGY_MAC_FP32_FJ
                                : dt == KILN_DTYPE_BF16 ? KILN_ENERGY_MAC_BF16_FJ
                                : dt == KILN_DTYPE_FP16 ? KILN_ENERGY_MAC_FP16_FJ
                                                        : KILN_ENERGY_MAC_INT8_FJ;
        const kiln_profile_header &h = p.head();
        for (uint32_t t = 0; t < 4; t++) EXPECT_EQ(h.macs[t], t == dt ? 2 * macs : 0) << dt;
        const uint64_t dpe = macs / rate;
        const uint64_t own = 15 + 7 * KILN_COST_GLOBAL_EXTRA + KILN_COST_UNIT_ISSUE + 2 + dpe;
        EXPECT_EQ(p.pe(1).cycles[KILN_PROF_DPE], dpe);
        EXPECT_EQ(p.pe(1).cycles[KILN_PROF_SCALAR], own - dpe);
        EXPECT_EQ(r.dynamic_pj, (2 * own * KILN_ENERGY_PE_ACTIVE_FJ + 2 * macs * mac_fj + 500) / 1000);
        // its timeline: dispatch, then the DPE op after the scalar set-up
        ASSERT_EQ(p.pe(0).segments, 2u);
        EXPECT_EQ(p.segs(0)[1].activity, (uint32_t)KILN_PROF_DPE);
        EXPECT_EQ(p.segs(0)[1].cycles, dpe);
    }
}

// Idle power is 20 W: a second of modelled time is 20 J.
TEST(PeEnergy, IdlePower)
{
    EXPECT_EQ(kiln_energy_idle_pj(KILN_PE_CLOCK_HZ), 20000000000000ull);
    EXPECT_EQ(kiln_energy_idle_pj(1350), 20000000u);       // 1 us: 20 uJ
    // a DMA_COPY packet: each side's fabric
    EXPECT_EQ(kiln_energy_copy_pj(1000, 0, KILN_PA_SRAM_BASE, false),
              (KILN_ENERGY_DRAM_BYTE_FJ + KILN_ENERGY_SRAM_BYTE_FJ));
    EXPECT_EQ(kiln_energy_copy_pj(1000, KILN_PA_HOST_BASE, KILN_PA_HOST_BASE, true),
              KILN_ENERGY_HOST_BYTE_FJ);
}
