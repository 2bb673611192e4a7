// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target: the PE instruction decoder and interpreter
// (qemu-device/engine/pe/), driven through kiln_pe_launch exactly as the
// device runs a LAUNCH packet: fuzzed code, a fuzzed memory image and fuzzed
// launch geometry, on a 2x2 PE grid whose watchdog (100k cycles per PE)
// bounds every input.
//
// Input: a 16-byte header, then code, then the data image
//   [0] grid_x - 1 (mod 4)   [1] grid_y - 1 (mod 2)   [2] grid_z - 1 (mod 2)
//   [3] flags: bit 0 COOPERATIVE, bit 1 debug buffer, bits 2-3 local memory
//       (0: default, 1: 1 KiB, 2: 4 KiB, 3: bytes 12-13 as given)
//   [4-5] entry offset in the code region   [6-7] args_size (& 0x1fff)
//   [8-9] code length                        [10-11] debug buffer size
//   [12-13] local_mem                        [14-15] args offset in the data region
// All little-endian. Code is loaded at kCodeVa (read+exec), the data image at
// kDataVa (read+write, where args_va points); see the memory map below.
//
// Each input is launched twice from the same memory image and must give the
// same result and the same memory: state leaking from one launch into the next
// (local memories are reused, code pages and micro-TLBs are cached) would
// make the device's results depend on what ran before. A third launch, on an
// engine that translates every code page to host code at its first fetch
// (pe_jit.c; x86-64 hosts), must give them too.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "device_memory.hpp"

extern "C" {
#include "kiln/hw/kiln_isa.h"
}

namespace {

// Device memory map, identity-mapped VA = PA in DRAM except host and SRAM.
constexpr uint64_t kDramSize = 512 << 10;
constexpr uint64_t kCodeVa = 0x10000, kCodeSize = 0x10000;    // R+X
constexpr uint64_t kDataVa = 0x20000, kDataSize = 0x10000;    // R+W
constexpr uint64_t kRoVa = 0x30000;                            // one R page
constexpr uint64_t kRwxVa = 0x31000;                           // one R+W+X page
constexpr uint64_t kHostVa = 0x40000, kHostSize = 0x4000;      // host memory, R+W
constexpr uint64_t kSramVa = 0x50000, kSramSize = 0x4000;      // SRAM, R+W
constexpr uint64_t kPtBase = 0x70000;                          // page tables
// The page after the host buffer is mapped too: accesses to it fail as DMA errors.
constexpr uint64_t kHostMapped = kHostSize + 0x1000;
// The DRAM a kernel may write or execute: code, data, R and RWX pages.
constexpr uint64_t kDramLo = kCodeVa, kDramHi = kRwxVa + 0x1000;

struct Machine : DeviceMemory {
    KilnMmu *mmu;
    KilnAddrSpace as{};
    KilnPeEngine *eng, *jit_eng;
    uint64_t pt_next = kPtBase + 0x1000;

    void map(uint64_t va, uint64_t pa, uint64_t size, uint64_t perms)
    {
        for (uint64_t o = 0; o < size; o += 4096) {
            uint64_t t = kPtBase;
            for (int lvl = 3; lvl > 0; lvl--) {
                uint64_t *e = reinterpret_cast<uint64_t *>(dram.data() + t + KILN_PT_INDEX(va + o, lvl) * 8);
                if (!(*e & KILN_PTE_VALID)) {
                    *e = pt_next | KILN_PTE_VALID;
                    pt_next += 4096;
                }
                t = *e & KILN_PTE_ADDR_MASK;
            }
            *reinterpret_cast<uint64_t *>(dram.data() + t + KILN_PT_INDEX(va + o, 0) * 8) =
                ((pa + o) & KILN_PTE_ADDR_MASK) | KILN_PTE_VALID | perms;
        }
    }
    Machine() : DeviceMemory(kDramSize, kSramSize, kHostSize)
    {
        mmu = kiln_mmu_new(&phys, 2);
        map(kCodeVa, kCodeVa, kCodeSize, KILN_PTE_READ | KILN_PTE_EXEC);
        map(kDataVa, kDataVa, kDataSize, KILN_PTE_READ | KILN_PTE_WRITE);
        map(kRoVa, kRoVa, 4096, KILN_PTE_READ);
        map(kRwxVa, kRwxVa, 4096, KILN_PTE_READ | KILN_PTE_WRITE | KILN_PTE_EXEC);
        map(kHostVa, KILN_PA_HOST_BASE, kHostMapped, KILN_PTE_READ | KILN_PTE_WRITE);
        map(kSramVa, KILN_PA_SRAM_BASE, kSramSize, KILN_PTE_READ | KILN_PTE_WRITE);
        if (pt_next > kDramSize) abort();
        KilnFault f{};
        if (!kiln_mmu_set_context(mmu, 1, true, kPtBase, &f)) abort();
        as = {&phys, mmu, 1};
        KilnPeConfig cfg{2, 2, 64 << 10, 100000, KILN_PE_JIT_OFF};
        eng = kiln_pe_engine_new(&cfg);
        cfg.pe_jit = KILN_PE_JIT_EAGER;
        jit_eng = kiln_pe_engine_new(&cfg);
    }

    // Everything a kernel can write, restored to the input's image.
    void load(const uint8_t *code, size_t code_len, const uint8_t *data, size_t data_len)
    {
        memset(dram.data() + kDramLo, 0, kDramHi - kDramLo);
        memcpy(dram.data() + kCodeVa, code, code_len);
        memcpy(dram.data() + kDataVa, data, data_len);
        // The other regions start as copies of the data image, so that loads
        // from them see input-controlled values too.
        memcpy(dram.data() + kRwxVa, data, data_len < 4096 ? data_len : 4096);
        memset(sram.data(), 0, kSramSize);
        memcpy(sram.data(), data, data_len < kSramSize ? data_len : kSramSize);
        memset(host.data(), 0, kHostSize);
        memcpy(host.data(), data, data_len < kHostSize ? data_len : kHostSize);
    }
};

uint16_t le16(const uint8_t *p)
{
    return uint16_t(p[0] | p[1] << 8);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Machine m;
    if (size < 16) return 0;
    const uint8_t *h = data;
    size_t code_len = le16(h + 8);
    if (code_len > size - 16) code_len = size - 16;
    const uint8_t *code = data + 16, *img = code + code_len;
    size_t img_len = size - 16 - code_len;
    if (img_len > kDataSize) img_len = kDataSize;

    kiln_pkt_launch p{};
    p.header = KILN_PKT_HEADER(KILN_OP_LAUNCH, h[3] & 1 ? KILN_LAUNCH_FLAG_COOPERATIVE : 0);
    p.grid_x = 1 + h[0] % 4;
    p.grid_y = 1 + h[1] % 2;
    p.grid_z = 1 + h[2] % 2;
    static const uint32_t lm[] = {0, 1024, 4096};
    p.local_mem = (h[3] >> 2 & 3) == 3 ? le16(h + 12) : lm[h[3] >> 2 & 3];
    p.entry_va = kCodeVa + le16(h + 4);
    p.args_size = le16(h + 6) & 0x1fff;
    p.args_va = kDataVa + le16(h + 14);
    if (h[3] & 2) {
        p.debug_va = kDataVa + kDataSize / 2;
        p.debug_size = le16(h + 10);
    }

    // Snapshots of everything a kernel can write, allocated once: fresh large
    // buffers would cost a page fault per page on every input.
    static std::vector<uint8_t> snap[3];
    KilnLaunchResult r[3];
    for (int run = 0; run < 3; run++) {
        uint64_t progress = 0;
        m.load(code, code_len, img, img_len);
        kiln_pe_launch(run < 2 ? m.eng : m.jit_eng, &m.as, &p, nullptr, nullptr, &progress, 0,
                       &r[run]);
        if (r[run].status >= KILN_STATUS_COUNT) {
            fprintf(stderr, "fuzz_pe: status %u\n", r[run].status);
            abort();
        }
        auto &s = snap[run];
        s.resize(kDramHi - kDramLo + kSramSize + kHostSize);
        memcpy(s.data(), m.dram.data() + kDramLo, kDramHi - kDramLo);
        memcpy(s.data() + kDramHi - kDramLo, m.sram.data(), kSramSize);
        memcpy(s.data() + kDramHi - kDramLo + kSramSize, m.host.data(), kHostSize);
    }
    if (memcmp(&r[0], &r[1], sizeof(r[0])) || snap[0] != snap[1]) {
        fprintf(stderr, "fuzz_pe: the same launch gave status %u pc %#llx cycles %llu, then status %u pc %#llx "
                "cycles %llu%s\n", r[0].status, (unsigned long long)r[0].pc, (unsigned long long)r[0].cycles,
                r[1].status, (unsigned long long)r[1].pc, (unsigned long long)r[1].cycles,
                snap[0] != snap[1] ? " (memory differs)" : "");
        abort();
    }
    if (memcmp(&r[0], &r[2], sizeof(r[0])) || snap[0] != snap[2]) {
        fprintf(stderr, "fuzz_pe: interpreted status %u pc %#llx cycles %llu, translated status %u pc %#llx "
                "cycles %llu%s\n", r[0].status, (unsigned long long)r[0].pc, (unsigned long long)r[0].cycles,
                r[2].status, (unsigned long long)r[2].pc, (unsigned long long)r[2].cycles,
                snap[0] != snap[2] ? " (memory differs)" : "");
        abort();
    }
    return 0;
}
