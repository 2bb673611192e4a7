// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests: physical map, MMU walk (every fault reason, large pages, TLB
// invalidation) and address-space accesses across pages and regions.
#include <gtest/gtest.h>

#include <cstring>
#include <thread>
#include <vector>

extern "C" {
#include "kiln_engine.h"
}

namespace {

constexpr uint64_t kDram = 64ull << 20;
constexpr uint64_t kSram = 1ull << 20;
constexpr uint64_t kHost = 1ull << 20;

struct Env {
    std::vector<uint8_t> dram = std::vector<uint8_t>(kDram);
    std::vector<uint8_t> sram = std::vector<uint8_t>(kSram);
    std::vector<uint8_t> host = std::vector<uint8_t>(kHost);
    bool host_fail = false;
    KilnPhys phys{};
    KilnMmu *mmu = nullptr;
    uint64_t next_table = 0x100000;

    static int hr(void *o, uint64_t a, void *b, uint64_t l) {
        auto *e = static_cast<Env *>(o);
        if (e->host_fail || a + l > kHost) return -1;
        memcpy(b, e->host.data() + a, l);
        return 0;
    }
    static int hw(void *o, uint64_t a, const void *b, uint64_t l) {
        auto *e = static_cast<Env *>(o);
        if (e->host_fail || a + l > kHost) return -1;
        memcpy(e->host.data() + a, b, l);
        return 0;
    }
    Env() {
        phys.dram = dram.data();
        phys.dram_size = kDram;
        phys.sram = sram.data();
        phys.sram_size = kSram;
        phys.opaque = this;
        phys.host_read = hr;
        phys.host_write = hw;
        mmu = kiln_mmu_new(&phys, KILN_MAX_CONTEXTS_T);
    }
    ~Env() { kiln_mmu_free(mmu); }
    static constexpr uint32_t KILN_MAX_CONTEXTS_T = 256;

    uint64_t rd(uint64_t pa) { uint64_t v; memcpy(&v, dram.data() + pa, 8); return v; }
    void wr(uint64_t pa, uint64_t v) { memcpy(dram.data() + pa, &v, 8); }
    uint64_t alloc_table() { uint64_t t = next_table; next_table += 0x1000; return t; }
    // Map va -> pa at leaf level (0: 4K, 1: 2M); returns the PTE address.
    uint64_t map(uint64_t root, uint64_t va, uint64_t pa, uint64_t perm, int leaf = 0) {
        uint64_t table = root;
        for (int level = 3; level > leaf; level--) {
            uint64_t e = table + KILN_PT_INDEX(va, level) * 8;
            uint64_t pte = rd(e);
            if (!(pte & KILN_PTE_VALID)) {
                pte = alloc_table() | KILN_PTE_VALID;
                wr(e, pte);
            }
            table = pte & KILN_PTE_ADDR_MASK;
        }
        uint64_t e = table + KILN_PT_INDEX(va, leaf) * 8;
        wr(e, pa | perm | KILN_PTE_VALID);
        return e;
    }
};

constexpr uint64_t RW = KILN_PTE_READ | KILN_PTE_WRITE;

TEST(Phys, RegionsAndBounds) {
    Env e;
    KilnXlate x;
    KilnFault f{};
    ASSERT_TRUE(kiln_phys_xlate(&e.phys, 0x1000, 0x100, &x, &f));
    EXPECT_EQ(x.host, e.dram.data() + 0x1000);
    EXPECT_EQ(x.len, 0x100u);
    ASSERT_TRUE(kiln_phys_xlate(&e.phys, kDram - 8, 64, &x, &f));
    EXPECT_EQ(x.len, 8u);  // clipped at the region end
    ASSERT_TRUE(kiln_phys_xlate(&e.phys, KILN_PA_SRAM_BASE + 16, 8, &x, &f));
    EXPECT_EQ(x.host, e.sram.data() + 16);
    ASSERT_TRUE(kiln_phys_xlate(&e.phys, KILN_PA_HOST_BASE + 64, 8, &x, &f));
    EXPECT_EQ(x.host, nullptr);
    EXPECT_FALSE(kiln_phys_xlate(&e.phys, kDram, 8, &x, &f));
    EXPECT_EQ(f.status, (uint32_t)KILN_STATUS_BAD_ADDRESS);
    EXPECT_FALSE(kiln_phys_xlate(&e.phys, KILN_PA_SRAM_BASE + kSram, 8, &x, &f));
    EXPECT_FALSE(kiln_phys_xlate(&e.phys, 0x2000000000ull, 8, &x, &f));
    uint8_t b[16] = {};
    EXPECT_FALSE(kiln_phys_read(&e.phys, kDram - 8, b, 16, &f));  // crosses end
    EXPECT_EQ(f.status, (uint32_t)KILN_STATUS_BAD_ADDRESS);
    e.host_fail = true;
    EXPECT_FALSE(kiln_phys_read(&e.phys, KILN_PA_HOST_BASE, b, 16, &f));
    EXPECT_EQ(f.status, (uint32_t)KILN_STATUS_DMA_ERROR);
}

TEST(Mmu, Translate4kAnd2m) {
    Env e;
    uint64_t root = e.alloc_table();
    e.map(root, 0x10000, 0x200000, RW);
    e.map(root, 0x40000000, 0x400000, KILN_PTE_READ, 1);
    e.map(root, 0x20000, KILN_PA_HOST_BASE + 0x1000, RW);
    KilnFault f{};
    ASSERT_TRUE(kiln_mmu_set_context(e.mmu, 3, true, root, &f));
    KilnXlate x;
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 3, 0x10123, KILN_ACCESS_WRITE, &x, &f));
    EXPECT_EQ(x.pa, 0x200123u);
    EXPECT_EQ(x.len, 0x1000u - 0x123);
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 3, 0x40000000 + 0x12345, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x412345u);
    EXPECT_EQ(x.len, KILN_LARGE_PAGE_SIZE - 0x12345);
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 3, 0x20008, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, KILN_PA_HOST_BASE + 0x1008);
    EXPECT_EQ(x.host, nullptr);
    // Translations are cached: a PTE rewritten without an invalidation is not
    // seen, and is seen once the page is invalidated.
    e.map(root, 0x10000, 0x300000, RW);
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 3, 0x10000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x200000u);
    kiln_mmu_invalidate(e.mmu, 3, 0x10000, 0x1000);
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 3, 0x10000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x300000u);
}

static uint32_t fault_reason(Env &e, uint32_t asid, uint64_t va, uint32_t acc) {
    KilnXlate x;
    KilnFault f{};
    EXPECT_FALSE(kiln_mmu_translate(e.mmu, asid, va, acc, &x, &f));
    EXPECT_EQ(f.asid, asid);
    EXPECT_EQ(f.addr, va);
    EXPECT_EQ(f.access, acc);
    return f.status == KILN_STATUS_MMU_FAULT ? f.reason : 100 + f.status;
}

TEST(Mmu, EveryFaultReason) {
    Env e;
    uint64_t root = e.alloc_table();
    KilnFault f{};
    uint64_t ro = e.map(root, 0x1000, 0x300000, KILN_PTE_READ);
    e.map(root, 0x2000, 0x301000, KILN_PTE_READ | KILN_PTE_EXEC);
    ASSERT_TRUE(kiln_mmu_set_context(e.mmu, 1, true, root, &f));
    EXPECT_EQ(fault_reason(e, 1, 0x5000000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_NOT_PRESENT);
    EXPECT_EQ(fault_reason(e, 1, 0x1000, KILN_ACCESS_WRITE), (uint32_t)KILN_MMU_FAULT_PERMISSION);
    EXPECT_EQ(fault_reason(e, 1, 0x1000, KILN_ACCESS_EXEC), (uint32_t)KILN_MMU_FAULT_PERMISSION);
    EXPECT_EQ(fault_reason(e, 1, 1ull << 48, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_NON_CANONICAL);
    KilnXlate x;
    EXPECT_TRUE(kiln_mmu_translate(e.mmu, 1, 0x2000, KILN_ACCESS_EXEC, &x, &f));
    // reserved bit
    e.wr(ro, e.rd(ro) | (1ull << 55));
    kiln_mmu_invalidate(e.mmu, 1, 0x1000, 0x1000);
    EXPECT_EQ(fault_reason(e, 1, 0x1000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_RESERVED);
    // bad PA
    e.wr(ro, 0x7000000000ull | KILN_PTE_READ | KILN_PTE_VALID);
    EXPECT_EQ(fault_reason(e, 1, 0x1000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_BAD_PA);
    // page straddling the DRAM end
    e.wr(ro, (kDram - 0x800) | KILN_PTE_READ | KILN_PTE_VALID);
    EXPECT_EQ(fault_reason(e, 1, 0x1000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_RESERVED);
    // leaf at level 2 and 3
    uint64_t root2 = e.alloc_table();
    e.wr(root2 + KILN_PT_INDEX(0ull, 3) * 8, KILN_PTE_VALID | KILN_PTE_READ);
    ASSERT_TRUE(kiln_mmu_set_context(e.mmu, 2, true, root2, &f));
    EXPECT_EQ(fault_reason(e, 2, 0x0, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_RESERVED);
    uint64_t l2 = e.alloc_table();
    e.wr(root2, l2 | KILN_PTE_VALID);
    e.wr(l2, KILN_PTE_VALID | KILN_PTE_READ);
    EXPECT_EQ(fault_reason(e, 2, 0x0, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_RESERVED);
    // misaligned 2 MiB leaf
    uint64_t l1 = e.alloc_table();
    e.wr(l2, l1 | KILN_PTE_VALID);
    e.wr(l1, 0x201000 | KILN_PTE_VALID | KILN_PTE_READ);
    EXPECT_EQ(fault_reason(e, 2, 0x0, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_RESERVED);
    // non-leaf at level 0
    uint64_t l0 = e.alloc_table();
    e.wr(l1, l0 | KILN_PTE_VALID);
    e.wr(l0, 0x5000 | KILN_PTE_VALID);
    EXPECT_EQ(fault_reason(e, 2, 0x0, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_RESERVED);
    // table outside the map
    e.wr(l1, 0x7000000000ull | KILN_PTE_VALID);
    EXPECT_EQ(fault_reason(e, 2, 0x0, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_BAD_PA);
    // table in host memory, DMA failure
    e.wr(l1, KILN_PA_HOST_BASE | KILN_PTE_VALID);
    e.host_fail = true;
    EXPECT_EQ(fault_reason(e, 2, 0x0, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_TABLE_DMA);
    e.host_fail = false;
    // injected
    kiln_mmu_inject_faults(e.mmu, 2);
    EXPECT_EQ(kiln_mmu_injected_faults(e.mmu), 2u);
    EXPECT_EQ(fault_reason(e, 1, 0x2000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_INJECTED);
    EXPECT_EQ(fault_reason(e, 1, 0x2000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_INJECTED);
    EXPECT_TRUE(kiln_mmu_translate(e.mmu, 1, 0x2000, KILN_ACCESS_READ, &x, &f));
    // unbound / invalid contexts
    EXPECT_EQ(fault_reason(e, 9, 0x2000, KILN_ACCESS_READ), 100u + KILN_STATUS_BAD_CONTEXT);
    EXPECT_EQ(fault_reason(e, 0, 0x2000, KILN_ACCESS_READ), 100u + KILN_STATUS_BAD_CONTEXT);
    EXPECT_FALSE(kiln_mmu_set_context(e.mmu, 300, true, root, &f));
    EXPECT_FALSE(kiln_mmu_set_context(e.mmu, 4, true, root + 8, &f));
    EXPECT_FALSE(kiln_mmu_set_context(e.mmu, 4, true, 0x2000000000ull, &f));
}

TEST(Mmu, TlbInvalidation) {
    Env e;
    uint64_t root = e.alloc_table();
    KilnFault f{};
    KilnXlate x;
    uint64_t pte = e.map(root, 0x7000, 0x500000, RW);
    uint64_t big = e.map(root, 0x40000000, 0x600000, RW, 1);
    ASSERT_TRUE(kiln_mmu_set_context(e.mmu, 7, true, root, &f));
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x7000, KILN_ACCESS_READ, &x, &f));
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x40000000, KILN_ACCESS_READ, &x, &f));
    e.wr(pte, 0x501000 | RW | KILN_PTE_VALID);
    e.wr(big, 0x800000 | RW | KILN_PTE_VALID);
    // stale until invalidated
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x7000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x500000u);
    kiln_mmu_invalidate(e.mmu, 7, 0x8000, 0x1000);  // other page: no effect
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x7000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x500000u);
    kiln_mmu_invalidate(e.mmu, 8, 0x7000, 0x1000);  // other asid: no effect
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x7000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x500000u);
    kiln_mmu_invalidate(e.mmu, 7, 0x7fff, 1);
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x7000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x501000u);
    // range invalidation hitting inside a large page
    kiln_mmu_invalidate(e.mmu, 7, 0x40100000, 0x1000);
    ASSERT_TRUE(kiln_mmu_translate(e.mmu, 7, 0x40000000, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.pa, 0x800000u);
    // invalidate all, unmap
    e.wr(pte, 0);
    kiln_mmu_invalidate_all(e.mmu, 7);
    EXPECT_EQ(fault_reason(e, 7, 0x7000, KILN_ACCESS_READ), (uint32_t)KILN_MMU_FAULT_NOT_PRESENT);
    // reset forgets contexts
    kiln_mmu_reset(e.mmu);
    EXPECT_FALSE(kiln_mmu_context_valid(e.mmu, 7));
}

TEST(Mmu, ConcurrentTranslations) {
    Env e;
    uint64_t root = e.alloc_table();
    KilnFault f{};
    for (uint64_t i = 0; i < 64; i++) e.map(root, i << 12, 0x400000 + (i << 12), RW);
    ASSERT_TRUE(kiln_mmu_set_context(e.mmu, 1, true, root, &f));
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; t++) {
        ts.emplace_back([&, t] {
            for (int n = 0; n < 20000; n++) {
                uint64_t i = (n * 7 + t) % 64;
                KilnXlate x;
                KilnFault ff{};
                if (t == 0 && n % 100 == 0) kiln_mmu_invalidate_all(e.mmu, 1);
                if (!kiln_mmu_translate(e.mmu, 1, i << 12, KILN_ACCESS_READ, &x, &ff) ||
                    x.pa != 0x400000 + (i << 12)) bad++;
            }
        });
    }
    for (auto &t : ts) t.join();
    EXPECT_EQ(bad.load(), 0);
}

// Two address spaces map the same VAs to different pages, more pages than
// the TLB holds, so their entries keep evicting each other while lookups
// run without the lock: a lookup must never return the other space's page.
TEST(Mmu, ConcurrentLookupsNeverMixAddressSpaces) {
    Env e;
    constexpr uint64_t kPages = 2048;
    const uint64_t base[3] = {0, 0x1000000, 0x2000000};
    KilnFault f{};
    for (uint32_t asid = 1; asid <= 2; asid++) {
        uint64_t root = e.alloc_table();
        for (uint64_t i = 0; i < kPages; i++) e.map(root, i << 12, base[asid] + (i << 12), RW);
        ASSERT_TRUE(kiln_mmu_set_context(e.mmu, asid, true, root, &f));
    }
    std::vector<std::thread> ts;
    std::atomic<int> bad{0};
    for (int t = 0; t < 4; t++) {
        ts.emplace_back([&, t] {
            uint32_t asid = 1 + (t & 1);
            uint64_t r = 0x9e3779b97f4a7c15ull * (t + 1);
            for (int n = 0; n < 100000; n++) {
                r ^= r << 13, r ^= r >> 7, r ^= r << 17;
                uint64_t i = r % kPages;
                KilnXlate x;
                KilnFault ff{};
                if (t == 0 && n % 1000 == 0) kiln_mmu_invalidate(e.mmu, 2, 0, kPages << 12);
                if (!kiln_mmu_translate(e.mmu, asid, i << 12, KILN_ACCESS_READ, &x, &ff) ||
                    x.pa != base[asid] + (i << 12)) bad++;
            }
        });
    }
    for (auto &t : ts) t.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST(AddrSpace, CrossPagesAndRegions) {
    Env e;
    uint64_t root = e.alloc_table();
    KilnFault f{};
    // VA 0x10000: DRAM page, VA 0x11000: host page, VA 0x12000: SRAM page, then hole
    e.map(root, 0x10000, 0x700000, RW);
    e.map(root, 0x11000, KILN_PA_HOST_BASE + 0x3000, RW);
    e.map(root, 0x12000, KILN_PA_SRAM_BASE + 0x5000, RW);
    ASSERT_TRUE(kiln_mmu_set_context(e.mmu, 2, true, root, &f));
    KilnAddrSpace as{&e.phys, e.mmu, 2};
    std::vector<uint8_t> in(0x2800), out(0x2800);
    for (size_t i = 0; i < in.size(); i++) in[i] = (uint8_t)(i * 13 + 1);
    ASSERT_TRUE(kiln_as_write(&as, 0x10400, in.data(), in.size(), &f));
    EXPECT_EQ(memcmp(e.dram.data() + 0x700400, in.data(), 0xc00), 0);
    EXPECT_EQ(memcmp(e.host.data() + 0x3000, in.data() + 0xc00, 0x1000), 0);
    EXPECT_EQ(memcmp(e.sram.data() + 0x5000, in.data() + 0x1c00, 0xc00), 0);
    ASSERT_TRUE(kiln_as_read(&as, 0x10400, out.data(), out.size(), &f));
    EXPECT_EQ(in, out);
    // running into the unmapped page faults with the VA of the first bad byte
    EXPECT_FALSE(kiln_as_read(&as, 0x12f00, out.data(), 0x200, &f));
    EXPECT_EQ(f.status, (uint32_t)KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(f.addr, 0x13000u);
    // host DMA failure through a mapping
    e.host_fail = true;
    EXPECT_FALSE(kiln_as_read(&as, 0x11000, out.data(), 8, &f));
    EXPECT_EQ(f.status, (uint32_t)KILN_STATUS_DMA_ERROR);
    EXPECT_EQ(f.addr, 0x11000u);
    e.host_fail = false;
    // physical space (asid 0)
    KilnAddrSpace pas{&e.phys, e.mmu, 0};
    ASSERT_TRUE(kiln_as_write(&pas, kDram - 4, in.data(), 4, &f));
    EXPECT_FALSE(kiln_as_write(&pas, kDram - 4, in.data(), 8, &f));
    EXPECT_EQ(f.status, (uint32_t)KILN_STATUS_BAD_ADDRESS);
    KilnXlate x;
    ASSERT_TRUE(kiln_as_xlate(&as, 0x10ff0, 0x100, KILN_ACCESS_READ, &x, &f));
    EXPECT_EQ(x.len, 0x10u);
}

}  // namespace
