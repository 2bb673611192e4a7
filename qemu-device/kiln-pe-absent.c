/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1: used only while the PE compute engine (engine/pe/) is not part
 * of the build. The device then clears KILN_FEATURE_PE_ENGINE and every
 * LAUNCH fails with KILN_STATUS_BAD_LAUNCH.
 */
#include "engine/kiln_engine.h"

KilnPeEngine *kiln_pe_engine_new(const KilnPeConfig *cfg)
{
    return NULL;
}

void kiln_pe_engine_free(KilnPeEngine *eng)
{
}

void kiln_pe_launch(KilnPeEngine *eng, const KilnAddrSpace *as,
                    const struct kiln_pkt_launch *pkt,
                    const KilnParallel *par, const volatile int *cancel,
                    uint64_t *progress, KilnLaunchResult *result)
{
    result->status = KILN_STATUS_BAD_LAUNCH;
    result->pe = KILN_JOB_STATUS_NO_PE;
}
