// SPDX-License-Identifier: MIT
// kiln::ccl's reference reduction on the host: the order and rounding the devices follow.
#include <gtest/gtest.h>
#include <kiln/ccl.hpp>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>

namespace {
namespace ccl = kiln::ccl;

std::vector<std::byte> f32(std::initializer_list<float> v) {
  std::vector<std::byte> b(v.size() * 4);
  std::memcpy(b.data(), v.begin(), b.size());
  return b;
}

float at(const std::vector<std::byte>& b, size_t i) {
  float f;
  std::memcpy(&f, b.data() + i * 4, 4);
  return f;
}

TEST(CclReference, SumsInRankOrder) {
  // (1e8 + 1) - 1e8 = 0 in fp32 left to right; any other order gives 1.
  auto a = f32({1e8f}), b = f32({1.0f}), c = f32({-1e8f});
  std::vector<std::span<const std::byte>> in{a, b, c};
  EXPECT_EQ(at(ccl::reference_reduce(in, ccl::DType::f32, ccl::Op::sum), 0), 0.0f);
  std::vector<std::span<const std::byte>> in2{a, c, b};
  EXPECT_EQ(at(ccl::reference_reduce(in2, ccl::DType::f32, ccl::Op::sum), 0), 1.0f);
}

TEST(CclReference, Bf16AccumulatesInFp32AndRoundsOnce) {
  // 1 + 2^-9 + 2^-9: bf16 after every step would stay 1 (2^-9 is below half an ulp at
  // 1 for bf16's 8-bit mantissa, 2^-8 is the ulp / 2 tie that rounds to even); in fp32
  // the sum is 1 + 2^-8, which rounds (tie, to even) to 1 too, so use three: 1 + 3 * 2^-9.
  auto bf = [](float v) {
    std::vector<std::byte> b(2);
    uint16_t h = ccl::to_bf16(v);
    std::memcpy(b.data(), &h, 2);
    return b;
  };
  auto one = bf(1.0f), e = bf(std::ldexp(1.0f, -9));
  std::vector<std::span<const std::byte>> in{one, e, e, e};
  auto out = ccl::reference_reduce(in, ccl::DType::bf16, ccl::Op::sum);
  uint16_t h;
  std::memcpy(&h, out.data(), 2);
  EXPECT_EQ(ccl::from_bf16(h), 1.0f + std::ldexp(1.0f, -7));  // 1 + 3/512 rounds to 1 + 4/512
}

TEST(CclReference, ToBf16RoundsToNearestEvenAndKeepsNaN) {
  EXPECT_EQ(ccl::to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(ccl::to_bf16(std::bit_cast<float>(0x3f808000u)), 0x3f80);  // tie: to even
  EXPECT_EQ(ccl::to_bf16(std::bit_cast<float>(0x3f818000u)), 0x3f82);  // tie: to even (up)
  EXPECT_EQ(ccl::to_bf16(std::bit_cast<float>(0x3f808001u)), 0x3f81);
  EXPECT_TRUE(std::isnan(ccl::from_bf16(ccl::to_bf16(std::numeric_limits<float>::quiet_NaN()))));
}

TEST(CclReference, MaxFollowsTheSe) {
  float nan = std::numeric_limits<float>::quiet_NaN();
  auto a = f32({nan, -0.0f, 3.0f}), b = f32({2.0f, 0.0f, -4.0f});
  std::vector<std::span<const std::byte>> in{a, b};
  auto out = ccl::reference_reduce(in, ccl::DType::f32, ccl::Op::max);
  EXPECT_EQ(at(out, 0), 2.0f);  // a NaN operand loses (RISC-V fmax)
  EXPECT_FALSE(std::signbit(at(out, 1)));
  EXPECT_EQ(at(out, 2), 3.0f);
}

TEST(CclReference, RejectsMismatchedInputs) {
  auto a = f32({1.0f}), b = f32({1.0f, 2.0f});
  std::vector<std::span<const std::byte>> in{a, b};
  EXPECT_THROW((void)ccl::reference_reduce(in, ccl::DType::f32, ccl::Op::sum), kiln::Error);
  EXPECT_THROW((void)ccl::reference_reduce({}, ccl::DType::f32, ccl::Op::sum), kiln::Error);
}

}  // namespace
