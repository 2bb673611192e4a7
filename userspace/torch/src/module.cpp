// SPDX-License-Identifier: MIT
// kiln_torch._C: the Python side of the backend (device count, streams,
// synchronisation, memory and modelled-time statistics, op counters).
// Importing it registers the PrivateUse1 kernels, allocator and guard.
#include <torch/extension.h>

#include "counters.hpp"
#include "runtime.hpp"

namespace py = pybind11;
using kiln_torch::Runtime;

namespace {

int resolve(int device) { return device < 0 ? kiln_torch::current_device() : device; }

py::dict memory_stats(int device) {
  auto s = Runtime::get(resolve(device)).memory_stats();
  py::dict d;
  d["allocated_bytes"] = s.allocated;
  d["max_allocated_bytes"] = s.max_allocated;
  d["reserved_bytes"] = s.reserved;
  d["max_reserved_bytes"] = s.max_reserved;
  d["allocations"] = s.allocations;
  d["cache_hits"] = s.cache_hits;
  return d;
}

py::dict device_stats(int device) {
  auto s = Runtime::get(resolve(device)).device_stats();
  py::dict d;
  d["submissions"] = s.submissions;
  d["failed_submissions"] = s.failed;
  d["cycles"] = s.cycles;
  d["device_time_ns"] = s.device_time.count();
  d["emulator_time_ns"] = s.emulator_time.count();
  d["energy_j"] = double(s.energy_pj) * 1e-12;
  return d;
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "Kiln K1 as PyTorch's PrivateUse1 backend (docs/pytorch.md)";
  static py::exception<kiln::Error> kiln_error(m, "KilnError", PyExc_RuntimeError);
  py::register_exception<kiln::DeviceLost>(m, "DeviceLostError", kiln_error.ptr());

  m.def("device_count", &Runtime::device_count, "Kiln devices this process can open");
  m.def("diagnose", &kiln::diagnose, "why no Kiln device is usable");
  m.def("current_device", &kiln_torch::current_device);
  m.def("set_device", &kiln_torch::set_current_device, py::arg("device"));
  m.def(
      "synchronize", [](int device) { Runtime::get(resolve(device)).synchronize(); }, py::arg("device") = -1,
      py::call_guard<py::gil_scoped_release>(),
      "wait for all work queued on the device; raises KilnError with the SDK's message if any failed");
  m.def(
      "new_stream", [](int device) { return Runtime::get(resolve(device)).new_stream(); }, py::arg("device") = -1,
      "a new stream (its own kiln::Queue); returns its id");
  m.def(
      "current_stream", [](int device) { return Runtime::get(resolve(device)).current_stream(); },
      py::arg("device") = -1);
  m.def(
      "set_stream", [](int id, int device) { Runtime::get(resolve(device)).set_current_stream(id); }, py::arg("stream"),
      py::arg("device") = -1);
  m.def("memory_stats", &memory_stats, py::arg("device") = -1);
  m.def(
      "empty_cache", [](int device) { Runtime::get(resolve(device)).empty_cache(); }, py::arg("device") = -1);
  m.def(
      "reset_peak_memory_stats", [](int device) { Runtime::get(resolve(device)).reset_peak(); },
      py::arg("device") = -1);
  m.def("device_stats", &device_stats, py::arg("device") = -1,
        "modelled device figures of the work completed so far (call synchronize() first for all of it)");
  m.def("op_counts", &kiln_torch::op_counts, "ops run on the device, by name");
  m.def("fallback_counts", &kiln_torch::fallback_counts, "ops that ran on the CPU instead, by name");
  m.def("reset_counts", &kiln_torch::reset_counts);
}
