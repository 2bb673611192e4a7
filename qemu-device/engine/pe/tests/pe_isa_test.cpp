// SPDX-License-Identifier: GPL-2.0-or-later
// Base ISA (RV64IMFD + Zicsr) and fault-path tests with hand-encoded programs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>

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

// RV64A: t0 = address, t1 = operand; the code runs @insns then stores t2 and t3.
struct AmoResult {
    uint64_t t2, t3, mem;
    KilnLaunchResult r;
};

AmoResult run_amo(std::vector<uint32_t> insns, uint64_t mem, uint64_t operand,
                  uint64_t addr = kDataVa + 64)
{
    Machine m;
    std::vector<uint32_t> code = {ld(t0, a0, 0), ld(t1, a0, 8), addi(t2, zero, -7),
                                  addi(t3, zero, -7)};
    code.insert(code.end(), insns.begin(), insns.end());
    code.insert(code.end(), {sd(t2, a0, 16), sd(t3, a0, 24), ret()});
    m.load_code(code);
    uint64_t *d = m.at<uint64_t>(kDataVa);
    d[0] = addr;
    d[1] = operand;
    d[8] = mem;
    AmoResult o;
    o.r = m.launch(kCodeVa, kDataVa);
    o.t2 = d[2];
    o.t3 = d[3];
    o.mem = d[8];
    return o;
}

TEST(PeIsa, AtomicMemoryOperations)
{
    const uint64_t mem = 0xaaaaaaaa80000001ull;
    struct {
        uint32_t f5, f3;
        uint64_t operand, want_rd, want_mem;
    } cases[] = {
        {0x00, 2, 0xffffffffu, 0xffffffff80000001ull, 0xaaaaaaaa80000000ull},  // amoadd.w
        {0x00, 3, 1, mem, mem + 1},                                             // amoadd.d
        {0x01, 2, 5, 0xffffffff80000001ull, 0xaaaaaaaa00000005ull},             // amoswap.w
        {0x01, 3, 5, mem, 5},                                                   // amoswap.d
        {0x04, 2, 3, 0xffffffff80000001ull, 0xaaaaaaaa80000002ull},             // amoxor.w
        {0x0c, 3, 0xff, mem, 1},                                                // amoand.d
        {0x08, 2, 6, 0xffffffff80000001ull, 0xaaaaaaaa80000007ull},             // amoor.w
        {0x10, 2, 5, 0xffffffff80000001ull, 0xaaaaaaaa80000001ull},             // amomin.w: signed
        {0x18, 2, 5, 0xffffffff80000001ull, 0xaaaaaaaa00000005ull},             // amominu.w
        {0x14, 3, 5, mem, 5},                                                   // amomax.d: signed
        {0x1c, 3, 5, mem, mem},                                                 // amomaxu.d
        {0x14, 2, (uint64_t)-1, 0xffffffff80000001ull, 0xaaaaaaaaffffffffull},  // amomax.w
    };
    for (auto &c : cases) {
        for (uint32_t aqrl : {0u, 3u}) {
            auto o = run_amo({amo(c.f5, c.f3, t2, t0, t1, aqrl)}, mem, c.operand);
            ASSERT_EQ(o.r.status, KILN_STATUS_OK) << c.f5;
            EXPECT_EQ(o.t2, c.want_rd) << std::hex << "funct5 " << c.f5 << " f3 " << c.f3;
            EXPECT_EQ(o.mem, c.want_mem) << std::hex << "funct5 " << c.f5 << " f3 " << c.f3;
        }
    }
    // rd = x0 still performs the operation
    EXPECT_EQ(run_amo({amo(0x00, 3, zero, t0, t1)}, 40, 2).mem, 42u);
}

TEST(PeIsa, LoadReservedStoreConditional)
{
    // lr.w sign-extends, sc.w succeeds (0) and writes the low word only
    auto o = run_amo({amo(2, 2, t2, t0, zero), amo(3, 2, t3, t0, t1)}, 0x1111111180000000ull, 9);
    ASSERT_EQ(o.r.status, KILN_STATUS_OK);
    EXPECT_EQ(o.t2, 0xffffffff80000000ull);
    EXPECT_EQ(o.t3, 0u);
    EXPECT_EQ(o.mem, 0x1111111100000009ull);
    // sc without a reservation fails (1) and does not write
    o = run_amo({amo(3, 3, t3, t0, t1)}, 77, 9);
    EXPECT_EQ(o.t3, 1u);
    EXPECT_EQ(o.mem, 77u);
    // a reservation is for one address and size and is used up by any sc
    o = run_amo({amo(2, 2, t2, t0, zero), amo(3, 3, t3, t0, t1)}, 77, 9);
    EXPECT_EQ(o.t3, 1u);
    EXPECT_EQ(o.mem, 77u);
    o = run_amo({amo(2, 3, t2, t0, zero), amo(3, 3, t3, t0, t1), amo(3, 3, t2, t0, t1)}, 77, 9);
    EXPECT_EQ(o.t3, 0u);
    EXPECT_EQ(o.t2, 1u);
    EXPECT_EQ(o.mem, 9u);
    // the reserved word changed in between: sc fails
    o = run_amo({amo(2, 3, t2, t0, zero), sd(t1, t0, 0), amo(3, 3, t3, t0, zero)}, 77, 9);
    EXPECT_EQ(o.t3, 1u);
    EXPECT_EQ(o.mem, 9u);
    // local memory
    o = run_amo({amo(2, 3, t2, t0, zero), amo(3, 3, t3, t0, t1), ld(t2, t0, 0)}, 0, 123,
                KILN_LOCAL_MEM_BASE + 256);
    ASSERT_EQ(o.r.status, KILN_STATUS_OK);
    EXPECT_EQ(o.t3, 0u);
    EXPECT_EQ(o.t2, 123u);
    o = run_amo({amo(0, 2, t2, t0, t1), amo(0, 2, t2, t0, t1), lw(t3, t0, 0)}, 0, 21,
                KILN_LOCAL_MEM_BASE + 8);
    EXPECT_EQ(o.t2, 21u);
    EXPECT_EQ(o.t3, 42u);
}

TEST(PeFault, AtomicFaults)
{
    auto o = run_amo({amo(0, 2, t2, t0, t1)}, 0, 1, kDataVa + 66);  // misaligned amoadd.w
    EXPECT_EQ(o.r.status, KILN_STATUS_MISALIGNED);
    EXPECT_EQ(o.r.addr, kDataVa + 66);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_WRITE);
    EXPECT_EQ(o.r.reason, 6u);
    o = run_amo({amo(2, 3, t2, t0, zero)}, 0, 1, kDataVa + 68);  // misaligned lr.d
    EXPECT_EQ(o.r.status, KILN_STATUS_MISALIGNED);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_READ);
    EXPECT_EQ(o.r.reason, 4u);
    o = run_amo({amo(1, 3, t2, t0, t1)}, 0, 1, kRoVa);  // needs write permission
    EXPECT_EQ(o.r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(o.r.access, (uint32_t)KILN_ACCESS_WRITE);
    EXPECT_EQ(run_amo({amo(2, 3, t2, t0, zero)}, 0, 1, kRoVa).r.status, KILN_STATUS_OK);
    o = run_amo({amo(0, 3, t2, t0, t1)}, 0, 1, 0x7000000);  // unmapped
    EXPECT_EQ(o.r.status, KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(o.r.addr, 0x7000000u);
    o = run_amo({amo(0, 3, t2, t0, t1)}, 0, 1, KILN_LOCAL_MEM_BASE + (1 << 20));
    EXPECT_EQ(o.r.status, KILN_STATUS_LOCAL_MEM_BOUNDS);
    // lr with rs2 != 0, funct3 other than .W/.D, undefined funct5
    for (uint32_t bad : {amo(2, 3, t2, t0, t1), amo(0, 4, t2, t0, t1), amo(0x05, 3, t2, t0, t1)}) {
        o = run_amo({bad}, 0, 1);
        EXPECT_EQ(o.r.status, KILN_STATUS_ILLEGAL_INSTRUCTION) << std::hex << bad;
        EXPECT_EQ(o.r.addr, bad);
    }
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

// ---- RMM (round to nearest, ties to max magnitude) ----------------------

namespace {

constexpr uint32_t RNE = 0, RMM = 4, DYN = 7;

// instruction builders with a rounding-mode field
uint32_t fpop(uint32_t f7, uint32_t rm) { return fop(f7, rm, 3, 1, 2); }
uint32_t fmaop(uint32_t opc, uint32_t fmt, uint32_t rm)
{
    return R(fmt, 2, 1, rm, 3, opc) | (4u << 27);
}
uint32_t cvtop(uint32_t f7, uint32_t rs2, uint32_t rm) { return fop(f7, rm, 3, t0, rs2); }

struct BatchIn {
    uint64_t a, b, c;
};
struct BatchOut {
    uint64_t f;
    uint32_t flags;
};

// Runs insn once per input (t0 = f1 = a, f2 = b, f4 = c, fflags cleared
// before each) in one launch, with frm = frm.
std::vector<BatchOut> run_batch(uint32_t insn, const std::vector<BatchIn> &in,
                                uint32_t frm = 0)
{
    Machine m;
    std::vector<uint32_t> code = {
        ld(t4, a0, 0), ld(t3, a0, 8), csrrw(zero, KILN_CSR_FRM, t3), addi(t5, a0, 64),
        // loop:
        ld(t0, t5, 0), fld(1, t5, 0), fld(2, t5, 8), fld(4, t5, 16),
        csrrw(zero, KILN_CSR_FFLAGS, zero),
        insn,
        fsd(3, t5, 24), csrrs(t3, KILN_CSR_FFLAGS, zero), sd(t3, t5, 32),
        addi(t5, t5, 40), addi(t4, t4, -1),
        B(-11 * 4, zero, t4, 1),
        ret(),
    };
    m.load_code(code);
    uint64_t *d = m.at<uint64_t>(kDataVa);
    d[0] = in.size();
    d[1] = frm;
    for (size_t i = 0; i < in.size(); i++) {
        d[8 + i * 5 + 0] = in[i].a;
        d[8 + i * 5 + 1] = in[i].b;
        d[8 + i * 5 + 2] = in[i].c;
    }
    auto r = m.launch(kCodeVa, kDataVa);
    EXPECT_EQ(r.status, KILN_STATUS_OK);
    std::vector<BatchOut> out(in.size());
    for (size_t i = 0; i < in.size(); i++) {
        out[i].f = d[8 + i * 5 + 3];
        out[i].flags = (uint32_t)d[8 + i * 5 + 4];
    }
    return out;
}

// Builds the instruction for a rounding mode.
using InsnFn = uint32_t (*)(uint32_t rm);

struct RmmCase {
    const char *name;
    InsnFn insn;
    uint64_t a, b, c;
    uint64_t expect;     // RMM result
    uint32_t flags;      // RMM flags (equal to the RNE flags)
    bool tie_up;         // RNE differs (rounded the tie toward zero)
};

uint32_t i_fadd_s(uint32_t rm) { return fpop(0x00, rm); }
uint32_t i_fadd_d(uint32_t rm) { return fpop(0x01, rm); }
uint32_t i_fsub_s(uint32_t rm) { return fpop(0x04, rm); }
uint32_t i_fsub_d(uint32_t rm) { return fpop(0x05, rm); }
uint32_t i_fmul_s(uint32_t rm) { return fpop(0x08, rm); }
uint32_t i_fmul_d(uint32_t rm) { return fpop(0x09, rm); }
uint32_t i_fdiv_s(uint32_t rm) { return fpop(0x0c, rm); }
uint32_t i_fdiv_d(uint32_t rm) { return fpop(0x0d, rm); }
uint32_t i_fsqrt_s(uint32_t rm) { return fop(0x2c, rm, 3, 1, 0); }
uint32_t i_fsqrt_d(uint32_t rm) { return fop(0x2d, rm, 3, 1, 0); }
uint32_t i_fmadd_s(uint32_t rm) { return fmaop(0x43, 0, rm); }
uint32_t i_fmadd_d(uint32_t rm) { return fmaop(0x43, 1, rm); }
uint32_t i_fmsub_s(uint32_t rm) { return fmaop(0x47, 0, rm); }
uint32_t i_fmsub_d(uint32_t rm) { return fmaop(0x47, 1, rm); }
uint32_t i_fnmsub_s(uint32_t rm) { return fmaop(0x4b, 0, rm); }
uint32_t i_fnmsub_d(uint32_t rm) { return fmaop(0x4b, 1, rm); }
uint32_t i_fnmadd_s(uint32_t rm) { return fmaop(0x4f, 0, rm); }
uint32_t i_fnmadd_d(uint32_t rm) { return fmaop(0x4f, 1, rm); }
uint32_t i_fcvt_s_d(uint32_t rm) { return fop(0x20, rm, 3, 1, 1); }
uint32_t i_fcvt_s_w(uint32_t rm) { return cvtop(0x68, 0, rm); }
uint32_t i_fcvt_s_wu(uint32_t rm) { return cvtop(0x68, 1, rm); }
uint32_t i_fcvt_s_l(uint32_t rm) { return cvtop(0x68, 2, rm); }
uint32_t i_fcvt_s_lu(uint32_t rm) { return cvtop(0x68, 3, rm); }
uint32_t i_fcvt_d_w(uint32_t rm) { return cvtop(0x69, 0, rm); }
uint32_t i_fcvt_d_l(uint32_t rm) { return cvtop(0x69, 2, rm); }
uint32_t i_fcvt_d_lu(uint32_t rm) { return cvtop(0x69, 3, rm); }

// Runs each case with static RMM, dynamic RMM and static RNE (one launch
// per instruction and mode).
void check_rmm_cases(const std::vector<RmmCase> &cases)
{
    std::vector<InsnFn> insns;
    for (const RmmCase &k : cases) {
        if (std::find(insns.begin(), insns.end(), k.insn) == insns.end()) {
            insns.push_back(k.insn);
        }
    }
    for (InsnFn fn : insns) {
        std::vector<const RmmCase *> ks;
        std::vector<BatchIn> in;
        for (const RmmCase &k : cases) {
            if (k.insn == fn) {
                ks.push_back(&k);
                in.push_back({k.a, k.b, k.c});
            }
        }
        auto st = run_batch(fn(RMM), in);
        auto dy = run_batch(fn(DYN), in, RMM);
        auto ne = run_batch(fn(RNE), in);
        for (size_t i = 0; i < ks.size(); i++) {
            const RmmCase &k = *ks[i];
            EXPECT_EQ(st[i].f, k.expect) << k.name;
            EXPECT_EQ(st[i].flags, k.flags) << k.name;
            EXPECT_EQ(dy[i].f, k.expect) << k.name << " (dynamic frm)";
            EXPECT_EQ(dy[i].flags, k.flags) << k.name << " (dynamic frm)";
            EXPECT_EQ(ne[i].flags, k.flags) << k.name << " (RNE flags)";
            EXPECT_EQ(ne[i].f != k.expect, k.tie_up) << k.name << " (RNE result)";
        }
    }
}

}  // namespace

TEST(PeIsaRmm, SingleArithmetic)
{
    const float one_u = 1.0f + 0x1p-23f;                 // 1 + ulp
    const float fmax = std::numeric_limits<float>::max();
    const float fmax_m = nextafterf(fmax, 0.0f);         // even significand
    const float sub1 = 0x1p-149f;
    const float a12 = 1.0f + 0x1p-12f;
    const std::vector<RmmCase> cases = {
        // fadd.s / fsub.s
        {"add 1+2^-24 tie", i_fadd_s, fs(1.0f), fs(0x1p-24f), 0, fs(one_u), NX, true},
        {"add -1-2^-24 tie", i_fadd_s, fs(-1.0f), fs(-0x1p-24f), 0, fs(-one_u), NX, true},
        {"add odd+half: RNE already away", i_fadd_s, fs(one_u), fs(0x1p-24f), 0,
         fs(1.0f + 0x1p-22f), NX, false},
        {"add below half", i_fadd_s, fs(1.0f), fs(0x1p-25f), 0, fs(1.0f), NX, false},
        {"add above half", i_fadd_s, fs(1.0f), fs(0x1p-24f + 0x1p-47f), 0, fs(one_u), NX,
         false},
        {"add exact", i_fadd_s, fs(1.5f), fs(0.25f), 0, fs(1.75f), 0, false},
        {"add subnormal exact", i_fadd_s, fs(sub1), fs(sub1), 0, fs(0x1p-148f), 0, false},
        {"add tie below max", i_fadd_s, fs(fmax_m), fs(0x1p103f), 0, fs(fmax), NX, true},
        {"add -tie below max", i_fadd_s, fs(-fmax_m), fs(-0x1p103f), 0, fs(-fmax), NX, true},
        {"add max+half ulp overflows", i_fadd_s, fs(fmax), fs(0x1p103f), 0, fs(INFINITY),
         OF | NX, false},
        {"add -max-half ulp overflows", i_fadd_s, fs(-fmax), fs(-0x1p103f), 0,
         fs(-INFINITY), OF | NX, false},
        {"sub tie", i_fsub_s, fs(1.0f), fs(-0x1p-24f), 0, fs(one_u), NX, true},
        {"sub -tie", i_fsub_s, fs(-0x1p-24f), fs(1.0f), 0, fs(-one_u), NX, true},
        {"sub cancel to tie", i_fsub_s, fs(0x1p24f), fs(-1.0f), 0, fs(16777218.0f), NX, true},
        // fmul.s
        {"mul tie", i_fmul_s, fs(a12), fs(a12), 0, fs(1.0f + 0x1p-11f + 0x1p-23f), NX,
         true},
        {"mul -tie", i_fmul_s, fs(-a12), fs(a12), 0, fs(-(1.0f + 0x1p-11f + 0x1p-23f)), NX,
         true},
        {"mul below half", i_fmul_s, fs(a12), fs(1.0f + 0x1p-13f), 0,
         fs(1.0f + 0x1p-12f + 0x1p-13f), NX, false},
        {"mul subnormal tie to min", i_fmul_s, fs(sub1), fs(0.5f), 0, fs(sub1), UF | NX,
         true},
        {"mul -subnormal tie", i_fmul_s, fs(-sub1), fs(0.5f), 0, fs(-sub1), UF | NX, true},
        {"mul subnormal 2.5 -> 3", i_fmul_s, fs(5 * sub1), fs(0.5f), 0, fs(3 * sub1),
         UF | NX, true},
        {"mul subnormal 1.5 -> 2", i_fmul_s, fs(3 * sub1), fs(0.5f), 0, fs(2 * sub1),
         UF | NX, false},
        {"mul tie at 2^emin (tiny after rounding)", i_fmul_s, fs(4095.0f * 0x1p-75f),
         fs(4097.0f * 0x1p-75f), 0, fs(0x1p-126f), UF | NX, false},
        {"mul overflow", i_fmul_s, fs(0x1p127f), fs(2.0f), 0, fs(INFINITY), OF | NX, false},
        {"mul -overflow", i_fmul_s, fs(-0x1p127f), fs(3.0f), 0, fs(-INFINITY), OF | NX,
         false},
        {"mul nan", i_fmul_s, fs(NAN), fs(1.0f), 0, CANON_S, 0, false},
        // fdiv.s: ties only below 2^emin
        {"div subnormal tie", i_fdiv_s, fs(sub1), fs(2.0f), 0, fs(sub1), UF | NX, true},
        {"div -subnormal tie", i_fdiv_s, fs(sub1), fs(-2.0f), 0, fs(-sub1), UF | NX, true},
        {"div subnormal 2.5 -> 3", i_fdiv_s, fs(5 * sub1), fs(2.0f), 0, fs(3 * sub1),
         UF | NX, true},
        {"div 15/6 sub -> 3", i_fdiv_s, fs(15 * sub1), fs(6.0f), 0, fs(3 * sub1), UF | NX,
         true},
        {"div 1/3", i_fdiv_s, fs(1.0f), fs(3.0f), 0, fs(1.0f / 3.0f), NX, false},
        {"div by zero", i_fdiv_s, fs(1.0f), fs(0.0f), 0, fs(INFINITY), DZ, false},
        {"sqrt 2", i_fsqrt_s, fs(2.0f), 0, 0, fs(sqrtf(2.0f)), NX, false},
        // fused multiply-add family
        {"fmadd tie", i_fmadd_s, fs(1.0f), fs(1.0f), fs(0x1p-24f), fs(one_u), NX, true},
        {"fmsub tie", i_fmsub_s, fs(1.0f), fs(1.0f), fs(-0x1p-24f), fs(one_u), NX, true},
        {"fnmsub tie", i_fnmsub_s, fs(-1.0f), fs(1.0f), fs(0x1p-24f), fs(one_u), NX, true},
        {"fnmadd tie", i_fnmadd_s, fs(1.0f), fs(1.0f), fs(0x1p-24f), fs(-one_u), NX, true},
        {"fmadd fused tie", i_fmadd_s, fs(a12), fs(a12), fs(-0x1p-11f), fs(one_u), NX, true},
        {"fmadd product tie nudged up", i_fmadd_s, fs(a12), fs(a12), fs(0x1p-60f),
         fs(1.0f + 0x1p-11f + 0x1p-23f), NX, false},
        {"fmadd product tie nudged down", i_fmadd_s, fs(a12), fs(a12), fs(-0x1p-60f),
         fs(1.0f + 0x1p-11f), NX, false},
        {"fmadd product tie nudged by min subnormal", i_fmadd_s, fs(a12), fs(a12),
         fs(-sub1), fs(1.0f + 0x1p-11f), NX, false},
        {"fmadd subnormal tie", i_fmadd_s, fs(sub1), fs(0.5f), fs(0.0f), fs(sub1), UF | NX,
         true},
        {"fnmadd subnormal tie", i_fnmadd_s, fs(sub1), fs(0.5f), fs(-0.0f), fs(-sub1),
         UF | NX, true},
        {"fmadd overflow", i_fmadd_s, fs(fmax), fs(1.0f), fs(0x1p103f), fs(INFINITY),
         OF | NX, false},
        {"fmadd tie below max", i_fmadd_s, fs(fmax_m), fs(1.0f), fs(0x1p103f), fs(fmax), NX,
         true},
        {"fmadd exact zero", i_fmadd_s, fs(1.0f), fs(1.0f), fs(-1.0f), fs(0.0f), 0, false},
    };
    check_rmm_cases(cases);
}

TEST(PeIsaRmm, DoubleArithmetic)
{
    const double one_u = 1.0 + 0x1p-52;
    const double dmax = std::numeric_limits<double>::max();
    const double dmax_m = nextafter(dmax, 0.0);
    const double sub1 = 0x1p-1074;
    const double p = 1.0 + 0x1p-26 + 0x1p-27;          // (1+2^-26)(1+2^-27) - 2^-53
    const double a27 = 1.0 + 0x1p-27;
    const std::vector<RmmCase> cases = {
        {"add 1+2^-53 tie", i_fadd_d, fd(1.0), fd(0x1p-53), 0, fd(one_u), NX, true},
        {"add -tie", i_fadd_d, fd(-1.0), fd(-0x1p-53), 0, fd(-one_u), NX, true},
        {"add below half", i_fadd_d, fd(1.0), fd(0x1p-54), 0, fd(1.0), NX, false},
        {"add odd+half", i_fadd_d, fd(one_u), fd(0x1p-53), 0, fd(1.0 + 0x1p-51), NX, false},
        {"add tie below max", i_fadd_d, fd(dmax_m), fd(0x1p970), 0, fd(dmax), NX, true},
        {"add max+half ulp overflows", i_fadd_d, fd(dmax), fd(0x1p970), 0, fd(INFINITY),
         OF | NX, false},
        {"add -max-half ulp overflows", i_fadd_d, fd(-dmax), fd(-0x1p970), 0,
         fd(-INFINITY), OF | NX, false},
        {"add subnormal exact", i_fadd_d, fd(sub1), fd(2 * sub1), 0, fd(3 * sub1), 0, false},
        {"sub tie", i_fsub_d, fd(1.0), fd(-0x1p-53), 0, fd(one_u), NX, true},
        {"sub cancel to tie", i_fsub_d, fd(0x1p53), fd(-1.0), 0, fd(0x1p53 + 2), NX, true},
        {"mul tie", i_fmul_d, fd(1.0 + 0x1p-26), fd(a27), 0, fd(p + 0x1p-52), NX, true},
        {"mul -tie", i_fmul_d, fd(1.0 + 0x1p-26), fd(-a27), 0, fd(-(p + 0x1p-52)), NX, true},
        {"mul below half", i_fmul_d, fd(a27), fd(a27), 0, fd(1.0 + 0x1p-26), NX, false},
        {"mul subnormal tie", i_fmul_d, fd(sub1), fd(0.5), 0, fd(sub1), UF | NX, true},
        {"mul -subnormal tie", i_fmul_d, fd(-sub1), fd(0.5), 0, fd(-sub1), UF | NX, true},
        {"mul subnormal 2.5 -> 3", i_fmul_d, fd(5 * sub1), fd(0.5), 0, fd(3 * sub1), UF | NX,
         true},
        {"mul subnormal 1.5 -> 2", i_fmul_d, fd(3 * sub1), fd(-0.5), 0, fd(-2 * sub1),
         UF | NX, false},
        // (2^53 - 1) * 2^-1075 = 6361 * 69431 * 20394401 * 2^-1075
        {"mul tie at 2^emin", i_fmul_d, fd(441650591.0 * 0x1p-538),
         fd(20394401.0 * 0x1p-537), 0, fd(0x1p-1022), UF | NX, false},
        {"mul tie subnormal from normals", i_fmul_d, fd(0x1p-600), fd(3 * 0x1p-475), 0,
         fd(2 * sub1), UF | NX, false},
        {"mul tie subnormal 5/2 from normals", i_fmul_d, fd(5 * 0x1p-600), fd(0x1p-475), 0,
         fd(3 * sub1), UF | NX, true},
        {"mul overflow", i_fmul_d, fd(0x1p1023), fd(2.0), 0, fd(INFINITY), OF | NX, false},
        {"div subnormal tie", i_fdiv_d, fd(sub1), fd(2.0), 0, fd(sub1), UF | NX, true},
        {"div -subnormal tie", i_fdiv_d, fd(-sub1), fd(2.0), 0, fd(-sub1), UF | NX, true},
        {"div 15/6 sub -> 3", i_fdiv_d, fd(15 * sub1), fd(6.0), 0, fd(3 * sub1), UF | NX,
         true},
        {"div normal/huge tie", i_fdiv_d, fd(0x1p-1000), fd(0x1p75), 0, fd(sub1), UF | NX,
         true},
        {"div 1/3", i_fdiv_d, fd(1.0), fd(3.0), 0, fd(1.0 / 3.0), NX, false},
        {"sqrt 2", i_fsqrt_d, fd(2.0), 0, 0, fd(sqrt(2.0)), NX, false},
        {"fmadd tie", i_fmadd_d, fd(1.0), fd(1.0), fd(0x1p-53), fd(one_u), NX, true},
        {"fmsub tie", i_fmsub_d, fd(1.0), fd(1.0), fd(-0x1p-53), fd(one_u), NX, true},
        {"fnmsub tie", i_fnmsub_d, fd(-1.0), fd(1.0), fd(0x1p-53), fd(one_u), NX, true},
        {"fnmadd tie", i_fnmadd_d, fd(1.0), fd(1.0), fd(0x1p-53), fd(-one_u), NX, true},
        {"fmadd fused tie", i_fmadd_d, fd(a27), fd(a27), fd(-0x1p-26 + 0x1p-54), fd(one_u),
         NX, true},
        {"fmadd product tie nudged up", i_fmadd_d, fd(1.0 + 0x1p-26), fd(a27), fd(0x1p-200),
         fd(p + 0x1p-52), NX, false},
        {"fmadd product tie nudged down", i_fmadd_d, fd(1.0 + 0x1p-26), fd(a27),
         fd(-0x1p-200), fd(p), NX, false},
        {"fmadd product tie nudged by min subnormal", i_fmadd_d, fd(1.0 + 0x1p-26), fd(a27),
         fd(-sub1), fd(p), NX, false},
        {"fmadd huge c, tiny product", i_fmadd_d, fd(sub1), fd(0.5), fd(1.0), fd(1.0), NX,
         false},
        {"fmadd subnormal tie", i_fmadd_d, fd(sub1), fd(0.5), fd(0.0), fd(sub1), UF | NX,
         true},
        {"fmsub subnormal tie", i_fmsub_d, fd(3 * sub1), fd(1.5), fd(2 * sub1),
         fd(3 * sub1), UF | NX, true},
        {"fmadd overflow", i_fmadd_d, fd(dmax), fd(1.0), fd(0x1p970), fd(INFINITY), OF | NX,
         false},
        {"fnmadd -overflow", i_fnmadd_d, fd(dmax), fd(1.0), fd(0x1p970), fd(-INFINITY),
         OF | NX, false},
        {"fmadd tie below max", i_fmadd_d, fd(dmax_m), fd(1.0), fd(0x1p970), fd(dmax), NX,
         true},
        {"fmadd inf*0", i_fmadd_d, fd(INFINITY), fd(0.0), fd(1.0), CANON_D, NV, false},
    };
    check_rmm_cases(cases);
}

TEST(PeIsaRmm, Conversions)
{
    const float fmax = std::numeric_limits<float>::max();
    const std::vector<RmmCase> cases = {
        {"s.d tie", i_fcvt_s_d, fd(1.0 + 0x1p-24), 0, 0, fs(1.0f + 0x1p-23f), NX, true},
        {"s.d -tie", i_fcvt_s_d, fd(-1.0 - 0x1p-24), 0, 0, fs(-1.0f - 0x1p-23f), NX, true},
        {"s.d above half", i_fcvt_s_d, fd(1.0 + 0x1p-24 + 0x1p-50), 0, 0,
         fs(1.0f + 0x1p-23f), NX, false},
        {"s.d below half", i_fcvt_s_d, fd(1.0 + 0x1p-24 - 0x1p-50), 0, 0, fs(1.0f), NX,
         false},
        {"s.d subnormal tie to min", i_fcvt_s_d, fd(0x1p-150), 0, 0, fs(0x1p-149f), UF | NX,
         true},
        {"s.d -subnormal 2.5 -> 3", i_fcvt_s_d, fd(-2.5 * 0x1p-149), 0, 0,
         fs(-3 * 0x1p-149f), UF | NX, true},
        {"s.d tie at 2^emin", i_fcvt_s_d, fd(0x1p-126 - 0x1p-150), 0, 0, fs(0x1p-126f),
         UF | NX, false},
        {"s.d tie below max", i_fcvt_s_d, fd((double)fmax - 0x1p103), 0, 0, fs(fmax), NX,
         true},
        {"s.d max+half ulp overflows", i_fcvt_s_d, fd((double)fmax + 0x1p103), 0, 0,
         fs(INFINITY), OF | NX, false},
        {"s.d 1e300 overflows", i_fcvt_s_d, fd(-1e300), 0, 0, fs(-INFINITY), OF | NX, false},
        {"s.w tie", i_fcvt_s_w, (1u << 24) + 1, 0, 0, fs(16777218.0f), NX, true},
        {"s.w -tie", i_fcvt_s_w, (uint64_t)-(int64_t)((1u << 24) + 1), 0, 0,
         fs(-16777218.0f), NX, true},
        {"s.w tie already away", i_fcvt_s_w, (1u << 24) + 3, 0, 0, fs(16777220.0f), NX,
         false},
        {"s.w exact negative", i_fcvt_s_w, 0x80000080u, 0, 0, fs(-2147483520.0f), 0, false},
        {"s.w int min", i_fcvt_s_w, 0x80000000u, 0, 0, fs(-2147483648.0f), 0, false},
        {"s.wu tie", i_fcvt_s_wu, 0x80000080u, 0, 0, fs(2147483904.0f), NX, true},
        {"s.wu max", i_fcvt_s_wu, 0xffffffffu, 0, 0, fs(4294967296.0f), NX, false},
        {"s.l tie", i_fcvt_s_l, (1ull << 60) + (1ull << 36), 0, 0, fs(0x1p60f + 0x1p37f), NX,
         true},
        {"s.l -tie", i_fcvt_s_l, (uint64_t)-(int64_t)((1ull << 60) + (1ull << 36)), 0, 0,
         fs(-0x1p60f - 0x1p37f), NX, true},
        {"s.l int min", i_fcvt_s_l, 1ull << 63, 0, 0, fs(-0x1p63f), 0, false},
        {"s.l non-tie", i_fcvt_s_l, (1ull << 60) + (1ull << 36) - 1, 0, 0, fs(0x1p60f), NX,
         false},
        {"s.lu tie", i_fcvt_s_lu, (1ull << 63) + (1ull << 39), 0, 0, fs(0x1p63f + 0x1p40f),
         NX, true},
        {"s.lu max", i_fcvt_s_lu, ~0ull, 0, 0, fs(0x1p64f), NX, false},
        {"d.w exact", i_fcvt_d_w, 0x80000000u, 0, 0, fd(-2147483648.0), 0, false},
        {"d.l tie", i_fcvt_d_l, (1ull << 53) + 1, 0, 0, fd(0x1p53 + 2), NX, true},
        {"d.l -tie", i_fcvt_d_l, (uint64_t)-(int64_t)((1ull << 53) + 1), 0, 0,
         fd(-0x1p53 - 2), NX, true},
        {"d.l tie 2^62", i_fcvt_d_l, (1ull << 62) + (1ull << 9), 0, 0, fd(0x1p62 + 0x1p10),
         NX, true},
        {"d.l int min", i_fcvt_d_l, 1ull << 63, 0, 0, fd(-0x1p63), 0, false},
        {"d.lu tie", i_fcvt_d_lu, (1ull << 63) + (1ull << 10), 0, 0, fd(0x1p63 + 0x1p11), NX,
         true},
        {"d.lu tie rounds to 2^64", i_fcvt_d_lu, ~0ull - 1023, 0, 0, fd(0x1p64), NX, false},
        {"d.lu max", i_fcvt_d_lu, ~0ull, 0, 0, fd(0x1p64), NX, false},
    };
    check_rmm_cases(cases);
}

#if defined(__SIZEOF_FLOAT128__)
namespace {

using quad = __float128;

// RMM rounding of an exact binary128 value q to T: RNE conversion, then one
// step away from zero when q - r is exactly half the gap to the next value.
template <typename T> T ref_rmm(quad q)
{
    T r = (T)q;     // RNE (the test process runs in the default mode)
    if (!std::isfinite(r)) {
        return r;
    }
    quad d = q - (quad)r;   // exact: |d| <= half an ulp of T
    if (d == 0 || (d > 0) != (q > 0)) {
        return r;
    }
    T ra = std::nextafter(r, q > 0 ? std::numeric_limits<T>::infinity()
                                   : -std::numeric_limits<T>::infinity());
    return 2 * d == (quad)ra - (quad)r ? ra : r;
}

struct Rng {
    std::mt19937_64 g{0x6b696c6e};
    uint64_t bits(int n) { return n >= 64 ? g() : g() & ((1ull << n) - 1); }
    int range(int lo, int hi) { return lo + (int)(g() % (uint64_t)(hi - lo + 1)); }
    // odd integer of exactly n bits
    uint64_t odd(int n) { return n == 1 ? 1 : (1ull << (n - 1)) | bits(n - 1) | 1; }
    bool coin() { return g() & 1; }
};

// Runs insn over inputs in RMM (static) and RNE; checks the RMM results
// against ref[] and the RMM flags against the RNE flags. Returns the number
// of inputs where RMM and RNE results differ.
int check_batch(const char *what, uint32_t (*insn)(uint32_t), const std::vector<BatchIn> &in,
                const std::vector<uint64_t> &ref)
{
    auto st = run_batch(insn(RMM), in);
    auto ne = run_batch(insn(RNE), in);
    int differ = 0, bad = 0;
    for (size_t i = 0; i < in.size(); i++) {
        if (st[i].f != ref[i] || st[i].flags != ne[i].flags) {
            if (bad++ < 10) {
                ADD_FAILURE() << what << " #" << i << std::hex << " a=" << in[i].a
                              << " b=" << in[i].b << " c=" << in[i].c << " got=" << st[i].f
                              << " want=" << ref[i] << " flags=" << st[i].flags
                              << " rne flags=" << ne[i].flags;
            }
        }
        differ += st[i].f != ne[i].f;
    }
    return differ;
}

template <typename T> uint64_t tbits(T v)
{
    if constexpr (sizeof(T) == 4) {
        return fs(v);
    } else {
        return fd(v);
    }
}

// a random finite value M * 2^e with an odd significand of n bits (rounded
// to T if it does not fit)
template <typename T> T rval(Rng &g, int n, int e)
{
    T v = (T)std::ldexp((long double)g.odd(n), e);
    return g.coin() ? -v : v;
}

}  // namespace

TEST(PeIsaRmm, RandomAgainstQuadReference)
{
    constexpr int N = 3000;
    Rng g;
    // add/sub: b near the half ulp of a; exact in binary128 (exponents close)
    auto addsub = [&](auto zero, InsnFn add, InsnFn sub, int p, int emin, int emax) {
        using T = decltype(zero);
        std::vector<BatchIn> in;
        std::vector<uint64_t> ra, rs;
        while ((int)in.size() < N) {
            int e = g.range(emin, emax), n = g.range(1, p);
            T a = rval<T>(g, n, e);
            // half the case: b's last bit at half an ulp of a (mostly ties)
            T b = rval<T>(g, g.range(1, 6),
                          g.coin() ? e + n - 1 - p : e - g.range(-3, p + 4));
            if (!std::isfinite(a) || !std::isfinite(b)) {
                continue;
            }
            in.push_back({tbits(a), tbits(b), 0});
            ra.push_back(tbits(ref_rmm<T>((quad)a + (quad)b)));
            rs.push_back(tbits(ref_rmm<T>((quad)a - (quad)b)));
        }
        EXPECT_GT(check_batch("add", add, in, ra), N / 20);
        EXPECT_GT(check_batch("sub", sub, in, rs), N / 20);
    };
    addsub(0.0f, i_fadd_s, i_fsub_s, 24, -149 + 30, 127 - 24);
    addsub(0.0, i_fadd_d, i_fsub_d, 53, -1074 + 60, 1023 - 53);

    // mul: odd significands whose product has about p + 1 bits; exponents
    // spread over subnormal, normal and overflowing results
    auto mul = [&](auto zero, InsnFn fn, int p, int elo, int ehi) {
        using T = decltype(zero);
        std::vector<BatchIn> in;
        std::vector<uint64_t> ref;
        while ((int)in.size() < N) {
            int n1 = g.range(1, p), n2 = std::min(p, std::max(1, p + g.range(-1, 2) - n1));
            int e = g.range(elo, ehi), e1 = e / 2 - n1 + g.range(-20, 20);
            T a = rval<T>(g, n1, e1), b = rval<T>(g, n2, e - e1 - n2);
            if (!std::isfinite(a) || !std::isfinite(b) || a == 0 || b == 0) {
                continue;
            }
            in.push_back({tbits(a), tbits(b), 0});
            ref.push_back(tbits(ref_rmm<T>((quad)a * (quad)b)));
        }
        EXPECT_GT(check_batch("mul", fn, in, ref), N / 20);
    };
    mul(0.0f, i_fmul_s, 24, -154, 130);
    mul(0.0, i_fmul_d, 53, -1080, 1026);

    // fma: product of about p bits plus an addend aligned near it (the exact
    // result stays within binary128), in all four sign variants
    auto fmas = [&](auto zero, InsnFn fmadd, InsnFn fmsub, InsnFn fnmsub, InsnFn fnmadd,
                    int p, int pbits, int elo, int ehi) {
        using T = decltype(zero);
        std::vector<BatchIn> in;
        std::vector<uint64_t> r0, r1, r2, r3;
        while ((int)in.size() < N) {
            int n1 = g.range(1, pbits / 2), n2 = g.range(1, pbits - n1);
            int e = g.range(elo, ehi), e1 = e / 2 - n1 + g.range(-10, 10);
            T a = rval<T>(g, n1, e1), b = rval<T>(g, n2, e - e1 - n2);
            int n3 = g.range(1, p);
            T c = rval<T>(g, n3, e - n3 + g.range(-p - 2, 3));
            if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(c)) {
                continue;
            }
            quad prod = (quad)a * (quad)b;
            in.push_back({tbits(a), tbits(b), tbits(c)});
            r0.push_back(tbits(ref_rmm<T>(prod + (quad)c)));
            r1.push_back(tbits(ref_rmm<T>(prod - (quad)c)));
            r2.push_back(tbits(ref_rmm<T>(-prod + (quad)c)));
            r3.push_back(tbits(ref_rmm<T>(-prod - (quad)c)));
        }
        EXPECT_GT(check_batch("fmadd", fmadd, in, r0), N / 150);
        EXPECT_GT(check_batch("fmsub", fmsub, in, r1), N / 150);
        EXPECT_GT(check_batch("fnmsub", fnmsub, in, r2), N / 150);
        EXPECT_GT(check_batch("fnmadd", fnmadd, in, r3), N / 150);
    };
    fmas(0.0f, i_fmadd_s, i_fmsub_s, i_fnmsub_s, i_fnmadd_s, 24, 27, -152, 129);
    fmas(0.0, i_fmadd_d, i_fmsub_d, i_fnmsub_d, i_fnmadd_d, 53, 56, -1078, 1025);

    // fdiv: ties below 2^emin (a = b * m with m an odd multiple of half the
    // subnormal spacing), and ordinary quotients where RMM equals RNE
    auto div = [&](auto zero, InsnFn fn, int sub_e) {
        using T = decltype(zero);
        std::vector<BatchIn> in;
        std::vector<uint64_t> ref;
        while ((int)in.size() < N) {
            T a, b;
            if (g.coin()) {
                uint64_t bo = g.odd(g.range(1, 8)), mo = g.odd(g.range(1, 12));
                int sb = g.range(1, 6);
                a = (T)std::ldexp((long double)(bo * mo), sub_e + sb - 1);
                b = (T)std::ldexp((long double)bo, sb);
                if (g.coin()) {
                    b = -b;
                }
            } else {
                a = rval<T>(g, g.range(1, 24), g.range(-60, 60));
                b = rval<T>(g, g.range(1, 24), g.range(-60, 60));
            }
            quad q = (quad)a / (quad)b;
            if ((quad)b * q != (quad)a) {
                // not exact in binary128: no tie, RMM == RNE
                ref.push_back(tbits((T)(a / b)));
            } else {
                ref.push_back(tbits(ref_rmm<T>(q)));
            }
            in.push_back({tbits(a), tbits(b), 0});
        }
        EXPECT_GT(check_batch("div", fn, in, ref), N / 20);
    };
    div(0.0f, i_fdiv_s, -149);
    div(0.0, i_fdiv_d, -1074);

    // fcvt.s.d
    {
        std::vector<BatchIn> in;
        std::vector<uint64_t> ref;
        while ((int)in.size() < N) {
            int n = g.range(20, 30);
            double a = rval<double>(g, n, g.range(-160, 130) - n);
            in.push_back({fd(a), 0, 0});
            ref.push_back(fs(ref_rmm<float>((quad)a)));
        }
        EXPECT_GT(check_batch("fcvt.s.d", i_fcvt_s_d, in, ref), N / 30);
    }
    // integer -> float
    auto icvt = [&](auto zero, InsnFn fn, int width, bool is_signed, int p) {
        using T = decltype(zero);
        std::vector<BatchIn> in;
        std::vector<uint64_t> ref;
        while ((int)in.size() < N) {
            int maxbits = is_signed ? width - 1 : width;
            int n = g.range(p - 2, std::min(p + 6, maxbits));
            uint64_t v = g.odd(n) << g.range(0, maxbits - n);
            quad q;
            if (is_signed && g.coin()) {
                v = (uint64_t)-(int64_t)v;
            }
            if (width == 32) {
                v = is_signed ? (uint64_t)(int64_t)(int32_t)v : (uint32_t)v;
                q = is_signed ? (quad)(int32_t)v : (quad)(uint32_t)v;
            } else {
                q = is_signed ? (quad)(int64_t)v : (quad)v;
            }
            in.push_back({v, 0, 0});
            ref.push_back(tbits(ref_rmm<T>(q)));
        }
        EXPECT_GT(check_batch("fcvt from int", fn, in, ref), N / 30);
    };
    icvt(0.0f, i_fcvt_s_w, 32, true, 24);
    icvt(0.0f, i_fcvt_s_wu, 32, false, 24);
    icvt(0.0f, i_fcvt_s_l, 64, true, 24);
    icvt(0.0f, i_fcvt_s_lu, 64, false, 24);
    icvt(0.0, i_fcvt_d_l, 64, true, 53);
    icvt(0.0, i_fcvt_d_lu, 64, false, 53);
}

TEST(PeIsaRmm, FarAddendAndSqrtMatchRne)
{
    // fma with an addend far below the product's last bit is never a tie
    // (the exact value has too many bits), so RMM must equal RNE; likewise
    // sqrt never produces a midpoint
    Rng g;
    std::vector<BatchIn> in;
    for (int i = 0; i < 2000; i++) {
        double a = rval<double>(g, g.range(20, 30), g.range(-40, 40));
        double b = rval<double>(g, 54 - (int)std::ilogb(a) % 20 - 20, g.range(-40, 40));
        double c = rval<double>(g, g.range(1, 53), g.range(-1074, -200));
        in.push_back({fd(a), fd(b), fd(c)});
    }
    auto st = run_batch(i_fmadd_d(RMM), in), ne = run_batch(i_fmadd_d(RNE), in);
    for (size_t i = 0; i < in.size(); i++) {
        EXPECT_EQ(st[i].f, ne[i].f) << i;
        EXPECT_EQ(st[i].flags, ne[i].flags) << i;
    }
    in.clear();
    for (int i = 0; i < 2000; i++) {
        in.push_back({fd(std::ldexp((double)g.bits(53), g.range(-1100, 960))), 0, 0});
        in.push_back({fs((float)std::ldexp((double)g.bits(24), g.range(-160, 100))), 0, 0});
    }
    for (InsnFn fn : {i_fsqrt_s, i_fsqrt_d}) {
        auto s2 = run_batch(fn(RMM), in), n2 = run_batch(fn(RNE), in);
        for (size_t i = 0; i < in.size(); i++) {
            EXPECT_EQ(s2[i].f, n2[i].f) << i;
            EXPECT_EQ(s2[i].flags, n2[i].flags) << i;
        }
    }
}
#endif
