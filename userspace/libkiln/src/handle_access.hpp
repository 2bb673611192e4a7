// SPDX-License-Identifier: MIT
// The one way into the state behind libkiln's public handles. The handles keep
// it private so that an application sees only the API; libkiln's implementation,
// the libraries built beside it (kiln::ccl) and the unit tests with their fake
// driver come through here.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "kiln/kiln.hpp"

namespace kiln::detail {

class Driver;
struct Bo;
struct DeviceState;
struct ModuleState;
struct Submission;
struct Recording;
struct QueueState;

struct HandleAccess {
  static const std::shared_ptr<DeviceState>& state(const Device& d) noexcept { return d.s_; }
  static Device device(std::shared_ptr<DeviceState> s) { return Device(std::move(s)); }
  /// A device on an explicit driver implementation (the unit tests' fake driver).
  static Device device(std::shared_ptr<Driver> driver, std::string path = "fake") {
    return Device::from_driver(std::move(driver), std::move(path));
  }

  static const std::shared_ptr<Bo>& bo(const Buffer& b) noexcept { return b.bo_; }
  static Buffer buffer(std::shared_ptr<Bo> bo) { return Buffer(std::move(bo)); }

  static const std::shared_ptr<ModuleState>& state(const Module& m) noexcept { return m.s_; }
  static Module module(std::shared_ptr<ModuleState> s) { return Module(std::move(s)); }
  static const std::shared_ptr<ModuleState>& module(const Kernel& k) noexcept { return k.m_; }
  static Kernel kernel(std::shared_ptr<ModuleState> m, const KernelInfo* info) { return Kernel(std::move(m), info); }
  static const std::vector<std::shared_ptr<Bo>>& buffers(const Args& a) noexcept { return a.bos_; }

  static const std::shared_ptr<Submission>& submission(const Event& e) noexcept { return e.s_; }
  static Event event(std::shared_ptr<Submission> s) { return Event(std::move(s)); }
  static const std::unique_ptr<Recording>& recording(const CommandList& c) noexcept { return c.r_; }
  static const std::shared_ptr<QueueState>& state(const Queue& q) noexcept { return q.s_; }
  static Queue queue(std::shared_ptr<QueueState> s) { return Queue(std::move(s)); }
};

}  // namespace kiln::detail
