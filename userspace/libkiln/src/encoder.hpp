// SPDX-License-Identifier: MIT
// libkiln internals: turning a recorded command list into one command buffer.
//
// The encoder is the pure half of a submission: it lays out packets, argument
// blocks, staging, debug and profile buffers, writes them into memory it is
// given, and lists the BOs the job uses. It makes no ioctl, so unit tests run
// it on plain memory (tests/sdk/test_encoder.cpp); QueueState::submit puts the
// result in a pooled host BO and submits it.
#pragma once

#include <uapi/drm/kiln_accel.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace kiln::detail {

struct Bo;
struct Recording;

struct EncodeOptions {
  uint32_t debug_bytes = 0;     ///< per launch: a device-written debug buffer; 0 none
  bool profiling = false;       ///< a profile buffer per launch
  bool pe_tracks = false;       ///< ... with room for per-PE timelines
  bool timestamps = false;      ///< TIMESTAMP packets around the commands
  uint32_t pes = 1;             ///< PEs of the device (profile buffer size)
  uint32_t max_cmd_size = 0;    ///< driver limits; 0: none known
  uint32_t max_submit_bos = 0;
};

/// What a submission must remember of its command buffer once it is encoded.
struct Encoded {
  uint64_t cmd_size = 0;                           ///< bytes of packets at offset 0
  std::vector<drm_kiln_bo_ref> bos;                ///< the SUBMIT BO list, one entry per BO
  std::vector<std::shared_ptr<Bo>> residency;      ///< kept alive until the job retired
  std::vector<std::pair<uint32_t, std::string>> packet_map;  ///< first packet -> command label
  std::string summary;                             ///< "; "-joined labels
  struct Readback {                                ///< staged device->host copy, done at retire
    uint64_t offset;
    std::span<std::byte> dst;
  };
  std::vector<Readback> readbacks;
  struct Launch {
    uint32_t command = 0;  ///< index into packet_map
    std::string kernel, module;
    uint64_t module_base = 0, module_size = 0;
    uint64_t debug_offset = 0;  ///< in the buffer; debug_size 0: none
    uint32_t debug_size = 0;
    uint64_t profile_offset = 0, profile_size = 0;  ///< profile_size 0: none
    std::array<uint32_t, 3> grid{1, 1, 1};
  };
  std::vector<Launch> launches;
  uint64_t ts_offset = 0;  ///< two struct kiln_timestamp, if timestamps
};

class Encoder {
 public:
  /// Lays `rec` out; throws Error(invalid_argument) past the driver's limits.
  Encoder(const Recording& rec, const EncodeOptions& opt);
  /// Bytes of the command buffer (packets and everything they point to).
  [[nodiscard]] uint64_t size() const noexcept { return size_; }
  /// Writes the command buffer into `buf` (size() bytes), which the device
  /// sees at `va` and which is the BO `self`, and lists what the job uses.
  [[nodiscard]] Encoded encode(std::span<std::byte> buf, uint64_t va, const std::shared_ptr<Bo>& self) const;

 private:
  const Recording& rec_;
  EncodeOptions opt_;
  uint64_t cmd_size_ = 0, ts_off_ = 0, size_ = 0, prof_size_ = 0;
  std::vector<uint64_t> data_off_, debug_off_, prof_off_;
};

}  // namespace kiln::detail
