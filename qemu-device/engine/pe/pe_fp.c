/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln PE hart: RV64F/D. Floating point uses the host FPU (x86-64 SSE /
 * AArch64 are IEEE 754 with after-rounding tininess like RISC-V); NaN
 * results are canonicalised, and conversions, min/max, compares and
 * classification are done in software; round-to-nearest-max-magnitude
 * (RMM), which hosts lack, is computed exactly. Exception flags accumulate
 * in the host's sticky flags between CSR reads and are folded into the
 * PE's fflags whenever the PE leaves the interpreter or touches fcsr.
 */
#include <fenv.h>
#include <math.h>
#include <string.h>

#include "pe_interp.h"

/* ---- host FP environment ------------------------------------------------ */

uint32_t kiln_pe_host_fflags(void)
{
    int e = fetestexcept(FE_ALL_EXCEPT);
    uint32_t r = 0;

    if (e & FE_INEXACT) {
        r |= 1;
    }
    if (e & FE_UNDERFLOW) {
        r |= 2;
    }
    if (e & FE_OVERFLOW) {
        r |= 4;
    }
    if (e & FE_DIVBYZERO) {
        r |= 8;
    }
    if (e & FE_INVALID) {
        r |= 16;
    }
    return r;
}

/*
 * feclearexcept rewrites the whole x87 environment (fldenv), which costs
 * more than a short SE op; testing is cheap, and integer code and exact
 * arithmetic leave nothing to clear.
 */
void kiln_pe_clear_host_fflags(void)
{
    if (fetestexcept(FE_ALL_EXCEPT)) {
        feclearexcept(FE_ALL_EXCEPT);
    }
}

void kiln_pe_sync_fflags(KilnPe *pe)
{
    pe->fflags |= kiln_pe_host_fflags();
    kiln_pe_clear_host_fflags();
}


/* ---- floating point ------------------------------------------------------ */

#define CANON_S 0x7fc00000u
#define CANON_D 0x7ff8000000000000ull
#define FFLAG_NX 1u
#define FFLAG_NV 16u

static inline float unbox_s(uint64_t v)
{
    uint32_t b = (v >> 32) == 0xffffffffu ? (uint32_t)v : CANON_S;
    float f;

    memcpy(&f, &b, 4);
    return f;
}

static inline uint64_t box_s(float f)
{
    uint32_t b;

    memcpy(&b, &f, 4);
    return 0xffffffff00000000ull | b;
}

static inline uint64_t box_s_canon(float f)
{
    return isnan(f) ? (0xffffffff00000000ull | CANON_S) : box_s(f);
}

static inline double as_d(uint64_t v)
{
    double d;

    memcpy(&d, &v, 8);
    return d;
}

static inline uint64_t bits_d(double d)
{
    uint64_t v;

    memcpy(&v, &d, 8);
    return v;
}

static inline uint64_t bits_d_canon(double d)
{
    return isnan(d) ? CANON_D : bits_d(d);
}

static bool is_snan_s(uint64_t boxed)
{
    uint32_t b = (boxed >> 32) == 0xffffffffu ? (uint32_t)boxed : CANON_S;

    return (b & 0x7f800000u) == 0x7f800000u && (b & 0x7fffffu) &&
           !(b & 0x400000u);
}

static bool is_snan_d(uint64_t b)
{
    return (b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull &&
           (b & 0xfffffffffffffull) && !(b & 0x8000000000000ull);
}

static int host_round(uint32_t rm)
{
    switch (rm) {
    case 1: return FE_TOWARDZERO;
    case 2: return FE_DOWNWARD;
    case 3: return FE_UPWARD;
    default: return FE_TONEAREST;    /* RNE; RMM: exec_fp_rmm() */
    }
}

/*
 * ---- RMM (round to nearest, ties to max magnitude) ----------------------
 *
 * The host has no RMM mode, so an RMM instruction is executed in RNE (by
 * exec_fp_rmm(), out of exec_fp()'s hot path) and the result is corrected
 * afterwards: RMM and RNE differ only when the exact result x is the
 * midpoint m between two adjacent representable values r (the RNE result,
 * closer to zero) and r' (one ulp further from zero); then RMM returns r'.
 * The test "x == m" is done exactly with integer arithmetic on the
 * operands' bits, so it raises no host flag.
 *
 * The flags of the RNE operation are also the RMM flags:
 * - NX: x is a midpoint in either case, so both are inexact.
 * - OF: the overflow threshold is the same for both (MAX + ulp/2 is a tie
 *   that RNE resolves to the even 2^(emax+1), i.e. to infinity), and when
 *   RNE returns a finite r the step to r' never reaches infinity (a midpoint
 *   above MAX would have overflowed in RNE).
 * - UF (tininess after rounding, as RISC-V): a midpoint below 2^emin is
 *   exactly representable with unbounded exponent, hence tiny (and inexact)
 *   in both modes; a midpoint >= 2^emin is not tiny in either mode.
 * The result of a tie never is NaN, so no canonicalisation is needed, and a
 * tie rounded to zero by RNE keeps the sign of x, which gives r' its sign.
 *
 * FSQRT cannot produce a midpoint: sqrt of a binary32/64 value is never
 * subnormal, and a normal midpoint m has an odd significand of exactly
 * p + 1 bits, so m * m has an odd significand of at least 2p + 1 bits and
 * cannot equal an operand (at most p bits). FDIV can, but only for results
 * below 2^emin: x = a / b = m means a = b * m, and in the normal range the
 * odd part of b * m has more than p bits; a subnormal midpoint has a short
 * odd part (e.g. 2^-1074 / 2 = 2^-1075, which RMM rounds to 2^-1074), so
 * FDIV goes through the same check. FCVT.D.S and FCVT.D.W/WU are exact.
 */
__extension__ typedef unsigned __int128 PeU128;
__extension__ typedef __int128 PeS128;

typedef struct {
    bool neg;
    PeU128 mag;         /* value = (neg ? -1 : 1) * mag * 2^exp */
    int exp;
} RmmTerm;

static inline int ctz128(PeU128 v)
{
    uint64_t lo = (uint64_t)v;

    return lo ? __builtin_ctzll(lo) : 64 + __builtin_ctzll((uint64_t)(v >> 64));
}

static inline int bitlen128(PeU128 v)
{
    uint64_t hi = (uint64_t)(v >> 64);

    return hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)v);
}

/*
 * Exact test that a sum of at most three terms is zero. With odd
 * significands, the lowest exponent must occur twice, and the largest
 * magnitude is at most twice the second largest; so a zero sum spans at most
 * one significand width (<= 110 bits here), and a wider spread is nonzero.
 */
static bool rmm_sum_is_zero(RmmTerm *t, int n)
{
    int lo = INT32_MAX, hi = INT32_MIN, k = 0;
    PeS128 sum = 0;

    for (int i = 0; i < n; i++) {
        if (t[i].mag) {
            int z = ctz128(t[i].mag), top;

            t[k] = t[i];
            t[k].mag >>= z;
            t[k].exp += z;
            top = t[k].exp + bitlen128(t[k].mag) - 1;
            lo = t[k].exp < lo ? t[k].exp : lo;
            hi = top > hi ? top : hi;
            k++;
        }
    }
    if (k == 0) {
        return true;
    }
    if (hi - lo > 116) {
        return false;
    }
    for (int i = 0; i < k; i++) {
        PeS128 v = (PeS128)(t[i].mag << (t[i].exp - lo));
        sum += t[i].neg ? -v : v;
    }
    return sum == 0;
}

/* magnitude of a binary64 (exponent field 0x7ff reads as 2^1024) */
static RmmTerm rmm_term_d(uint64_t b)
{
    uint32_t e = (b >> 52) & 0x7ff;
    uint64_t m = b & 0xfffffffffffffull;
    RmmTerm t = { b >> 63, e ? m | (1ull << 52) : m, e ? (int)e - 1075 : -1074 };

    if (e == 0x7ff) {
        t.mag = 1ull << 52;
    }
    return t;
}

static RmmTerm rmm_term_s(uint32_t b)
{
    uint32_t e = (b >> 23) & 0xff;
    uint32_t m = b & 0x7fffff;
    RmmTerm t = { b >> 31, e ? m | (1u << 23) : m, e ? (int)e - 150 : -149 };

    if (e == 0xff) {
        t.mag = 1u << 23;
    }
    return t;
}

static inline RmmTerm rmm_neg(RmmTerm t)
{
    t.neg = !t.neg;
    return t;
}

static inline RmmTerm rmm_mul(RmmTerm a, RmmTerm b)
{
    RmmTerm t = { a.neg != b.neg, a.mag * b.mag, a.exp + b.exp };

    return t;
}

/* midpoint between r and the next value away from zero (r finite) */
static RmmTerm rmm_mid(RmmTerm r, RmmTerm r_away)
{
    int e = r.exp < r_away.exp ? r.exp : r_away.exp;
    RmmTerm m = { r.neg, (r.mag << (r.exp - e)) + (r_away.mag << (r_away.exp - e)),
                  e - 1 };

    return m;
}

enum { RMM_ADD, RMM_MUL, RMM_FMA, RMM_DIV, RMM_CVT };

/*
 * RMM correction of an RNE result r for the operation kind on the (already
 * sign-adjusted) terms x[]: ADD x0 + x1, MUL x0 * x1, FMA x0 * x1 + x2,
 * DIV x0 / x1, CVT x0.
 */
static bool rmm_is_tie(RmmTerm r, RmmTerm ra, int kind, const RmmTerm *x)
{
    RmmTerm m = rmm_mid(r, ra), t[3];
    int n;

    switch (kind) {
    case RMM_ADD:
        t[0] = x[0];
        t[1] = x[1];
        t[2] = rmm_neg(m);
        n = 3;
        break;
    case RMM_MUL:
        t[0] = rmm_mul(x[0], x[1]);
        t[1] = rmm_neg(m);
        n = 2;
        break;
    case RMM_FMA:
        t[0] = rmm_mul(x[0], x[1]);
        t[1] = x[2];
        t[2] = rmm_neg(m);
        n = 3;
        break;
    case RMM_DIV:       /* x0 == x1 * m */
        t[0] = x[0];
        t[1] = rmm_neg(rmm_mul(x[1], m));
        n = 2;
        break;
    default:
        t[0] = x[0];
        t[1] = rmm_neg(m);
        n = 2;
        break;
    }
    return rmm_sum_is_zero(t, n);
}

static double rmm_d(double r, int kind, const RmmTerm *x)
{
    uint64_t b = bits_d(r);

    if ((b & 0x7ff0000000000000ull) == 0x7ff0000000000000ull) {
        return r;
    }
    if (rmm_is_tie(rmm_term_d(b), rmm_term_d(b + 1), kind, x)) {
        return as_d(b + 1);
    }
    return r;
}

static float rmm_s(float r, int kind, const RmmTerm *x)
{
    uint32_t b;

    memcpy(&b, &r, 4);
    if ((b & 0x7f800000u) == 0x7f800000u) {
        return r;
    }
    if (rmm_is_tie(rmm_term_s(b), rmm_term_s(b + 1), kind, x)) {
        b++;
        memcpy(&r, &b, 4);
    }
    return r;
}

static inline RmmTerm rmm_fs(float v)
{
    uint32_t b;

    memcpy(&b, &v, 4);
    return rmm_term_s(b);
}

static inline RmmTerm rmm_fd(double v)
{
    return rmm_term_d(bits_d(v));
}

static inline RmmTerm rmm_int(uint64_t v, bool is_signed)
{
    bool neg = is_signed && (int64_t)v < 0;
    RmmTerm t = { neg, neg ? -v : v, 0 };

    return t;
}

static double round_int(double v, uint32_t rm)
{
    switch (rm) {
    case 0: return nearbyint(v);     /* host mode is RNE */
    case 1: return trunc(v);
    case 2: return floor(v);
    case 3: return ceil(v);
    default: return round(v);        /* RMM: ties away from zero */
    }
}

/* fcvt to integer: saturating, NV on NaN/out of range, NX when inexact */
static uint64_t cvt_to_int(KilnPe *pe, double v, uint32_t rm, unsigned kind)
{
    double r;

    if (isnan(v)) {
        pe->fflags |= FFLAG_NV;
        switch (kind) {
        case 0: return (uint64_t)(int64_t)INT32_MAX;
        case 1: return ~0ull;                       /* sext(0xffffffff) */
        case 2: return (uint64_t)INT64_MAX;
        default: return ~0ull;
        }
    }
    r = round_int(v, rm);
    switch (kind) {
    case 0:     /* w */
        if (r < -2147483648.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)(int64_t)INT32_MIN;
        }
        if (r > 2147483647.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)(int64_t)INT32_MAX;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)(int64_t)(int32_t)r;
    case 1:     /* wu */
        if (r < 0.0) {
            pe->fflags |= FFLAG_NV;
            return 0;
        }
        if (r > 4294967295.0) {
            pe->fflags |= FFLAG_NV;
            return ~0ull;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)(int64_t)(int32_t)(uint32_t)r;
    case 2:     /* l */
        if (r < -9223372036854775808.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)INT64_MIN;
        }
        if (r >= 9223372036854775808.0) {
            pe->fflags |= FFLAG_NV;
            return (uint64_t)INT64_MAX;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)(int64_t)r;
    default:    /* lu */
        if (r < 0.0) {
            pe->fflags |= FFLAG_NV;
            return 0;
        }
        if (r >= 18446744073709551616.0) {
            pe->fflags |= FFLAG_NV;
            return ~0ull;
        }
        if (r != v) {
            pe->fflags |= FFLAG_NX;
        }
        return (uint64_t)r;
    }
}

static uint32_t fclass_bits(bool neg, bool inf, bool nan, bool snan,
                            bool zero, bool sub)
{
    if (nan) {
        return snan ? 1u << 8 : 1u << 9;
    }
    if (inf) {
        return neg ? 1u << 0 : 1u << 7;
    }
    if (zero) {
        return neg ? 1u << 3 : 1u << 4;
    }
    if (sub) {
        return neg ? 1u << 2 : 1u << 5;
    }
    return neg ? 1u << 1 : 1u << 6;
}

/*
 * Execute a legal, rounding OP-FP or FMA-family instruction whose rounding
 * mode is RMM (the host FPU is in RNE): fused multiply-add family, fadd,
 * fsub, fmul, fdiv, fsqrt, fcvt.s.d, fcvt.d.s, fcvt.{s,d}.{w,wu,l,lu}.
 */
__attribute__((cold, noinline))
static void exec_fp_rmm(KilnPe *pe, const KilnInsn *d)
{
    uint32_t w = d->raw, opc = w & 0x7f, f7 = w >> 25, rd = d->rd;
    uint64_t *f = pe->f;
    uint64_t a = f[d->rs1], b = f[d->rs2], c = f[d->rs3];
    bool dbl = f7 & 1;

    if (opc != 0x53) {
        bool neg_prod = opc == 0x4b || opc == 0x4f;
        bool neg_c = opc == 0x47 || opc == 0x4f;

        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), fc = unbox_s(c), r;
            RmmTerm t[3] = { rmm_fs(fa), rmm_fs(fb), rmm_fs(fc) };

            r = fmaf(neg_prod ? -fa : fa, fb, neg_c ? -fc : fc);
            t[0].neg ^= neg_prod;
            t[2].neg ^= neg_c;
            f[rd] = box_s_canon(rmm_s(r, RMM_FMA, t));
        } else {
            double da = as_d(a), db = as_d(b), dc = as_d(c), r;
            RmmTerm t[3] = { rmm_fd(da), rmm_fd(db), rmm_fd(dc) };

            r = fma(neg_prod ? -da : da, db, neg_c ? -dc : dc);
            t[0].neg ^= neg_prod;
            t[2].neg ^= neg_c;
            f[rd] = bits_d_canon(rmm_d(r, RMM_FMA, t));
        }
        return;
    }
    switch (f7 >> 2) {
    case 0x00: case 0x01: case 0x02: case 0x03: {  /* add sub mul div */
        static const int kind[4] = { RMM_ADD, RMM_ADD, RMM_MUL, RMM_DIV };
        uint32_t op = f7 >> 2;

        if (op == 3) {
            pe->cycles_extra += KILN_COST_FDIV_EXTRA;
        }
        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), r;
            RmmTerm t[2] = { rmm_fs(fa), rmm_fs(fb) };

            r = op == 0 ? fa + fb : op == 1 ? fa - fb : op == 2 ? fa * fb : fa / fb;
            t[1].neg ^= op == 1;
            f[rd] = box_s_canon(rmm_s(r, kind[op], t));
        } else {
            double da = as_d(a), db = as_d(b), r;
            RmmTerm t[2] = { rmm_fd(da), rmm_fd(db) };

            r = op == 0 ? da + db : op == 1 ? da - db : op == 2 ? da * db : da / db;
            t[1].neg ^= op == 1;
            f[rd] = bits_d_canon(rmm_d(r, kind[op], t));
        }
        break;
    }
    case 0x0b:  /* fsqrt: never a midpoint (see above), RNE is RMM */
        pe->cycles_extra += KILN_COST_FDIV_EXTRA;
        f[rd] = dbl ? bits_d_canon(sqrt(as_d(a))) : box_s_canon(sqrtf(unbox_s(a)));
        break;
    case 0x08:  /* fcvt.s.d (rounds) / fcvt.d.s (exact) */
        if (!dbl) {
            RmmTerm t = rmm_term_d(a);

            f[rd] = box_s_canon(rmm_s((float)as_d(a), RMM_CVT, &t));
        } else {
            f[rd] = bits_d_canon((double)unbox_s(a));
        }
        break;
    default: {      /* 0x1a: fcvt.{s,d}.{w,wu,l,lu} */
        uint64_t v = pe->x[d->rs1];
        RmmTerm t;

        switch (d->rs2) {
        case 0: t = rmm_int((uint64_t)(int64_t)(int32_t)v, true); break;
        case 1: t = rmm_int((uint32_t)v, false); break;
        case 2: t = rmm_int(v, true); break;
        default: t = rmm_int(v, false); break;
        }
        if (!dbl) {
            float r;
            switch (d->rs2) {
            case 0: r = (float)(int32_t)v; break;
            case 1: r = (float)(uint32_t)v; break;
            case 2: r = (float)(int64_t)v; break;
            default: r = (float)v; break;
            }
            f[rd] = box_s(rmm_s(r, RMM_CVT, &t));
        } else {
            double r;
            switch (d->rs2) {
            case 0: r = (double)(int32_t)v; break;
            case 1: r = (double)(uint32_t)v; break;
            case 2: r = (double)(int64_t)v; break;
            default: r = (double)v; break;
            }
            f[rd] = bits_d(rmm_d(r, RMM_CVT, &t));  /* w/wu: exact, no tie */
        }
        break;
    }
    }
}

/*
 * Execute an OP-FP or FMA-family instruction. Returns false for an illegal
 * encoding (including a reserved rounding mode).
 */
bool kiln_pe_exec_fp(KilnPe *pe, const KilnInsn *d)
{
    uint32_t w = d->raw, opc = w & 0x7f, f3 = (w >> 12) & 7, f7 = w >> 25;
    uint32_t rd = d->rd, rm = f3;
    uint64_t *f = pe->f, *x = pe->x;
    uint64_t a = f[d->rs1], b = f[d->rs2], c = f[d->rs3];
    int old_round = -1;
    bool dbl;

    /* rounding mode for the instructions that round */
#define USE_RM() do {                                               \
        if (rm == 7) {                                              \
            rm = pe->frm;                                           \
        }                                                           \
        if (rm > 4) {                                               \
            return false;                                           \
        }                                                           \
        if (rm != 0) {                                              \
            if (rm == 4) {                                          \
                exec_fp_rmm(pe, d);                                 \
                return true;                                        \
            }                                                       \
            old_round = fegetround();                               \
            fesetround(host_round(rm));                             \
        }                                                           \
    } while (0)
#define WX(v) do { if (rd) { x[rd] = (v); } } while (0)

    pe->cycles_extra += KILN_COST_FP_EXTRA;
    if (opc != 0x53) {
        /* fmadd/fmsub/fnmsub/fnmadd */
        uint32_t fmt = (w >> 25) & 3;
        bool neg_prod = opc == 0x4b || opc == 0x4f;
        bool neg_c = opc == 0x47 || opc == 0x4f;

        if (fmt > 1) {
            return false;
        }
        USE_RM();
        if (fmt == 0) {
            float fa = unbox_s(a), fb = unbox_s(b), fc = unbox_s(c);
            f[rd] = box_s_canon(fmaf(neg_prod ? -fa : fa, fb,
                                     neg_c ? -fc : fc));
        } else {
            double da = as_d(a), db = as_d(b), dc = as_d(c);
            f[rd] = bits_d_canon(fma(neg_prod ? -da : da, db,
                                     neg_c ? -dc : dc));
        }
        goto done;
    }
    if (f7 & 2) {
        return false;   /* fmt H and Q are not implemented */
    }
    dbl = f7 & 1;
    switch (f7 >> 2) {
    case 0x00: case 0x01: case 0x02: case 0x03: /* add sub mul div */
        USE_RM();
        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), r;
            switch (f7 >> 2) {
            case 0: r = fa + fb; break;
            case 1: r = fa - fb; break;
            case 2: r = fa * fb; break;
            default:
                r = fa / fb;
                pe->cycles_extra += KILN_COST_FDIV_EXTRA;
                break;
            }
            f[rd] = box_s_canon(r);
        } else {
            double da = as_d(a), db = as_d(b), r;
            switch (f7 >> 2) {
            case 0: r = da + db; break;
            case 1: r = da - db; break;
            case 2: r = da * db; break;
            default:
                r = da / db;
                pe->cycles_extra += KILN_COST_FDIV_EXTRA;
                break;
            }
            f[rd] = bits_d_canon(r);
        }
        break;
    case 0x0b:  /* fsqrt (RMM: see exec_fp_rmm) */
        if (d->rs2 != 0) {
            return false;
        }
        USE_RM();
        pe->cycles_extra += KILN_COST_FDIV_EXTRA;
        f[rd] = dbl ? bits_d_canon(sqrt(as_d(a))) : box_s_canon(sqrtf(unbox_s(a)));
        break;
    case 0x04: {    /* fsgnj */
        if (f3 > 2) {
            return false;
        }
        if (!dbl) {
            uint32_t ua = (a >> 32) == 0xffffffffu ? (uint32_t)a : CANON_S;
            uint32_t ub = (b >> 32) == 0xffffffffu ? (uint32_t)b : CANON_S;
            uint32_t s = f3 == 0 ? ub : f3 == 1 ? ~ub : (ua ^ ub);
            f[rd] = 0xffffffff00000000ull | (ua & 0x7fffffffu) | (s & 0x80000000u);
        } else {
            uint64_t s = f3 == 0 ? b : f3 == 1 ? ~b : (a ^ b);
            f[rd] = (a & ~(1ull << 63)) | (s & (1ull << 63));
        }
        break;
    }
    case 0x05: {    /* fmin fmax */
        bool max = f3 == 1;
        if (f3 > 1) {
            return false;
        }
        if (!dbl) {
            float fa = unbox_s(a), fb = unbox_s(b), r;
            if (is_snan_s(a) || is_snan_s(b)) {
                pe->fflags |= FFLAG_NV;
            }
            if (isnan(fa) && isnan(fb)) {
                f[rd] = 0xffffffff00000000ull | CANON_S;
                break;
            } else if (isnan(fa)) {
                r = fb;
            } else if (isnan(fb)) {
                r = fa;
            } else if (fa == fb) {
                /* -0 < +0 */
                r = (signbit(fa) != 0) == max ? fb : fa;
            } else {
                r = (fa < fb) != max ? fa : fb;
            }
            f[rd] = box_s(r);
        } else {
            double da = as_d(a), db = as_d(b), r;
            if (is_snan_d(a) || is_snan_d(b)) {
                pe->fflags |= FFLAG_NV;
            }
            if (isnan(da) && isnan(db)) {
                f[rd] = CANON_D;
                break;
            } else if (isnan(da)) {
                r = db;
            } else if (isnan(db)) {
                r = da;
            } else if (da == db) {
                r = (signbit(da) != 0) == max ? db : da;
            } else {
                r = (da < db) != max ? da : db;
            }
            f[rd] = bits_d(r);
        }
        break;
    }
    case 0x08:  /* fcvt.s.d / fcvt.d.s */
        if (f7 == 0x20 && d->rs2 == 1) {
            USE_RM();
            f[rd] = box_s_canon((float)as_d(a));
        } else if (f7 == 0x21 && d->rs2 == 0) {
            USE_RM();
            f[rd] = bits_d_canon((double)unbox_s(a));
        } else {
            return false;
        }
        break;
    case 0x14: {    /* feq flt fle */
        bool nan, snan, r;
        double da, db;
        if (!dbl) {
            da = unbox_s(a);
            db = unbox_s(b);
            snan = is_snan_s(a) || is_snan_s(b);
        } else {
            da = as_d(a);
            db = as_d(b);
            snan = is_snan_d(a) || is_snan_d(b);
        }
        nan = isnan(da) || isnan(db);
        if (f3 == 2) {
            if (snan) {
                pe->fflags |= FFLAG_NV;
            }
            r = !nan && da == db;
        } else if (f3 == 1 || f3 == 0) {
            if (nan) {
                pe->fflags |= FFLAG_NV;
                r = false;
            } else {
                r = f3 == 1 ? da < db : da <= db;
            }
        } else {
            return false;
        }
        WX(r);
        break;
    }
    case 0x18: {    /* fcvt.{w,wu,l,lu}.{s,d} */
        uint64_t r;
        if (d->rs2 > 3) {
            return false;
        }
        if (rm == 7) {
            rm = pe->frm;
        }
        if (rm > 4) {
            return false;
        }
        r = cvt_to_int(pe, dbl ? as_d(a) : (double)unbox_s(a), rm, d->rs2);
        WX(r);
        break;
    }
    case 0x1a: {    /* fcvt.{s,d}.{w,wu,l,lu} */
        uint64_t v = x[d->rs1];
        if (d->rs2 > 3) {
            return false;
        }
        USE_RM();
        if (!dbl) {
            float r;
            switch (d->rs2) {
            case 0: r = (float)(int32_t)v; break;
            case 1: r = (float)(uint32_t)v; break;
            case 2: r = (float)(int64_t)v; break;
            default: r = (float)v; break;
            }
            f[rd] = box_s(r);
        } else {
            double r;
            switch (d->rs2) {
            case 0: r = (double)(int32_t)v; break;
            case 1: r = (double)(uint32_t)v; break;
            case 2: r = (double)(int64_t)v; break;
            default: r = (double)v; break;
            }
            f[rd] = bits_d(r);
        }
        break;
    }
    case 0x1c:  /* fmv.x.{w,d} / fclass */
        if (d->rs2 != 0) {
            return false;
        }
        if (f3 == 0) {
            WX(dbl ? a : (uint64_t)(int64_t)(int32_t)(uint32_t)a);
        } else if (f3 == 1) {
            uint32_t cls;
            if (!dbl) {
                uint32_t u = (a >> 32) == 0xffffffffu ? (uint32_t)a : CANON_S;
                uint32_t e = (u >> 23) & 0xff, m = u & 0x7fffff;
                cls = fclass_bits(u >> 31, e == 0xff && !m, e == 0xff && m,
                                  e == 0xff && m && !(m & 0x400000),
                                  e == 0 && !m, e == 0 && m);
            } else {
                uint64_t e = (a >> 52) & 0x7ff, m = a & 0xfffffffffffffull;
                cls = fclass_bits(a >> 63, e == 0x7ff && !m, e == 0x7ff && m,
                                  e == 0x7ff && m && !(m & 0x8000000000000ull),
                                  e == 0 && !m, e == 0 && m);
            }
            WX(cls);
        } else {
            return false;
        }
        break;
    case 0x1e:  /* fmv.{w,d}.x */
        if (d->rs2 != 0 || f3 != 0) {
            return false;
        }
        f[rd] = dbl ? x[d->rs1] : (0xffffffff00000000ull | (uint32_t)x[d->rs1]);
        break;
    default:
        return false;
    }
done:
    if (old_round >= 0) {
        fesetround(old_round);
    }
    return true;
#undef USE_RM
#undef WX
}
