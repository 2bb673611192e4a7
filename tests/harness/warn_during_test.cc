// SPDX-License-Identifier: MIT
// In-VM googletest binary for the harness self-test: the second test makes the guest
// kernel WARN (by loading tests/harness/warn_mod, copied to /tmp by the self-test) and
// itself passes.  scripts/run-tests must still fail the run and blame this test.
#include <gtest/gtest.h>
#include <cstdlib>

TEST(HarnessWarn, Before) { SUCCEED(); }

TEST(HarnessWarn, LoadsWarningModule) {
  ASSERT_EQ(std::system("insmod /tmp/kiln_harness_warn.ko"), 0);
}

TEST(HarnessWarn, After) { SUCCEED(); }
