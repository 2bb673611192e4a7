// SPDX-License-Identifier: GPL-2.0-or-later
// Device memory for the engine targets (fuzz_mmu, fuzz_pe): DRAM, SRAM and host
// memory as host buffers, allocated once per process since a fresh buffer per
// input costs a page fault per page. Host memory is reached through the bus
// callbacks, which fail past its end as a DMA to an unmapped bus address would.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

extern "C" {
#include "kiln_engine.h"
}

struct DeviceMemory {
    std::vector<uint8_t> dram, sram, host;
    KilnPhys phys{};

    DeviceMemory(uint64_t dram_size, uint64_t sram_size, uint64_t host_size)
        : dram(dram_size), sram(sram_size), host(host_size)
    {
        phys.dram = dram.data();
        phys.dram_size = dram_size;
        phys.sram = sram.data();
        phys.sram_size = sram_size;
        phys.opaque = this;
        phys.host_read = host_read;
        phys.host_write = host_write;
    }
    DeviceMemory(const DeviceMemory &) = delete;
    DeviceMemory &operator=(const DeviceMemory &) = delete;

 private:
    static int host_read(void *o, uint64_t a, void *b, uint64_t l)
    {
        auto *m = static_cast<DeviceMemory *>(o);
        if (a > m->host.size() || l > m->host.size() - a) return -1;
        memcpy(b, m->host.data() + a, l);
        return 0;
    }
    static int host_write(void *o, uint64_t a, const void *b, uint64_t l)
    {
        auto *m = static_cast<DeviceMemory *>(o);
        if (a > m->host.size() || l > m->host.size() - a) return -1;
        memcpy(m->host.data() + a, b, l);
        return 0;
    }
};
