/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: address spaces. ASID 0 is the physical space used by
 * privileged ring packets; any other ASID is a context translated by the
 * MMU. Accesses may cross page and region boundaries; each page is
 * translated (and permission-checked) separately.
 */
#include <string.h>

#include "kiln_engine.h"

bool kiln_as_xlate(const KilnAddrSpace *as, uint64_t addr, uint64_t len,
                   uint32_t access, KilnXlate *out, KilnFault *fault)
{
    if (len == 0) {
        len = 1;
    }
    if (as->asid == 0 || !as->mmu) {
        if (!kiln_phys_xlate(as->phys, addr, len, out, fault)) {
            if (fault) {
                fault->access = access;
            }
            return false;
        }
        return true;
    }
    if (!kiln_mmu_translate(as->mmu, as->asid, addr, access, out, fault)) {
        return false;
    }
    if (out->len > len) {
        out->len = len;
    }
    return true;
}

static bool as_access(const KilnAddrSpace *as, uint64_t addr, void *buf,
                      uint64_t len, bool write, KilnFault *fault)
{
    uint8_t *p = buf;
    uint32_t access = write ? KILN_ACCESS_WRITE : KILN_ACCESS_READ;

    while (len) {
        KilnXlate x;

        if (!kiln_as_xlate(as, addr, len, access, &x, fault)) {
            return false;
        }
        if (x.host) {
            if (write) {
                memcpy(x.host, p, x.len);
            } else {
                memcpy(p, x.host, x.len);
            }
        } else if (write) {
            if (!kiln_phys_write(as->phys, x.pa, p, x.len, fault)) {
                if (fault) {
                    fault->asid = as->asid;
                    fault->addr = addr;
                }
                return false;
            }
        } else {
            if (!kiln_phys_read(as->phys, x.pa, p, x.len, fault)) {
                if (fault) {
                    fault->asid = as->asid;
                    fault->addr = addr;
                }
                return false;
            }
        }
        p += x.len;
        addr += x.len;
        len -= x.len;
    }
    return true;
}

bool kiln_as_read(const KilnAddrSpace *as, uint64_t addr, void *buf,
                  uint64_t len, KilnFault *fault)
{
    return as_access(as, addr, buf, len, false, fault);
}

bool kiln_as_write(const KilnAddrSpace *as, uint64_t addr, const void *buf,
                   uint64_t len, KilnFault *fault)
{
    return as_access(as, addr, (void *)buf, len, true, fault);
}
