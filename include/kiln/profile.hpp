// SPDX-License-Identifier: MIT
// libkiln: the profile of a launch in modelled time (docs/profiling.md).
//
// Profiling is opt-in, per queue (QueueDesc::profiling) or for the whole
// program (KILN_PROFILE, or the kiln-prof wrapper). A profiled LAUNCH makes
// the device write the cost model's own counters (include/kiln/hw/
// kiln_profile.h): for every PE, its modelled cycles split by what it was
// doing; the bytes each fabric carried; the work of each unit; the energy.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace kiln {

/// What a PE spent a modelled cycle on (enum kiln_prof_activity).
enum class Activity : uint8_t {
  scalar,    ///< its hart's instructions (incl. issuing custom ones)
  dpe,       ///< dot-product engine
  se,        ///< SIMD engine
  re,        ///< reduction engine
  mlu,       ///< memory layout unit
  dma_wait,  ///< stalled in kiln.dma.wait
  barrier,   ///< at kiln.barrier until released
  fabric,    ///< held until DRAM/SRAM/host link carried every PE's traffic
  idle,      ///< no workgroup, or its workgroup ended, while the wave lasts
  launch,    ///< launch dispatch and wave replacement
};
inline constexpr size_t activity_count = 10;
[[nodiscard]] std::string_view to_string(Activity a) noexcept;

/// Shared fabrics (and the PEs' local ports) in LaunchProfile::bytes.
enum class Fabric : uint8_t { dram, sram, host, local };
inline constexpr size_t fabric_count = 4;
[[nodiscard]] std::string_view to_string(Fabric f) noexcept;

/// One interval of a PE's timeline, cycles from the start of the launch.
struct Segment {
  uint64_t start = 0;
  uint64_t cycles = 0;
  Activity activity = Activity::scalar;
};

struct PeProfile {
  std::array<uint64_t, activity_count> cycles{};  ///< by Activity; sums to the launch's cycles
  uint32_t workgroups = 0;                        ///< run on this PE
  /// Non-scalar intervals (gaps are scalar code), when the timeline was
  /// requested (KILN_PROFILE=pe-tracks); `dropped` did not fit.
  std::vector<Segment> timeline;
  uint64_t dropped = 0;
  [[nodiscard]] uint64_t operator[](Activity a) const noexcept { return cycles[size_t(a)]; }
};

/// The roofline of a launch: the shortest time the chip could take for its
/// work and traffic, what bounds it, and how close the launch came.
struct Roofline {
  std::string bound;          ///< "DPE", "SE", "DRAM", "SRAM", "host link", "local ports", "launch"
  uint64_t bound_cycles = 0;  ///< including the launch's fixed cost
  double fraction = 0;        ///< bound_cycles / the launch's cycles (1 = at the roofline)
};

/// One profiled LAUNCH. Every figure is the cost model's, exact and
/// deterministic: the same program gives the same profile on any host.
struct LaunchProfile {
  std::string kernel;  ///< name of the kernel launched
  std::array<uint32_t, 3> grid{1, 1, 1};
  uint32_t clock_mhz = 0;
  uint64_t cycles = 0;        ///< modelled cycles of the launch
  uint64_t start_cycles = 0;  ///< the device's modelled time (TOTAL_CYCLES) when it began
  uint32_t waves = 0;
  uint32_t launches = 0;      ///< launches whose figures this holds (1, or more after +=)
  uint64_t instructions = 0;  ///< retired by all PEs
  uint64_t energy_pj = 0;     ///< modelled energy (idle power + dynamic)
  std::array<uint64_t, fabric_count> bytes{};  ///< by Fabric, per crossing
  std::array<uint64_t, 4> macs{};              ///< DPE MACs: fp32, bf16, fp16, int8
  uint64_t se_elems = 0, se_transc_elems = 0, re_elems = 0, mlu_bytes = 0;
  std::vector<PeProfile> pes;  ///< one per PE of the device (empty if the record did not fit)

  [[nodiscard]] std::chrono::nanoseconds device_time() const noexcept;
  [[nodiscard]] double energy_j() const noexcept { return double(energy_pj) * 1e-12; }
  /// FLOP: 2 per MAC, 1 per SE or RE element.
  [[nodiscard]] uint64_t flops() const noexcept;
  /// Cycles of `a` summed over all PEs.
  [[nodiscard]] uint64_t total(Activity a) const noexcept;
  [[nodiscard]] Roofline roofline() const;
  /// Adds another launch's figures (e.g. to sum the launches of an epoch);
  /// the roofline of a sum is that of the launches back to back.
  LaunchProfile& operator+=(const LaunchProfile& o);
  /// A human-readable report: time, energy, what the PEs did, bytes, rates, roofline.
  [[nodiscard]] std::string report() const;
};

}  // namespace kiln
