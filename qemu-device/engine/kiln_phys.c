/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: device physical address decode (DRAM, SRAM, host).
 *
 * The physical map is fixed by include/kiln/hw/kiln_mmu.h:
 *   [0, dram_size)                                   device DRAM
 *   [KILN_PA_SRAM_BASE, KILN_PA_SRAM_BASE + sram_size) on-chip SRAM
 *   [KILN_PA_HOST_BASE, KILN_PA_HOST_BASE + 2^51)    host (PCI bus) memory
 * Everything else is KILN_STATUS_BAD_ADDRESS.
 */
#include <string.h>

#include "kiln_engine.h"

static void phys_fault(KilnFault *fault, uint32_t status, uint64_t pa,
                       uint32_t access, uint32_t reason)
{
    if (fault) {
        fault->status = status;
        fault->asid = 0;
        fault->addr = pa;
        fault->access = access;
        fault->reason = reason;
    }
}

bool kiln_phys_xlate(const KilnPhys *phys, uint64_t pa, uint64_t len,
                     KilnXlate *out, KilnFault *fault)
{
    uint64_t avail;

    if (len == 0) {
        len = 1;
    }
    if (pa < phys->dram_size && phys->dram) {
        avail = phys->dram_size - pa;
        out->pa = pa;
        out->host = phys->dram + pa;
        out->len = len < avail ? len : avail;
        return true;
    }
    if (pa >= KILN_PA_SRAM_BASE && pa - KILN_PA_SRAM_BASE < phys->sram_size &&
        phys->sram) {
        avail = phys->sram_size - (pa - KILN_PA_SRAM_BASE);
        out->pa = pa;
        out->host = phys->sram + (pa - KILN_PA_SRAM_BASE);
        out->len = len < avail ? len : avail;
        return true;
    }
    if (pa >= KILN_PA_HOST_BASE && pa - KILN_PA_HOST_BASE < KILN_PA_HOST_MAX) {
        avail = KILN_PA_HOST_MAX - (pa - KILN_PA_HOST_BASE);
        out->pa = pa;
        out->host = NULL;
        out->len = len < avail ? len : avail;
        return true;
    }
    phys_fault(fault, KILN_STATUS_BAD_ADDRESS, pa, 0, KILN_MMU_FAULT_BAD_PA);
    return false;
}

static bool phys_access(const KilnPhys *phys, uint64_t pa, void *buf,
                        uint64_t len, bool write, KilnFault *fault)
{
    uint8_t *p = buf;
    uint32_t access = write ? KILN_ACCESS_WRITE : KILN_ACCESS_READ;

    while (len) {
        KilnXlate x;
        int rc;

        if (!kiln_phys_xlate(phys, pa, len, &x, fault)) {
            if (fault) {
                fault->access = access;
            }
            return false;
        }
        if (x.host) {
            if (write) {
                memcpy(x.host, p, x.len);
            } else {
                memcpy(p, x.host, x.len);
            }
        } else {
            if (write) {
                rc = phys->host_write ?
                    phys->host_write(phys->opaque, pa - KILN_PA_HOST_BASE, p,
                                     x.len) : -1;
            } else {
                rc = phys->host_read ?
                    phys->host_read(phys->opaque, pa - KILN_PA_HOST_BASE, p,
                                    x.len) : -1;
            }
            if (rc != 0) {
                phys_fault(fault, KILN_STATUS_DMA_ERROR, pa, access,
                           KILN_MMU_FAULT_NONE);
                return false;
            }
        }
        p += x.len;
        pa += x.len;
        len -= x.len;
    }
    return true;
}

bool kiln_phys_read(const KilnPhys *phys, uint64_t pa, void *buf, uint64_t len,
                    KilnFault *fault)
{
    return phys_access(phys, pa, buf, len, false, fault);
}

bool kiln_phys_write(const KilnPhys *phys, uint64_t pa, const void *buf,
                     uint64_t len, KilnFault *fault)
{
    return phys_access(phys, pa, (void *)buf, len, true, fault);
}
