// SPDX-License-Identifier: MIT
// Real kiln-cc output parsed and loaded by libkiln (fake driver, on the host).
#include <gtest/gtest.h>

#include <kiln/kiln.hpp>

#include "fake_driver.hpp"

extern const unsigned char kiln_test_kernels[];
extern const std::size_t kiln_test_kernels_size;

TEST(KilnCcOutput, LoadsAndExposesMetadata) {
  auto dev = kiln::detail::HandleAccess::device(std::make_shared<kiln::detail::FakeDriver>());
  auto m = dev.load(std::as_bytes(std::span(kiln_test_kernels, kiln_test_kernels_size)), "test_kernels.kbin");
  auto k = m.kernel("vadd");
  ASSERT_EQ(k.args().size(), 4u);
  EXPECT_EQ(k.args()[2].access, kiln::Access::read_write);
  EXPECT_EQ(k.args()[3].type, kiln::ScalarType::u32);
  EXPECT_TRUE(m.has_kernel("bad_store"));
  EXPECT_TRUE(m.has_kernel("spin"));
  EXPECT_EQ(m.target().isa_version, 1u);
}
