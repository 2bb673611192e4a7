// SPDX-License-Identifier: GPL-2.0-or-later
// The host-vectorised DPE/SE kernels: every variant this host can run gives
// the same bits as the definition (pe_simd.h, docs/pe-isa.md) on random
// data full of NaNs, infinities, signed zeros and denormals.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "kiln/hw/kiln_isa.h"
#include "pe_simd.h"

namespace {

uint32_t bits(float f)
{
    return std::bit_cast<uint32_t>(f);
}

float from_bits(uint32_t u)
{
    return std::bit_cast<float>(u);
}

// Mostly ordinary values, with a steady supply of every special class
float nasty(std::mt19937 &rng)
{
    uint32_t sign = (rng() & 1) << 31;
    switch (rng() % 16) {
    case 0: return from_bits(sign | 0x7fc00000u | (rng() & 0x3fffff));  // quiet NaN, payload
    case 1: return from_bits(sign | 0x7f800000u | (1 + rng() % 0x3fffff));  // signalling NaN
    case 2: return from_bits(sign | 0x7f800000u);                            // infinity
    case 3: return from_bits(sign);                                          // signed zero
    case 4: return from_bits(sign | (1 + rng() % 0x7fffff));                 // denormal
    case 5: return from_bits(sign | 0x00800000u | (rng() & 0x7fffff));       // smallest normals
    case 6: return from_bits(sign | (0x7f000000u + (rng() & 0x7fffff)));     // huge
    default: return std::uniform_real_distribution<float>(-4.0f, 4.0f)(rng);
    }
}

std::vector<float> nasty_vec(std::mt19937 &rng, size_t n)
{
    std::vector<float> v(n);
    for (auto &x : v) {
        x = nasty(rng);
    }
    return v;
}

std::vector<const KilnSimdOps *> variants()
{
    std::vector<const KilnSimdOps *> v;
    for (int l = 0; l < KILN_SIMD_LEVELS; l++) {
        if (const KilnSimdOps *o = kiln_simd_ops(static_cast<KilnSimdLevel>(l))) {
            v.push_back(o);
        }
    }
    return v;
}

float canonical(float v)
{
    return std::isnan(v) ? from_bits(KILN_CANONICAL_NAN_F32) : v;
}

// The DPE definition written independently of pe_simd.c
void sgemm_reference(uint32_t m, uint32_t n, uint32_t k, const float *a, uint64_t lda,
                     const float *b, uint64_t ldb, float *c, uint64_t ldc)
{
    for (uint32_t i = 0; i < m; i++) {
        for (uint32_t j = 0; j < n; j++) {
            float acc = c[i * ldc + j];
            for (uint32_t p = 0; p < k; p++) {
                acc = std::fma(a[i * lda + p], b[p * ldb + j], acc);
            }
            c[i * ldc + j] = canonical(acc);
        }
    }
}

TEST(PeSimd, BestVariantIsListed)
{
    auto v = variants();
    ASSERT_FALSE(v.empty());
    EXPECT_STREQ(v.front()->name, "generic");
    EXPECT_EQ(kiln_simd_best(), v.back());
    EXPECT_EQ(kiln_simd_ops(KILN_SIMD_LEVELS), nullptr);
}

TEST(PeSimd, SgemmBitIdenticalOnEveryVariant)
{
    std::mt19937 rng(1234);
    // edges of every register block, and k across the 256-step k-blocking
    const uint32_t shapes[][3] = {{1, 1, 1},   {3, 5, 7},    {8, 32, 16},  {13, 33, 29},
                                  {6, 16, 300}, {17, 47, 257}, {64, 64, 64}, {9, 100, 513}};
    for (auto &s : shapes) {
        uint32_t m = s[0], n = s[1], k = s[2];
        uint64_t lda = k + 3, ldb = n + 5, ldc = n + 2;
        auto a = nasty_vec(rng, m * lda), b = nasty_vec(rng, k * ldb), c0 = nasty_vec(rng, m * ldc);
        // a NaN-free copy too, so most results are numbers whose rounding is checked
        auto tame = [](std::vector<float> v) {
            for (auto &x : v) {
                if (!std::isfinite(x) || std::fabs(x) > 1e30f) {
                    x = 0.5f;
                }
            }
            return v;
        };
        for (bool specials : {false, true}) {
            auto A = specials ? a : tame(a), B = specials ? b : tame(b), C = specials ? c0 : tame(c0);
            auto want = C;
            sgemm_reference(m, n, k, A.data(), lda, B.data(), ldb, want.data(), ldc);
            for (const KilnSimdOps *o : variants()) {
                auto got = C;
                o->sgemm(m, n, k, A.data(), lda, B.data(), ldb, got.data(), ldc);
                for (size_t i = 0; i < got.size(); i++) {
                    ASSERT_EQ(bits(got[i]), bits(want[i]))
                        << o->name << " m=" << m << " n=" << n << " k=" << k << " at " << i
                        << (specials ? " with specials" : "");
                }
            }
        }
    }
}

TEST(PeSimd, Int8GemmWrapsIdenticallyOnEveryVariant)
{
    std::mt19937 rng(99);
    // odd k (the pairwise kernels pad it), every row/column remainder, and
    // A or B read transposed through the strides
    for (uint32_t m : {1u, 11u, 16u}) {
        for (uint32_t k : {1u, 70u, 129u}) {
            const uint32_t n = 37, ldc = 39, lda = k + 3, ldb = n + 5, ldt = k + 2;
            std::vector<int8_t> a(m * lda), b(k * ldb), bt(n * ldt);
            std::vector<int32_t> c(m * ldc);
            for (auto &x : a) x = (int8_t)rng();
            for (auto &x : b) x = (int8_t)rng();
            for (auto &x : c) x = (int32_t)rng();  // the sum wraps around
            for (uint32_t p = 0; p < k; p++) {
                for (uint32_t j = 0; j < n; j++) {
                    bt[j * ldt + p] = b[p * ldb + j];
                }
            }
            auto want = c;
            for (uint32_t i = 0; i < m; i++) {
                for (uint32_t j = 0; j < n; j++) {
                    uint32_t acc = (uint32_t)want[i * ldc + j];
                    for (uint32_t p = 0; p < k; p++) {
                        acc += (uint32_t)(a[i * lda + p] * b[p * ldb + j]);
                    }
                    want[i * ldc + j] = (int32_t)acc;
                }
            }
            for (const KilnSimdOps *o : variants()) {
                auto got = c;
                ASSERT_TRUE(o->igemm_i8(m, n, k, a.data(), lda, 1, b.data(), ldb, 1,
                                        got.data(), ldc));
                EXPECT_EQ(got, want) << o->name << " m=" << m << " k=" << k;
                got = c;
                ASSERT_TRUE(o->igemm_i8(m, n, k, a.data(), lda, 1, bt.data(), 1, ldt,
                                        got.data(), ldc));
                EXPECT_EQ(got, want) << o->name << " transposed B, m=" << m << " k=" << k;
            }
        }
    }
}

TEST(PeSimd, SeOpsBitIdenticalOnEveryVariant)
{
    const uint32_t ops[] = {KILN_SE_ADD,   KILN_SE_SUB,     KILN_SE_MUL,  KILN_SE_DIV,
                            KILN_SE_MIN,   KILN_SE_MAX,     KILN_SE_FMA,  KILN_SE_EXP,
                            KILN_SE_LOG,   KILN_SE_SQRT,    KILN_SE_RSQRT, KILN_SE_RELU,
                            KILN_SE_GELU,  KILN_SE_SIGMOID, KILN_SE_TANH, KILN_SE_NEG,
                            KILN_SE_ABS,   KILN_SE_RECIP,   KILN_SE_COPY};
    std::mt19937 rng(7);
    for (uint32_t n : {1u, 7u, 16u, 31u, 33u, 1000u}) {
        auto a = nasty_vec(rng, n), b = nasty_vec(rng, n), c = nasty_vec(rng, n);
        float s = nasty(rng);
        for (uint32_t op : ops) {
            for (bool scalar : {false, true}) {
                if (scalar && op > KILN_SE_FMA) {
                    continue;
                }
                uint32_t o = op | (scalar ? KILN_SE_SCALAR : 0);
                std::vector<float> want(n);
                for (uint32_t i = 0; i < n; i++) {
                    want[i] = kiln_se_elem(o, a[i], scalar ? s : b[i], c[i]);
                }
                for (const KilnSimdOps *v : variants()) {
                    std::vector<float> got(n);
                    v->se_row(o, got.data(), a.data(), b.data(), c.data(), s, n);
                    for (uint32_t i = 0; i < n; i++) {
                        ASSERT_EQ(bits(got[i]), bits(want[i]))
                            << v->name << " op " << o << " n=" << n << " a=" << a[i]
                            << " b=" << (scalar ? s : b[i]);
                    }
                    // in place (dst == a) gives the same
                    auto inplace = a;
                    v->se_row(o, inplace.data(), inplace.data(), b.data(), c.data(), s, n);
                    for (uint32_t i = 0; i < n; i++) {
                        ASSERT_EQ(bits(inplace[i]), bits(want[i])) << v->name << " op " << o;
                    }
                }
            }
        }
    }
}

// The element definition: canonical NaN for arithmetic, payload kept by sign ops
TEST(PeSimd, SeElementNanRules)
{
    float qnan = from_bits(0xffc12345u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_ADD, qnan, 1.0f, 0)), KILN_CANONICAL_NAN_F32);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_MUL, INFINITY, 0.0f, 0)), KILN_CANONICAL_NAN_F32);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_FMA, 1.0f, 1.0f, qnan)), KILN_CANONICAL_NAN_F32);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_NEG, qnan, 0, 0)), 0x7fc12345u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_ABS, qnan, 0, 0)), 0x7fc12345u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_COPY, qnan, 0, 0)), 0xffc12345u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_RELU, qnan, 0, 0)), 0u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_RELU, -0.0f, 0, 0)), 0u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_MIN, -0.0f, 0.0f, 0)), 0x80000000u);
    EXPECT_EQ(bits(kiln_se_elem(KILN_SE_MAX, -0.0f, 0.0f, 0)), 0u);
    EXPECT_EQ(kiln_se_elem(KILN_SE_MIN, qnan, 2.0f, 0), 2.0f);
    EXPECT_EQ(kiln_se_elem(KILN_SE_MAX, 2.0f, qnan, 0), 2.0f);
}

TEST(PeSimd, ConversionsBitIdenticalOnEveryVariant)
{
    std::mt19937 rng(5);
    for (auto [n, denormals] : {std::pair{1u, true}, {15u, true}, {16u, true}, {17u, true}, {31u, true},
                                {32u, true}, {33u, true}, {100u, true}, {4096u, true}, {4096u, false}}) {
        auto f = nasty_vec(rng, n);
        // Without denormals every block of 32 takes the avx512bf16 variant's vcvtne2ps2bf16.
        for (auto &x : f) {
            if (!denormals && std::fpclassify(x) == FP_SUBNORMAL) {
                x = from_bits(bits(x) | 0x00800000u);
            }
        }
        std::vector<uint16_t> h(n);
        for (auto &x : h) x = (uint16_t)rng();
        std::vector<uint16_t> want_bf(n), want_h(n);
        std::vector<float> want_f(n);
        for (uint32_t i = 0; i < n; i++) {
            want_bf[i] = kiln_f32_to_bf16(f[i]);
            want_h[i] = kiln_f32_to_f16(f[i]);
            want_f[i] = kiln_f16_to_f32(h[i]);
        }
        for (const KilnSimdOps *v : variants()) {
            std::vector<uint16_t> bf(n), hh(n);
            std::vector<float> ff(n);
            v->f32_to_bf16(bf.data(), f.data(), n);
            v->f32_to_f16(hh.data(), f.data(), n);
            v->f16_to_f32(ff.data(), h.data(), n);
            for (uint32_t i = 0; i < n; i++) {
                ASSERT_EQ(bf[i], want_bf[i]) << v->name << " bf16 of " << std::hex << bits(f[i]);
                ASSERT_EQ(hh[i], want_h[i]) << v->name << " fp16 of " << std::hex << bits(f[i]);
                ASSERT_EQ(bits(ff[i]), bits(want_f[i])) << v->name << " fp32 of " << std::hex << h[i];
            }
        }
    }
}

}  // namespace
