// SPDX-License-Identifier: MIT
// Runs a sample's main() as an in-VM googletest (the sample is compiled with
// -Dmain=kiln_sample_main).
#include <gtest/gtest.h>

int kiln_sample_main();

TEST(Sample, RunsAndSucceeds) {
  EXPECT_EQ(kiln_sample_main(), 0);
}
