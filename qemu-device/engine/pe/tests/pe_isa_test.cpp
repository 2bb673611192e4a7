// SPDX-License-Identifier: GPL-2.0-or-later
// Base ISA (RV64IMFD + Zicsr) and fault-path tests with hand-encoded programs.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "pe_harness.hpp"

using namespace kt;
using namespace kt::rv;

namespace {

struct OpResult {
    uint64_t x;
    uint64_t f;
    uint32_t flags;
    KilnLaunchResult r;
};

// Runs one instruction with t0/t1 = a/b, f1/f2/f4 = a/b/c, frm = frm.
// The instruction writes t2 (int) or f3 (fp).
OpResult run_op(uint32_t insn, uint64_t a, uint64_t b, uint64_t c = 0, uint32_t frm = 0)
{
    Machine m;
    std::vector<uint32_t> code = {
        ld(t0, a0, 0), ld(t1, a0, 8), fld(1, a0, 0), fld(2, a0, 8), fld(4, a0, 32),
        ld(t3, a0, 40), csrrw(zero, KILN_CSR_FRM, t3), csrrw(zero, KILN_CSR_FFLAGS, zero),
        insn,
        sd(t2, a0, 16), fsd(3, a0, 48), csrrs(t3, KILN_CSR_FFLAGS, zero), sd(t3, a0, 24),
        ret(),
    };
    m.load_code(code);
    uint64_t *d = m.at<uint64_t>(kDataVa);
    d[0] = a;
    d[1] = b;
    d[4] = c;
    d[5] = frm;
    OpResult o;
    o.r = m.launch(kCodeVa, kDataVa);
    o.x = d[2];
    o.f = d[6];
    o.flags = (uint32_t)d[3];
    return o;
}

uint64_t fs(float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    return 0xffffffff00000000ull | u;
}
uint64_t fd(double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    return u;
}
float sf(uint64_t v)
{
    uint32_t u = (uint32_t)v;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
double df(uint64_t v)
{
    double d;
    memcpy(&d, &v, 8);
    return d;
}

constexpr uint32_t NV = 16, DZ = 8, OF = 4, UF = 2, NX = 1;
constexpr uint64_t CANON_S = 0xffffffff7fc00000ull;
constexpr uint64_t CANON_D = 0x7ff8000000000000ull;

}  // namespace

TEST(PeIsa, AddAndExit)
{
    auto o = run_op(op(0, 0, t2, t0, t1), 40, 2);
    EXPECT_EQ(o.r.status, KILN_STATUS_OK);
    EXPECT_EQ(o.x, 42u);
    EXPECT_GT(o.r.instructions, 10u);
    EXPECT_GT(o.r.cycles, o.r.instructions);
}

TEST(PeIsa, IntegerOps)
{
    EXPECT_EQ(run_op(op(0x20, 0, t2, t0, t1), 5, 7).x, (uint64_t)-2);          // sub
    EXPECT_EQ(run_op(op(0, 1, t2, t0, t1), 1, 65).x, 2u);                     // sll uses 6 bits
    EXPECT_EQ(run_op(op(0, 2, t2, t0, t1), (uint64_t)-1, 0).x, 1u);           // slt
    EXPECT_EQ(run_op(op(0, 3, t2, t0, t1), (uint64_t)-1, 0).x, 0u);           // sltu
    EXPECT_EQ(run_op(op(0x20, 5, t2, t0, t1), 0x8000000000000000ull, 63).x, ~0ull);  // sra
    EXPECT_EQ(run_op(op(0, 5, t2, t0, t1), 0x8000000000000000ull, 63).x, 1u);       // srl
    EXPECT_EQ(run_op(opw(0, 0, t2, t0, t1), 0x7fffffff, 1).x, 0xffffffff80000000ull); // addw
    EXPECT_EQ(run_op(opw(0x20, 5, t2, t0, t1), 0x80000000, 4).x, 0xfffffffff8000000ull); // sraw
    EXPECT_EQ(run_op(opw(0, 5, t2, t0, t1), 0x80000000, 4).x, 0x08000000u);  // srlw
    EXPECT_EQ(run_op(opw(0, 1, t2, t0, t1), 1, 31).x, 0xffffffff80000000ull); // sllw
    EXPECT_EQ(run_op(I(-1, t0, 3, t2, 0x13), 5, 0).x, 1u);                   // sltiu x < -1
    EXPECT_EQ(run_op(I(0x7ff, t0, 4, t2, 0x13), 0xf0f, 0).x, 0xf0fu ^ 0x7ffu); // xori
    EXPECT_EQ(run_op(I(0x403, t0, 5, t2, 0x13) | (0x10u << 26), 0x8000000000000000ull, 0).x,
              0xf000000000000000ull);  // srai 3
    EXPECT_EQ(run_op(I(-1, t0, 0, t2, 0x1b), 0x80000000, 0).x, 0x7fffffffu); // addiw
    EXPECT_EQ(run_op(lui(t2, 0x80000), 0, 0).x, 0xffffffff80000000ull);
}

TEST(PeIsa, MulDivCorners)
{
    const uint64_t MIN = 0x8000000000000000ull;
    EXPECT_EQ(run_op(op(1, 0, t2, t0, t1), 3, (uint64_t)-4).x, (uint64_t)-12);
    EXPECT_EQ(run_op(op(1, 1, t2, t0, t1), (uint64_t)-1, (uint64_t)-1).x, 0u);        // mulh
    EXPECT_EQ(run_op(op(1, 3, t2, t0, t1), ~0ull, ~0ull).x, ~0ull - 1);              // mulhu
    EXPECT_EQ(run_op(op(1, 2, t2, t0, t1), (uint64_t)-1, ~0ull).x, ~0ull);          // mulhsu
    EXPECT_EQ(run_op(op(1, 4, t2, t0, t1), 7, 0).x, ~0ull);                          // div /0
    EXPECT_EQ(run_op(op(1, 5, t2, t0, t1), 7, 0).x, ~0ull);                          // divu /0
    EXPECT_EQ(run_op(op(1, 6, t2, t0, t1), 7, 0).x, 7u);                             // rem /0
    EXPECT_EQ(run_op(op(1, 7, t2, t0, t1), 7, 0).x, 7u);                             // remu /0
    EXPECT_EQ(run_op(op(1, 4, t2, t0, t1), MIN, (uint64_t)-1).x, MIN);               // overflow
    EXPECT_EQ(run_op(op(1, 6, t2, t0, t1), MIN, (uint64_t)-1).x, 0u);
    EXPECT_EQ(run_op(op(1, 4, t2, t0, t1), (uint64_t)-7, 2).x, (uint64_t)-3);        // trunc
    EXPECT_EQ(run_op(op(1, 6, t2, t0, t1), (uint64_t)-7, 2).x, (uint64_t)-1);
    EXPECT_EQ(run_op(opw(1, 4, t2, t0, t1), 0x80000000, ~0ull).x, 0xffffffff80000000ull); // divw ovf
    EXPECT_EQ(run_op(opw(1, 6, t2, t0, t1), 0x80000000, ~0ull).x, 0u);
    EXPECT_EQ(run_op(opw(1, 5, t2, t0, t1), 5, 0).x, ~0ull);                        // divuw /0
    EXPECT_EQ(run_op(opw(1, 7, t2, t0, t1), 0x80000005, 0).x, 0xffffffff80000005ull); // remuw /0
    EXPECT_EQ(run_op(opw(1, 0, t2, t0, t1), 0x10000, 0x10000).x, 0u);               // mulw
}

TEST(PeIsa, FpArithmeticAndFlags)
{
    auto o = run_op(fop(0x00, 7, 3, 1, 2), fs(1.0f), fs(2.0f));  // fadd.s dyn
    EXPECT_EQ(sf(o.f), 3.0f);
    EXPECT_EQ(o.f >> 32, 0xffffffffu);
    EXPECT_EQ(o.flags, 0u);
    o = run_op(fop(0x0c, 7, 3, 1, 2), fs(1.0f), fs(0.0f));       // fdiv.s by zero
    EXPECT_TRUE(std::isinf(sf(o.f)));
    EXPECT_EQ(o.flags, DZ);
    o = run_op(fop(0x2c, 7, 3, 1, 0), fs(-1.0f), 0);            // fsqrt.s(-1)
    EXPECT_EQ(o.f, CANON_S);
    EXPECT_EQ(o.flags, NV);
    o = run_op(fop(0x00, 7, 3, 1, 2), 0x3f800000ull, fs(1.0f));  // improperly boxed
    EXPECT_EQ(o.f, CANON_S);
    o = run_op(fop(0x08, 7, 3, 1, 2), fs(1e30f), fs(1e30f));    // overflow
    EXPECT_EQ(o.flags, OF | NX);
    o = run_op(fop(0x08, 7, 3, 1, 2), fs(1e-30f), fs(1e-30f));  // underflow
    EXPECT_EQ(o.flags, UF | NX);
    o = run_op(fop(0x01, 7, 3, 1, 2), fd(0.1), fd(0.2));        // fadd.d
    EXPECT_EQ(df(o.f), 0.1 + 0.2);
    EXPECT_EQ(o.flags, NX);
    o = run_op(fop(0x01, 7, 3, 1, 2), fd(INFINITY), fd(-INFINITY));
    EXPECT_EQ(o.f, CANON_D);
    EXPECT_EQ(o.flags, NV);
    // denormal arithmetic stays exact
    o = run_op(fop(0x00, 7, 3, 1, 2), fs(1e-45f), fs(1e-45f));
    EXPECT_EQ(sf(o.f), 0x1p-148f);
    EXPECT_EQ(o.flags, 0u);
}

TEST(PeIsa, FpRoundingModes)
{
    const float one_plus = nextafterf(1.0f, 2.0f);
    // 1 + 2^-30 in each static rounding mode
    EXPECT_EQ(sf(run_op(fop(0x00, 0, 3, 1, 2), fs(1.0f), fs(0x1p-30f)).f), 1.0f);
    EXPECT_EQ(sf(run_op(fop(0x00, 3, 3, 1, 2), fs(1.0f), fs(0x1p-30f)).f), one_plus);
    EXPECT_EQ(sf(run_op(fop(0x00, 2, 3, 1, 2), fs(-1.0f), fs(-0x1p-30f)).f), -one_plus);
    EXPECT_EQ(sf(run_op(fop(0x00, 1, 3, 1, 2), fs(-1.0f), fs(-0x1p-30f)).f), -1.0f);
    // dynamic: frm = RUP
    EXPECT_EQ(sf(run_op(fop(0x00, 7, 3, 1, 2), fs(1.0f), fs(0x1p-30f), 0, 3).f), one_plus);
    // invalid static and dynamic modes are illegal
    EXPECT_EQ(run_op(fop(0x00, 5, 3, 1, 2), 0, 0).r.status, KILN_STATUS_ILLEGAL_INSTRUCTION);
    EXPECT_EQ(run_op(fop(0x00, 7, 3, 1, 2), 0, 0, 0, 5).r.status,
              KILN_STATUS_ILLEGAL_INSTRUCTION);
    // fcvt.w.s of 2.5 / -2.5 in every mode
    const int64_t exp_pos[5] = {2, 2, 2, 3, 3}, exp_neg[5] = {-2, -2, -3, -2, -3};
    for (uint32_t rm = 0; rm < 5; rm++) {
        auto o = run_op(fop(0x60, rm, t2, 1, 0), fs(2.5f), 0);
        EXPECT_EQ((int64_t)o.x, exp_pos[rm]) << rm;
        EXPECT_EQ(o.flags, NX);
        EXPECT_EQ((int64_t)run_op(fop(0x60, rm, t2, 1, 0), fs(-2.5f), 0).x, exp_neg[rm]) << rm;
    }
}

TEST(PeIsa, FpConvertSaturation)
{
    auto o = run_op(fop(0x60, 1, t2, 1, 0), fs(NAN), 0);               // fcvt.w.s NaN
    EXPECT_EQ(o.x, 0x7fffffffu);
    EXPECT_EQ(o.flags, NV);
    EXPECT_EQ(run_op(fop(0x60, 1, t2, 1, 0), fs(-3e9f), 0).x, 0xffffffff80000000ull);
    EXPECT_EQ(run_op(fop(0x60, 1, t2, 1, 0), fs(3e9f), 0).x, 0x7fffffffu);
    o = run_op(fop(0x60, 1, t2, 1, 1), fs(-0.5f), 0);                  // wu, -0.5 RTZ
    EXPECT_EQ(o.x, 0u);
    EXPECT_EQ(o.flags, NX);
    o = run_op(fop(0x60, 1, t2, 1, 1), fs(-1.0f), 0);                  // wu, -1
    EXPECT_EQ(o.x, 0u);
    EXPECT_EQ(o.flags, NV);
    EXPECT_EQ(run_op(fop(0x60, 1, t2, 1, 1), fs(5e9f), 0).x, ~0ull);  // wu saturates, sext
    EXPECT_EQ(run_op(fop(0x61, 1, t2, 1, 2), fd(9.3e18), 0).x, 0x7fffffffffffffffull);  // l.d
    EXPECT_EQ(run_op(fop(0x61, 1, t2, 1, 2), fd(-INFINITY), 0).x, 0x8000000000000000ull);
    EXPECT_EQ(run_op(fop(0x61, 1, t2, 1, 3), fd(1.8e19), 0).x, 18000000000000000000ull); // lu.d
    EXPECT_EQ(run_op(fop(0x61, 1, t2, 1, 3), fd(NAN), 0).x, ~0ull);
    // int -> float
    EXPECT_EQ(sf(run_op(fop(0x68, 7, 3, t0, 0), (uint64_t)-7, 0).f), -7.0f);
    o = run_op(fop(0x68, 7, 3, t0, 3), ~0ull, 0);                      // fcvt.s.lu
    EXPECT_EQ(sf(o.f), 18446744073709551616.0f);
    EXPECT_EQ(o.flags, NX);
    EXPECT_EQ(sf(run_op(fop(0x68, 1, 3, t0, 2), (1ull << 24) + 1, 0).f), 16777216.0f);
    EXPECT_EQ(sf(run_op(fop(0x68, 3, 3, t0, 2), (1ull << 24) + 1, 0).f), 16777218.0f);
    EXPECT_EQ(df(run_op(fop(0x69, 7, 3, t0, 1), 0xffffffffu, 0).f), 4294967295.0);
    // fcvt.s.d / fcvt.d.s
    o = run_op(fop(0x20, 7, 3, 1, 1), fd(1e300), 0);
    EXPECT_TRUE(std::isinf(sf(o.f)));
    EXPECT_EQ(o.flags, OF | NX);
    EXPECT_EQ(run_op(fop(0x20, 7, 3, 1, 1), fd(NAN), 0).f, CANON_S);
    EXPECT_EQ(run_op(fop(0x21, 7, 3, 1, 0), fs(NAN), 0).f, CANON_D);
    EXPECT_EQ(df(run_op(fop(0x21, 7, 3, 1, 0), fs(1.5f), 0).f), 1.5);
}

TEST(PeIsa, FpMinMaxCompareClass)
{
    const uint64_t snan_s = 0xffffffff7f800001ull;
    auto o = run_op(fop(0x14, 0, 3, 1, 2), snan_s, fs(1.0f));          // fmin sNaN,1
    EXPECT_EQ(sf(o.f), 1.0f);
    EXPECT_EQ(o.flags, NV);
    o = run_op(fop(0x14, 1, 3, 1, 2), fs(NAN), fs(NAN));               // fmax qNaN,qNaN
    EXPECT_EQ(o.f, CANON_S);
    EXPECT_EQ(o.flags, 0u);
    EXPECT_EQ(run_op(fop(0x14, 0, 3, 1, 2), fs(0.0f), fs(-0.0f)).f, fs(-0.0f));
    EXPECT_EQ(run_op(fop(0x14, 1, 3, 1, 2), fs(-0.0f), fs(0.0f)).f, fs(0.0f));
    EXPECT_EQ(run_op(fop(0x15, 1, 3, 1, 2), fd(-0.0), fd(0.0)).f, fd(0.0));
    o = run_op(fop(0x50, 2, t2, 1, 2), fs(NAN), fs(1.0f));             // feq qNaN: quiet
    EXPECT_EQ(o.x, 0u);
    EXPECT_EQ(o.flags, 0u);
    o = run_op(fop(0x50, 1, t2, 1, 2), fs(NAN), fs(1.0f));             // flt qNaN: NV
    EXPECT_EQ(o.x, 0u);
    EXPECT_EQ(o.flags, NV);
    EXPECT_EQ(run_op(fop(0x50, 0, t2, 1, 2), fs(1.0f), fs(1.0f)).x, 1u); // fle
    EXPECT_EQ(run_op(fop(0x51, 1, t2, 1, 2), fd(-1.0), fd(1.0)).x, 1u);  // flt.d
    EXPECT_EQ(run_op(fop(0x70, 1, t2, 1, 0), fs(-INFINITY), 0).x, 1u << 0);
    EXPECT_EQ(run_op(fop(0x70, 1, t2, 1, 0), fs(-0.0f), 0).x, 1u << 3);
    EXPECT_EQ(run_op(fop(0x70, 1, t2, 1, 0), fs(1e-40f), 0).x, 1u << 5);
    EXPECT_EQ(run_op(fop(0x70, 1, t2, 1, 0), snan_s, 0).x, 1u << 8);
    EXPECT_EQ(run_op(fop(0x70, 1, t2, 1, 0), 0x3f800000ull, 0).x, 1u << 9);  // unboxed
    EXPECT_EQ(run_op(fop(0x71, 1, t2, 1, 0), fd(1.0), 0).x, 1u << 6);
    // sign injection, moves
    EXPECT_EQ(run_op(fop(0x10, 1, 3, 1, 2), fs(2.0f), fs(3.0f)).f, fs(-2.0f));  // fsgnjn
    EXPECT_EQ(run_op(fop(0x11, 2, 3, 1, 2), fd(-2.0), fd(-3.0)).f, fd(2.0));    // fsgnjx.d
    EXPECT_EQ(run_op(fop(0x70, 0, t2, 1, 0), fs(-1.0f), 0).x, 0xffffffffbf800000ull); // fmv.x.w
    EXPECT_EQ(run_op(fop(0x78, 0, 3, t0, 0), 0x12345678, 0).f, 0xffffffff12345678ull);
}

TEST(PeIsa, FusedMultiplyAdd)
{
    // fmadd.s: exact a*b+c without intermediate rounding
    float a = 1.0f + 0x1p-12f, b = 1.0f - 0x1p-12f;
    auto o = run_op(R(0, 2, 1, 7, 3, 0x43) | (4u << 27), fs(a), fs(b), fs(-1.0f));
    EXPECT_EQ(sf(o.f), -0x1p-24f);
    o = run_op(R(1, 2, 1, 7, 3, 0x4f) | (4u << 27), fd(2.0), fd(3.0), fd(1.0));  // fnmadd.d
    EXPECT_EQ(df(o.f), -7.0);
    o = run_op(R(1, 2, 1, 7, 3, 0x47) | (4u << 27), fd(2.0), fd(3.0), fd(1.0));  // fmsub.d
    EXPECT_EQ(df(o.f), 5.0);
    o = run_op(R(0, 2, 1, 7, 3, 0x4b) | (4u << 27), fs(2.0f), fs(3.0f), fs(1.0f));  // fnmsub.s
    EXPECT_EQ(sf(o.f), -5.0f);
    o = run_op(R(0, 2, 1, 7, 3, 0x43) | (4u << 27), fs(INFINITY), fs(0.0f), fs(1.0f));
    EXPECT_EQ(o.f, CANON_S);
    EXPECT_EQ(o.flags, NV);
}

TEST(PeIsa, CsrsAndIdsAcrossWaves)
{
    for (uint32_t workers : {1u, 3u}) {
        Machine m(2, 2, workers);
        std::vector<uint32_t> code = {
            csrrs(t0, KILN_CSR_WG_ID, zero), I(5, t0, 1, t1, 0x13), op(0, 0, t1, t1, a0),
            sd(t0, t1, 0), csrrs(t2, KILN_CSR_PE_ID, zero), sd(t2, t1, 8),
            csrrs(t2, KILN_CSR_NUM_WG, zero), sd(t2, t1, 16),
            csrrs(t2, KILN_CSR_WG_Y, zero), sd(t2, t1, 24),
            ret(),
        };
        m.load_code(code);
        auto r = m.launch(kCodeVa, kDataVa, 3, 3, 1);
        ASSERT_EQ(r.status, KILN_STATUS_OK);
        uint64_t *d = m.at<uint64_t>(kDataVa);
        for (uint64_t wg = 0; wg < 9; wg++) {
            EXPECT_EQ(d[wg * 4 + 0], wg);
            EXPECT_EQ(d[wg * 4 + 1], wg % 4);   // PE slot in the wave
            EXPECT_EQ(d[wg * 4 + 2], 9u);
            EXPECT_EQ(d[wg * 4 + 3], wg / 3);   // WG_Y
        }
    }
}

TEST(PeIsa, CsrReadOnlyWriteIsIllegal)
{
    auto o = run_op(csrrw(t2, KILN_CSR_CYCLE, t0), 1, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_ILLEGAL_INSTRUCTION);
    EXPECT_EQ(o.r.pc, kCodeVa + 8 * 4);
    o = run_op(csrrs(t2, 0x7c0, zero), 1, 0);   // unknown CSR
    EXPECT_EQ(o.r.status, KILN_STATUS_ILLEGAL_INSTRUCTION);
    o = run_op(csrrs(t2, KILN_CSR_CYCLE, zero), 0, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_OK);
    EXPECT_GT(o.x, 8u);
}

// ---- fault paths ----

TEST(PeFault, IllegalInstruction)
{
    auto o = run_op(0xffffffffu, 0, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_ILLEGAL_INSTRUCTION);
    EXPECT_EQ(o.r.pe, 0u);
    EXPECT_EQ(o.r.pc, kCodeVa + 32);
    EXPECT_EQ(o.r.addr, 0xffffffffu);
    EXPECT_EQ(run_op(R(0, 0, 0, 0, 0, 0x2f), 0, 0).r.status,
              KILN_STATUS_ILLEGAL_INSTRUCTION);  // A extension not implemented
}

TEST(PeFault, EbreakEcallAndTrap)
{
    EXPECT_EQ(run_op(0x00100073u, 0, 0).r.status, KILN_STATUS_KERNEL_TRAP);
    EXPECT_EQ(run_op(0x00000073u, 0, 0).r.status, KILN_STATUS_KERNEL_TRAP);
    auto o = run_op(custom(KILN_UNIT_SYS, KILN_SYS_TRAP, 0, t0, 0), 1234, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_KERNEL_TRAP);
    EXPECT_EQ(o.r.addr, 1234u);
    EXPECT_EQ(o.r.pc, kCodeVa + 32);
}

TEST(PeFault, MisalignedLoadStoreAndFetch)
{
    auto o = run_op(ld(t2, t0, 0), kDataVa + 4, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_MISALIGNED);
    EXPECT_EQ(o.r.addr, kDataVa + 4);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_READ);
    o = run_op(sw(t1, t0, 2), kDataVa, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_MISALIGNED);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_WRITE);
    o = run_op(I(0, t0, 0, zero, 0x67), kCodeVa + 2, 0);  // jalr to pc+2
    EXPECT_EQ(o.r.status, KILN_STATUS_MISALIGNED);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_EXEC);
}

TEST(PeFault, MmuFaults)
{
    auto o = run_op(ld(t2, t0, 0), 0x7000000, 0);            // unmapped
    EXPECT_EQ(o.r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(o.r.addr, 0x7000000u);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_READ);
    EXPECT_EQ(o.r.reason, (uint32_t)KILN_MMU_FAULT_NOT_PRESENT);
    o = run_op(sd(t1, t0, 0), kRoVa, 0);                     // read-only
    EXPECT_EQ(o.r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_WRITE);
    EXPECT_EQ(o.r.reason, (uint32_t)KILN_MMU_FAULT_PERMISSION);
    o = run_op(I(0, t0, 0, zero, 0x67), kDataVa, 0);         // jump to non-exec
    EXPECT_EQ(o.r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_EXEC);
    EXPECT_EQ(o.r.pc, kDataVa);
}

TEST(PeFault, LocalMemoryBounds)
{
    auto o = run_op(ld(t2, t0, 0), KILN_LOCAL_MEM_BASE + KILN_LOCAL_MEM_DEFAULT_SIZE, 0);
    EXPECT_EQ(o.r.status, KILN_STATUS_LOCAL_MEM_BOUNDS);
    EXPECT_EQ(o.r.addr, KILN_LOCAL_MEM_BASE + KILN_LOCAL_MEM_DEFAULT_SIZE);
    o = run_op(sd(t1, t0, -8), KILN_LOCAL_MEM_BASE + KILN_LOCAL_MEM_DEFAULT_SIZE, 5);
    EXPECT_EQ(o.r.status, KILN_STATUS_OK);
}

TEST(PeFault, Watchdog)
{
    Machine m;
    m.load_code({J(0, zero)});  // spin
    auto r = m.launch(kCodeVa, kDataVa, 1, 1, 1, 0, 0, 1);
    EXPECT_EQ(r.status, KILN_STATUS_WATCHDOG);
    EXPECT_EQ(r.pc, kCodeVa);
    EXPECT_GE(r.cycles, 1000000u);
    EXPECT_GT(m.progress, 0u);
}

TEST(PeFault, Cancel)
{
    Machine m;
    m.load_code({J(0, zero)});
    m.cancel = 1;
    auto r = m.launch(kCodeVa, kDataVa);
    EXPECT_EQ(r.status, KILN_STATUS_ABORTED);
}

TEST(PeFault, BadLaunch)
{
    Machine m;
    m.load_code({ret()});
    EXPECT_EQ(m.launch(kCodeVa, kDataVa, 0).status, KILN_STATUS_BAD_LAUNCH);
    EXPECT_EQ(m.launch(kCodeVa, kDataVa, 70000).status, KILN_STATUS_BAD_LAUNCH);
    EXPECT_EQ(m.launch(kCodeVa, kDataVa, 1, 1, 1, 0, 1 << 20).status, KILN_STATUS_BAD_LAUNCH);
    EXPECT_EQ(m.launch(kCodeVa, kDataVa, 1, 1, 1, 0, 1000).status, KILN_STATUS_BAD_LAUNCH);
    EXPECT_EQ(m.launch(kCodeVa + 2, kDataVa).status, KILN_STATUS_BAD_LAUNCH);
    EXPECT_EQ(m.launch(kCodeVa, kDataVa, 5, 1, 1, KILN_LAUNCH_FLAG_COOPERATIVE).status,
              KILN_STATUS_BAD_LAUNCH);
    EXPECT_EQ(m.launch(kCodeVa, 0x7000000, 1, 1, 1, 0, 0, 0, 0, 0, 64).status,
              KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(m.launch(kCodeVa, kDataVa, 4, 1, 1, KILN_LAUNCH_FLAG_COOPERATIVE).status,
              KILN_STATUS_OK);
}

TEST(PeFault, LowestWorkgroupFaultReportedForAnyWorkerCount)
{
    // workgroups >= 5 hit an illegal instruction; every worker count reports wg 5
    for (uint32_t workers : {1u, 2u, 4u}) {
        Machine m(2, 2, workers);
        m.load_code({csrrs(t0, KILN_CSR_WG_ID, zero), addi(t1, zero, 5),
                     B(8, t1, t0, 4) /* blt t0,t1,+8 */, 0xffffffffu, ret()});
        auto r = m.launch(kCodeVa, kDataVa, 9);
        EXPECT_EQ(r.status, KILN_STATUS_ILLEGAL_INSTRUCTION);
        EXPECT_EQ(r.pe, 1u);   // wg 5 runs on PE 1 of the second wave
        EXPECT_EQ(r.pc, kCodeVa + 12);
    }
}

TEST(PeMem, HostAndSramAccess)
{
    Machine m;
    m.load_code({ld(t0, a0, 0), ld(t1, t0, 0), addi(t1, t1, 1), sd(t1, t0, 8),
                 ld(t0, a0, 8), sd(t1, t0, 0), ld(t2, t0, 0), sd(t2, a0, 16), ret()});
    uint64_t *d = m.at<uint64_t>(kDataVa);
    d[0] = kHostVa + 64;
    d[1] = kSramVa + 128;
    uint64_t v = 41;
    memcpy(m.host.data() + 64, &v, 8);
    auto r = m.launch(kCodeVa, kDataVa);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    memcpy(&v, m.host.data() + 72, 8);
    EXPECT_EQ(v, 42u);
    memcpy(&v, m.sram.data() + 128, 8);
    EXPECT_EQ(v, 42u);
    EXPECT_EQ(d[2], 42u);
}

TEST(PeMem, CrossPageCodeAndLoop)
{
    Machine m;
    // t0 = 1000; loop: t1 += t0; t0 -= 1; bnez t0 loop; stored; placed across a page end
    std::vector<uint32_t> code(1024 + 8, addi(zero, zero, 0));
    size_t s = 1020;
    code[s + 0] = addi(t0, zero, 1000);
    code[s + 1] = op(0, 0, t1, t1, t0);
    code[s + 2] = addi(t0, t0, -1);
    code[s + 3] = B(-8, zero, t0, 1);
    code[s + 4] = sd(t1, a0, 0);
    code[s + 5] = ret();
    m.load_code(code);
    auto r = m.launch(kCodeVa + s * 4, kDataVa);
    ASSERT_EQ(r.status, KILN_STATUS_OK);
    EXPECT_EQ(*m.at<uint64_t>(kDataVa), 500500u);
    EXPECT_EQ(r.instructions, 1u + 3000u + 2u);
}
