// SPDX-License-Identifier: GPL-2.0-or-later
// Host test harness for the Kiln PE engine: DRAM/SRAM/host memory, a
// context with real page tables, a thread-pool KilnParallel, and a tiny
// RISC-V encoder for hand-written programs.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

extern "C" {
#include "kiln_engine.h"
#include "kiln/hw/kiln_isa.h"
#include "kiln/hw/kiln_profile.h"
}

namespace kt {

constexpr uint64_t kDramSize = 64ull << 20;
constexpr uint64_t kPtBase = 60ull << 20;     // page tables live here
constexpr uint64_t kCodeVa = 0x10000;
constexpr uint64_t kDataVa = 0x100000;        // 16 MiB RW, identity mapped
constexpr uint64_t kDataSize = 16ull << 20;
constexpr uint64_t kRoVa = 0x2000000;         // one read-only page
constexpr uint64_t kHostVa = 0x3000000;       // 64 KiB of host memory
constexpr uint64_t kSramVa = 0x4000000;       // 1 MiB of SRAM
constexpr uint64_t kKbinVa = 0x1200000;       // 1 MiB RWX for kernel binaries
constexpr uint64_t kArgsVa = kDataVa + kDataSize - 0x10000;

inline void pool_for(void *opaque, uint32_t n, void (*fn)(void *, uint32_t),
                     void *arg)
{
    uint32_t workers = *static_cast<uint32_t *>(opaque);
    std::atomic<uint32_t> next{0};
    std::vector<std::thread> ts;
    for (uint32_t w = 0; w < workers; w++) {
        ts.emplace_back([&] {
            for (uint32_t i; (i = next.fetch_add(1)) < n;) {
                fn(arg, i);
            }
        });
    }
    for (auto &t : ts) {
        t.join();
    }
}

struct Machine {
    std::vector<uint8_t> dram, sram, host;
    KilnPhys phys{};
    KilnMmu *mmu = nullptr;
    KilnAddrSpace as{};
    KilnPeEngine *eng = nullptr;
    uint64_t pt_next = kPtBase + 4096;
    uint32_t workers = 1;
    KilnParallel par{};
    uint64_t progress = 0;
    volatile int cancel = 0;
    uint64_t profile_va = 0;        // LAUNCH profile_va of every launch
    uint64_t start_cycles = 0;      // the device time launches report

    static int host_rd(void *o, uint64_t a, void *b, uint64_t l)
    {
        auto *m = static_cast<Machine *>(o);
        if (a + l > m->host.size()) return -1;
        memcpy(b, m->host.data() + a, l);
        return 0;
    }
    static int host_wr(void *o, uint64_t a, const void *b, uint64_t l)
    {
        auto *m = static_cast<Machine *>(o);
        if (a + l > m->host.size()) return -1;
        memcpy(m->host.data() + a, b, l);
        return 0;
    }

    // dram_bytes >= kDramSize and sram_bytes >= 1 MiB: the layout above,
    // with room past it that a test maps for itself (map()). @jit is a
    // KILN_PE_JIT_* (the environment's KILN_PE_JIT still applies).
    explicit Machine(uint32_t gw = 2, uint32_t gh = 2, uint32_t nworkers = 1,
                     uint64_t dram_bytes = kDramSize, uint64_t sram_bytes = 1 << 20,
                     uint32_t jit = KILN_PE_JIT_ON)
        : dram(dram_bytes), sram(sram_bytes), host(64 << 10), workers(nworkers)
    {
        phys.dram = dram.data();
        phys.dram_size = dram.size();
        phys.sram = sram.data();
        phys.sram_size = sram.size();
        phys.opaque = this;
        phys.host_read = host_rd;
        phys.host_write = host_wr;
        mmu = kiln_mmu_new(&phys, 16);
        KilnFault f{};
        kiln_mmu_set_context(mmu, 1, true, kPtBase, &f);
        as.phys = &phys;
        as.mmu = mmu;
        as.asid = 1;
        map(kCodeVa, kCodeVa, 0x40000, KILN_PTE_READ | KILN_PTE_EXEC);
        map(kDataVa, kDataVa, kDataSize, KILN_PTE_READ | KILN_PTE_WRITE);
        map(kRoVa, kRoVa, 4096, KILN_PTE_READ);
        map(kKbinVa, kKbinVa, 1 << 20, KILN_PTE_READ | KILN_PTE_WRITE | KILN_PTE_EXEC);
        map(kHostVa, KILN_PA_HOST_BASE, 64 << 10, KILN_PTE_READ | KILN_PTE_WRITE);
        map(kSramVa, KILN_PA_SRAM_BASE, 1 << 20, KILN_PTE_READ | KILN_PTE_WRITE);
        KilnPeConfig cfg{gw, gh, 0, 0, jit};
        eng = kiln_pe_engine_new(&cfg);
        par.opaque = &workers;
        par.workers = workers;
        par.parallel_for = pool_for;
    }
    ~Machine()
    {
        kiln_pe_engine_free(eng);
        kiln_mmu_free(mmu);
    }
    void set_workers(uint32_t w)
    {
        workers = w;
        par.workers = w;
    }

    uint64_t &pte(uint64_t table, unsigned idx)
    {
        return *reinterpret_cast<uint64_t *>(dram.data() + table + idx * 8);
    }
    void map(uint64_t va, uint64_t pa, uint64_t size, uint64_t perms)
    {
        for (uint64_t o = 0; o < size; o += 4096) {
            uint64_t t = kPtBase;
            for (int lvl = 3; lvl > 0; lvl--) {
                uint64_t &e = pte(t, KILN_PT_INDEX(va + o, lvl));
                if (!(e & KILN_PTE_VALID)) {
                    e = pt_next | KILN_PTE_VALID;
                    pt_next += 4096;
                }
                t = e & KILN_PTE_ADDR_MASK;
            }
            pte(t, KILN_PT_INDEX(va + o, 0)) = ((pa + o) & KILN_PTE_ADDR_MASK) |
                                               KILN_PTE_VALID | perms;
        }
        kiln_mmu_invalidate_all(mmu, 1);
    }
    uint64_t heap = kDataVa;
    // Bump allocation in the data region (64-byte aligned)
    uint64_t alloc(uint64_t bytes)
    {
        uint64_t va = heap;
        heap += (bytes + 63) & ~63ull;
        if (heap > kArgsVa) abort();
        return va;
    }
    template <typename T> uint64_t upload(const std::vector<T> &v)
    {
        uint64_t va = alloc(v.size() * sizeof(T));
        memcpy(dram.data() + va, v.data(), v.size() * sizeof(T));
        return va;
    }
    template <typename T> std::vector<T> download(uint64_t va, size_t n)
    {
        std::vector<T> v(n);
        memcpy(v.data(), dram.data() + va, n * sizeof(T));
        return v;
    }
    template <typename T> T *at(uint64_t va)
    {
        return reinterpret_cast<T *>(dram.data() + va);  // identity mapped
    }
    void load_code(const std::vector<uint32_t> &code, uint64_t va = kCodeVa)
    {
        memcpy(dram.data() + va, code.data(), code.size() * 4);
    }
    KilnLaunchResult launch(uint64_t entry, uint64_t args_va, uint32_t gx = 1,
                            uint32_t gy = 1, uint32_t gz = 1, uint32_t flags = 0,
                            uint32_t local_mem = 0, uint32_t watchdog_mc = 0,
                            uint64_t debug_va = 0, uint32_t debug_size = 0,
                            uint32_t args_size = 0)
    {
        kiln_pkt_launch p{};
        p.header = KILN_PKT_HEADER(KILN_OP_LAUNCH, flags);
        p.entry_va = entry;
        p.args_va = args_va;
        p.args_size = args_size;
        p.grid_x = gx;
        p.grid_y = gy;
        p.grid_z = gz;
        p.local_mem = local_mem;
        p.watchdog_mcycles = watchdog_mc;
        p.debug_va = debug_va;
        p.debug_size = debug_size;
        p.profile_va = profile_va;
        KilnLaunchResult r{};
        kiln_pe_launch(eng, &as, &p, &par, &cancel, &progress, start_cycles, &r);
        return r;
    }
};

// ---- a tiny RV64 encoder ----
namespace rv {
enum Reg { zero, ra, sp, gp, tp, t0, t1, t2, s0, s1, a0, a1, a2, a3, a4, a5, a6,
           a7, s2, s3, s4, s5, s6, s7, s8, s9, s10, s11, t3, t4, t5, t6 };
inline uint32_t R(uint32_t f7, uint32_t rs2, uint32_t rs1, uint32_t f3, uint32_t rd,
                  uint32_t opc)
{
    return f7 << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
inline uint32_t I(int32_t imm, uint32_t rs1, uint32_t f3, uint32_t rd, uint32_t opc)
{
    return (uint32_t)(imm & 0xfff) << 20 | rs1 << 15 | f3 << 12 | rd << 7 | opc;
}
inline uint32_t S(int32_t imm, uint32_t rs2, uint32_t rs1, uint32_t f3, uint32_t opc)
{
    return (uint32_t)((imm >> 5) & 0x7f) << 25 | rs2 << 20 | rs1 << 15 | f3 << 12 |
           (uint32_t)(imm & 31) << 7 | opc;
}
inline uint32_t B(int32_t imm, uint32_t rs2, uint32_t rs1, uint32_t f3)
{
    uint32_t u = (uint32_t)imm;
    return ((u >> 12) & 1) << 31 | ((u >> 5) & 0x3f) << 25 | rs2 << 20 | rs1 << 15 |
           f3 << 12 | ((u >> 1) & 15) << 8 | ((u >> 11) & 1) << 7 | 0x63;
}
inline uint32_t J(int32_t imm, uint32_t rd)
{
    uint32_t u = (uint32_t)imm;
    return ((u >> 20) & 1) << 31 | ((u >> 1) & 0x3ff) << 21 | ((u >> 11) & 1) << 20 |
           ((u >> 12) & 0xff) << 12 | rd << 7 | 0x6f;
}
inline uint32_t lui(uint32_t rd, int32_t imm20) { return (uint32_t)imm20 << 12 | rd << 7 | 0x37; }
inline uint32_t addi(uint32_t rd, uint32_t rs, int32_t i) { return I(i, rs, 0, rd, 0x13); }
inline uint32_t ld(uint32_t rd, uint32_t rs, int32_t i) { return I(i, rs, 3, rd, 0x03); }
inline uint32_t lw(uint32_t rd, uint32_t rs, int32_t i) { return I(i, rs, 2, rd, 0x03); }
inline uint32_t sd(uint32_t rs2, uint32_t rs1, int32_t i) { return S(i, rs2, rs1, 3, 0x23); }
inline uint32_t sw(uint32_t rs2, uint32_t rs1, int32_t i) { return S(i, rs2, rs1, 2, 0x23); }
inline uint32_t fld(uint32_t rd, uint32_t rs, int32_t i) { return I(i, rs, 3, rd, 0x07); }
inline uint32_t flw(uint32_t rd, uint32_t rs, int32_t i) { return I(i, rs, 2, rd, 0x07); }
inline uint32_t fsd(uint32_t rs2, uint32_t rs1, int32_t i) { return S(i, rs2, rs1, 3, 0x27); }
inline uint32_t fsw(uint32_t rs2, uint32_t rs1, int32_t i) { return S(i, rs2, rs1, 2, 0x27); }
inline uint32_t ret() { return I(0, ra, 0, zero, 0x67); }
inline uint32_t op(uint32_t f7, uint32_t f3, uint32_t rd, uint32_t rs1, uint32_t rs2)
{
    return R(f7, rs2, rs1, f3, rd, 0x33);
}
inline uint32_t opw(uint32_t f7, uint32_t f3, uint32_t rd, uint32_t rs1, uint32_t rs2)
{
    return R(f7, rs2, rs1, f3, rd, 0x3b);
}
inline uint32_t fop(uint32_t f7, uint32_t rm, uint32_t rd, uint32_t rs1, uint32_t rs2)
{
    return R(f7, rs2, rs1, rm, rd, 0x53);
}
inline uint32_t csrrw(uint32_t rd, uint32_t csr, uint32_t rs1) { return I((int32_t)csr, rs1, 1, rd, 0x73); }
inline uint32_t csrrs(uint32_t rd, uint32_t csr, uint32_t rs1) { return I((int32_t)csr, rs1, 2, rd, 0x73); }
// RV64A: f5 = funct5 (LR 2, SC 3, AMOSWAP 1, AMOADD 0, ...), f3 = 2 (.W) or 3 (.D)
inline uint32_t amo(uint32_t f5, uint32_t f3, uint32_t rd, uint32_t rs1, uint32_t rs2,
                    uint32_t aqrl = 0)
{
    return R(f5 << 2 | aqrl, rs2, rs1, f3, rd, 0x2f);
}
inline uint32_t custom(uint32_t unit, uint32_t opn, uint32_t rd, uint32_t rs1, uint32_t rs2)
{
    return KILN_INSN(opn, rs2, rs1, unit, rd);
}
}  // namespace rv
}  // namespace kt
