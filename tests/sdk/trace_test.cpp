// SPDX-License-Identifier: MIT
// KILN_TRACE writes a Chrome trace of every submission.
#include <gtest/gtest.h>

#include <cstdlib>
#include <fstream>
#include <kiln/kiln.hpp>
#include <sstream>

#include "fake_driver.hpp"
#include "internal.hpp"

namespace {
const std::string kPath = ::testing::TempDir() + "kiln_trace_test.json";
struct SetEnv {
  SetEnv() { setenv("KILN_TRACE", kPath.c_str(), 1); }
} set_env;
}  // namespace

TEST(Trace, WritesChromeTraceWithModelledDeviceTimes) {
  {
    auto drv = std::make_shared<kiln::detail::FakeDriver>();
    auto dev = kiln::detail::HandleAccess::device(drv);
    auto q = dev.queue();
    auto b = dev.alloc(4096);
    q.fill(b, 1);
    q.fill(b, 2).wait();
  }
  kiln::detail::trace_flush();
  std::ifstream f(kPath);
  ASSERT_TRUE(f) << kPath;
  std::stringstream ss;
  ss << f.rdbuf();
  auto s = ss.str();
  EXPECT_NE(s.find("\"traceEvents\""), std::string::npos);
  EXPECT_NE(s.find("fill 4096 B"), std::string::npos) << s;
  EXPECT_NE(s.find("\"pid\":2"), std::string::npos);  // device track
  EXPECT_NE(s.find("kiln device (modelled time)"), std::string::npos);
  EXPECT_NE(s.find("\"cycles\":64"), std::string::npos) << s;  // the fake's fill of 4096 B
  EXPECT_NE(s.find("\"device_ns\":47"), std::string::npos) << s;  // 64 cycles at 1.35 GHz
  EXPECT_NE(s.find("\"emulator_ns\""), std::string::npos);
  EXPECT_EQ(s.back(), '\n');
  // The tracer starts at the first completion, after the first submission: time 0 is
  // that submission, not the tracer's start.
  EXPECT_EQ(s.find("\"ts\":-"), std::string::npos) << s;
}
