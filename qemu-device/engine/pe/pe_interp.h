/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: what the interpreter's files share (pe_decode.c,
 * pe_fp.c, pe_csr_amo.c, pe_interp.c) and the translator uses.
 */
#ifndef KILN_PE_INTERP_H
#define KILN_PE_INTERP_H

#include "pe_internal.h"

/* KilnInsn.op */
enum {
    OP_ILLEGAL, OP_PAGE_END, OP_NOP,
    OP_LUI, OP_AUIPC, OP_JAL, OP_JALR,
    OP_BEQ, OP_BNE, OP_BLT, OP_BGE, OP_BLTU, OP_BGEU,
    OP_LB, OP_LH, OP_LW, OP_LD, OP_LBU, OP_LHU, OP_LWU,
    OP_SB, OP_SH, OP_SW, OP_SD,
    OP_ADDI, OP_SLTI, OP_SLTIU, OP_XORI, OP_ORI, OP_ANDI,
    OP_SLLI, OP_SRLI, OP_SRAI,
    OP_ADD, OP_SUB, OP_SLL, OP_SLT, OP_SLTU, OP_XOR, OP_SRL, OP_SRA,
    OP_OR, OP_AND,
    OP_ADDIW, OP_SLLIW, OP_SRLIW, OP_SRAIW,
    OP_ADDW, OP_SUBW, OP_SLLW, OP_SRLW, OP_SRAW,
    OP_MUL, OP_MULH, OP_MULHSU, OP_MULHU, OP_DIV, OP_DIVU, OP_REM, OP_REMU,
    OP_MULW, OP_DIVW, OP_DIVUW, OP_REMW, OP_REMUW,
    OP_ECALL, OP_EBREAK, OP_CSR,
    OP_FLW, OP_FLD, OP_FSW, OP_FSD, OP_FP,
    OP_CUSTOM, OP_AMO,
    OP_COUNT
};

/* RISC-V exception causes, reported in KilnLaunchResult.reason */
#define CAUSE_FETCH_MISALIGNED  0
#define CAUSE_ILLEGAL           2
#define CAUSE_BREAKPOINT        3
#define CAUSE_LOAD_MISALIGNED   4
#define CAUSE_LOAD_FAULT        5
#define CAUSE_STORE_MISALIGNED  6
#define CAUSE_STORE_FAULT       7
#define CAUSE_ECALL_U           8

/* RV64A funct5 values */
#define AMO_ADD     0x00
#define AMO_SWAP    0x01
#define AMO_LR      0x02
#define AMO_SC      0x03
#define AMO_XOR     0x04
#define AMO_OR      0x08
#define AMO_AND     0x0c
#define AMO_MIN     0x10
#define AMO_MAX     0x14
#define AMO_MINU    0x18
#define AMO_MAXU    0x1c

/* pe_decode.c: predecode one instruction word; find or decode a code page */
void kiln_pe_decode(uint32_t w, KilnInsn *d);
KilnCodePage *kiln_pe_code_lookup(KilnPe *pe, uint64_t va);

/* pe_interp.c: the slow path of a scalar load/store (TLB fill, host memory) */
bool kiln_pe_mem_slow(KilnPe *pe, uint64_t addr, unsigned size, bool write,
                      void *val);

/* pe_csr_amo.c: false if the instruction faulted or is illegal */
bool kiln_pe_exec_amo(KilnPe *pe, const KilnInsn *d, uint64_t *rd);
bool kiln_pe_exec_csr(KilnPe *pe, const KilnInsn *d);

/* pe_fp.c */
bool kiln_pe_exec_fp(KilnPe *pe, const KilnInsn *d);
/* fold the host's sticky FP flags into the PE's fflags and clear them */
void kiln_pe_sync_fflags(KilnPe *pe);

#endif /* KILN_PE_INTERP_H */
