// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target: the device MMU (qemu-device/engine/kiln_mmu.c) walking
// page tables the guest wrote, with its TLB, context table, invalidation and
// fault injection.
//
// Input: u16 n (little-endian), then n operations of 12 bytes
//   [kind u8][a u8][b u16][v u64]
// then the initial contents of device DRAM (page tables, from PA 0).
//   kind % 6 = 0  translate      asid a % 6, access b & 7, va v
//              1  store PTE      region a % 3 (DRAM/SRAM/host), qword b, value v;
//                                then invalidate every context, as the driver
//                                does after changing page tables
//              2  set context    asid a % 6, valid b & 1, root v
//              3  invalidate     asid a % 6, [v, v + b pages), or all if b == 0
//              4  inject faults  a % 4
//              5  reset
// ASIDs 4 and 5 are beyond the MMU's 4 contexts, 0 is the physical space.
//
// Every result is compared with a reference walker written from the format
// in include/kiln/hw/kiln_mmu.h: a translation the TLB keeps after the tables
// changed, or a walk that accepts what the format forbids, fails the target.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "device_memory.hpp"

namespace {

constexpr uint32_t kContexts = 4;
// 4 MiB so that 2 MiB pages fit in DRAM; only what an input wrote is cleared.
constexpr uint64_t kDramSize = 4ull << 20;
constexpr uint64_t kSramSize = 64ull << 10;
constexpr uint64_t kHostSize = 64ull << 10;

struct Machine : DeviceMemory {
    uint64_t dram_dirty = 0;   // bytes of DRAM an input wrote
    Machine() : DeviceMemory(kDramSize, kSramSize, kHostSize) {}
};

// ---- the reference: include/kiln/hw/kiln_mmu.h, restated ----------------
struct Ref {
    const Machine *m;
    bool valid[kContexts] = {};
    uint64_t root[kContexts] = {};
    uint32_t inject = 0;

    struct Result {
        bool ok;
        uint32_t status, reason;
        uint64_t pa, len;
        const uint8_t *host;
    };

    // Which region holds [pa, pa + len), and the host pointer of pa; false if none does.
    bool region(uint64_t pa, uint64_t len, const uint8_t **host, uint64_t *avail) const
    {
        if (pa < kDramSize) {
            *host = m->dram.data() + pa;
            *avail = kDramSize - pa;
        } else if (pa >= KILN_PA_SRAM_BASE && pa - KILN_PA_SRAM_BASE < kSramSize) {
            *host = m->sram.data() + (pa - KILN_PA_SRAM_BASE);
            *avail = kSramSize - (pa - KILN_PA_SRAM_BASE);
        } else if (pa >= KILN_PA_HOST_BASE && pa - KILN_PA_HOST_BASE < KILN_PA_HOST_MAX) {
            *host = nullptr;
            *avail = KILN_PA_HOST_MAX - (pa - KILN_PA_HOST_BASE);
        } else {
            return false;
        }
        return len <= *avail;
    }

    static Result fault(uint32_t status, uint32_t reason) { return {false, status, reason, 0, 0, nullptr}; }

    Result translate(uint32_t asid, uint64_t va, uint32_t access)
    {
        if (asid == 0 || asid >= kContexts) return fault(KILN_STATUS_BAD_CONTEXT, KILN_MMU_FAULT_NONE);
        if (inject) {
            inject--;
            return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_INJECTED);
        }
        if (!valid[asid]) return fault(KILN_STATUS_BAD_CONTEXT, KILN_MMU_FAULT_NONE);
        if (va >= KILN_VA_MAX) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_NON_CANONICAL);
        uint64_t table = root[asid];
        for (int level = 3; level >= 0; level--) {
            uint64_t pte_pa = table + ((va >> (12 + 9 * level)) & 511) * 8, avail, pte;
            const uint8_t *h;
            if (!region(pte_pa, 8, &h, &avail)) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_BAD_PA);
            if (!h) {
                if (pte_pa - KILN_PA_HOST_BASE + 8 > kHostSize)
                    return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_TABLE_DMA);
                h = m->host.data() + (pte_pa - KILN_PA_HOST_BASE);
            }
            memcpy(&pte, h, 8);   // little-endian host
            if (!(pte & 1)) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_NOT_PRESENT);
            if (pte >> 52 || (pte & 0xff0)) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_RESERVED);
            uint64_t addr = pte & 0x000ffffffffff000ull;
            if (!(pte & 0xe)) {   // a pointer to the next level
                if (level == 0) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_RESERVED);
                table = addr;
                continue;
            }
            if (level >= 2) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_RESERVED);
            uint64_t size = level ? 2ull << 20 : 4096;
            if (addr % size) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_RESERVED);
            uint32_t perms = (pte & 2 ? KILN_ACCESS_READ : 0) | (pte & 4 ? KILN_ACCESS_WRITE : 0) |
                             (pte & 8 ? KILN_ACCESS_EXEC : 0);
            if ((perms & access) != access) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_PERMISSION);
            if (!region(addr, size, &h, &avail)) return fault(KILN_STATUS_MMU_FAULT, KILN_MMU_FAULT_BAD_PA);
            uint64_t off = va % size;
            region(addr + off, 1, &h, &avail);
            return {true, KILN_STATUS_OK, KILN_MMU_FAULT_NONE, addr + off, size - off, h};
        }
        abort();   // level 0 always returns
    }

    // kiln_mmu_set_context's documented checks (KILN_OP_CTX_SETUP).
    uint32_t set_context(uint32_t asid, bool v, uint64_t r)
    {
        const uint8_t *h;
        uint64_t avail;
        if (asid == 0 || asid >= kContexts) return KILN_STATUS_BAD_CONTEXT;
        if (v && r % KILN_PAGE_SIZE) return KILN_STATUS_BAD_PACKET;
        if (v && !region(r, KILN_PAGE_SIZE, &h, &avail)) return KILN_STATUS_BAD_ADDRESS;
        valid[asid] = v;
        root[asid] = v ? r : 0;
        return KILN_STATUS_OK;
    }
};

[[noreturn]] void fail(const char *what, uint32_t asid, uint64_t va)
{
    fprintf(stderr, "fuzz_mmu: asid %u va %#llx: %s\n", asid, (unsigned long long)va, what);
    abort();
}

void check_translate(KilnMmu *mmu, Ref &ref, uint32_t asid, uint64_t va, uint32_t access)
{
    Ref::Result want = ref.translate(asid, va, access);
    KilnXlate x{};
    KilnFault f{};
    bool ok = kiln_mmu_translate(mmu, asid, va, access, &x, &f);
    if (ok != want.ok) fail(ok ? "translated what the reference faults" : "faulted what the reference translates",
                            asid, va);
    if (ok) {
        if (x.pa != want.pa || x.host != want.host) fail("translated to another address", asid, va);
        if (!x.len || x.len > want.len) fail("translation length beyond the page or region", asid, va);
    } else if (f.status != want.status || f.reason != want.reason || f.asid != asid || f.addr != va ||
               f.access != access) {
        fprintf(stderr, "got status %u reason %u, want status %u reason %u\n", f.status, f.reason, want.status,
                want.reason);
        fail("fault report differs from the reference", asid, va);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static Machine m;
    if (size < 2) return 0;
    size_t nops = data[0] | data[1] << 8;
    if (2 + nops * 12 > size) return 0;
    const uint8_t *ops = data + 2;
    const uint8_t *img = ops + nops * 12;
    size_t img_len = size - 2 - nops * 12;
    if (img_len > kDramSize) img_len = kDramSize;

    memset(m.dram.data(), 0, m.dram_dirty);
    memset(m.sram.data(), 0, kSramSize);
    memset(m.host.data(), 0, kHostSize);
    memcpy(m.dram.data(), img, img_len);
    m.dram_dirty = img_len;

    // One MMU for all inputs, reset like a device reset between them: a
    // fresh one per input would cost more than the walks.
    static KilnMmu *mmu = kiln_mmu_new(&m.phys, kContexts);
    kiln_mmu_reset(mmu);
    Ref ref{&m};
    for (size_t i = 0; i < nops; i++) {
        const uint8_t *o = ops + i * 12;
        uint32_t a = o[1], b = o[2] | o[3] << 8;
        uint64_t v;
        memcpy(&v, o + 4, 8);
        uint32_t asid = a % 6;
        switch (o[0] % 6) {
        case 0:
            // Twice: the second lookup is served by the TLB the first one filled.
            check_translate(mmu, ref, asid, v, b & 7);
            check_translate(mmu, ref, asid, v, b & 7);
            break;
        case 1: {
            static const uint64_t sizes[] = {kDramSize, kSramSize, kHostSize};
            uint8_t *base[] = {m.dram.data(), m.sram.data(), m.host.data()};
            uint64_t off = (uint64_t(b) * 8) % sizes[a % 3];
            memcpy(base[a % 3] + off, &v, 8);
            if (a % 3 == 0 && off + 8 > m.dram_dirty) m.dram_dirty = off + 8;
            kiln_mmu_invalidate_all(mmu, 0);
            break;
        }
        case 2: {
            KilnFault f{};
            uint32_t want = ref.set_context(asid, b & 1, v);
            bool ok = kiln_mmu_set_context(mmu, asid, b & 1, v, &f);
            if (ok != (want == KILN_STATUS_OK) || (!ok && f.status != want))
                fail("set_context disagrees with the reference", asid, v);
            if (kiln_mmu_context_valid(mmu, asid) != (asid && asid < kContexts && ref.valid[asid]))
                fail("context validity differs", asid, v);
            break;
        }
        case 3: {
            uint64_t before = *kiln_mmu_flush_gen(mmu, asid);
            if (b)
                kiln_mmu_invalidate(mmu, asid, v, uint64_t(b) << KILN_PAGE_SHIFT);
            else
                kiln_mmu_invalidate_all(mmu, asid);
            // A running launch's micro-TLBs only drop translations when this moves.
            if (asid && asid < kContexts && *kiln_mmu_flush_gen(mmu, asid) == before)
                fail("invalidation did not advance the flush generation", asid, v);
            break;
        }
        case 4:
            kiln_mmu_inject_faults(mmu, a % 4);
            ref.inject = a % 4;
            if (kiln_mmu_injected_faults(mmu) != ref.inject) fail("injected fault count", asid, v);
            break;
        case 5:
            kiln_mmu_reset(mmu);
            ref = Ref{&m};
            break;
        }
    }
    return 0;
}
