/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: the translator of hot code pages to host code (pe_jit.c;
 * x86-64 Linux hosts, elsewhere every page stays interpreted).
 */
#ifndef KILN_PE_JIT_H
#define KILN_PE_JIT_H

#include "pe_interp.h"

/* kiln_pe_jit_run: where the interpreter goes on */
enum {
    KILN_JIT_FETCH,     /* its fetch point, at pe->pc */
    KILN_JIT_INTERP,    /* the instruction at pe->pc, on the same page */
    KILN_JIT_NONE,      /* no entry point there: interpret from it */
};

/* The PE ran @insns instructions on @p since it last entered it */
void kiln_pe_jit_heat(KilnPe *pe, KilnCodePage *p, uint64_t insns);
/*
 * The translation of @p, made if the page is hot now; NULL while it is
 * not (or cannot be) translated.
 */
KilnJitPage *kiln_pe_jit_page(KilnPe *pe, KilnCodePage *p);
/*
 * Run translated code from instruction @idx of the page, with icount in
 * pe->instret and the next check point in pe->jit_check_at; on return
 * pe->instret and pe->pc are the interpreter's.
 */
int kiln_pe_jit_run(KilnJitPage *jp, KilnPe *pe, unsigned idx);
void kiln_pe_jit_free(KilnJitPage *jp);

#endif /* KILN_PE_JIT_H */
