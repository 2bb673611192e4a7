// SPDX-License-Identifier: MIT
// In-VM googletest binary for the harness self-test: one test of each outcome, so
// tests/harness/selftest.py can check that scripts/run-tests reports exactly
// "3 passed, 1 failed, 1 skipped" for it and runs "Unprivileged" tests as uid 1000.
#include <gtest/gtest.h>
#include <grp.h>
#include <unistd.h>

#include <vector>

TEST(HarnessSelfTest, Passes) { EXPECT_EQ(2 + 2, 4); }

TEST(HarnessSelfTest, FailsDeliberately) { EXPECT_EQ(1, 2) << "deliberate failure"; }

TEST(HarnessSelfTest, SkipsDeliberately) { GTEST_SKIP() << "deliberate skip"; }

TEST(HarnessSelfTest, RunsAsRoot) { EXPECT_EQ(getuid(), 0u); }

TEST(HarnessSelfTest, UnprivilegedRunsAsUserInRenderGroup) {
  EXPECT_EQ(getuid(), 1000u);
  struct group *render = getgrnam("render");
  ASSERT_NE(render, nullptr);
  std::vector<gid_t> groups(static_cast<size_t>(getgroups(0, nullptr)));
  getgroups(static_cast<int>(groups.size()), groups.data());
  bool in_render = false;
  for (gid_t g : groups) in_render |= (g == render->gr_gid);
  EXPECT_TRUE(in_render) << "uid 1000 is not in the render group";
}
