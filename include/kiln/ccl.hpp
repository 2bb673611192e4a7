// SPDX-License-Identifier: MIT
// kiln::ccl — collectives over Kiln devices (docs/collectives.md).
//
// A Communicator is one rank's view of a group of devices: either the devices
// of one process (Communicator::local, one rank per device, each rank's calls
// made from its own thread) or the ranks of an MPI job (Communicator::mpi, one
// device per rank). Collectives run on a kiln::Queue of the rank's device:
// they start after the work already submitted to that queue and return the
// Event of their last submission. Reductions run on the devices' SE units
// (a kiln-cc kernel); data moves between devices through shared pinned host
// memory (local) or MPI (ranks). Results are bit-identical to the reference
// reduction in rank order (kiln::ccl::reference_reduce).
#pragma once

#include <mpi.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "kiln/kiln.hpp"

namespace kiln::ccl {

enum class DType : uint32_t { f32 = 0, bf16 = 1 };
enum class Op : uint32_t { sum = 0, max = 1 };
/// automatic: tree up to Options::tree_max_bytes, ring above.
enum class Algorithm : uint32_t { automatic = 0, ring = 1, tree = 2 };

[[nodiscard]] constexpr size_t dtype_size(DType t) noexcept { return t == DType::bf16 ? 2 : 4; }
[[nodiscard]] std::string_view to_string(DType t) noexcept;
[[nodiscard]] std::string_view to_string(Op o) noexcept;
[[nodiscard]] std::string_view to_string(Algorithm a) noexcept;

struct Options {
  Algorithm algorithm = Algorithm::automatic;
  /// Allreduce payloads up to this many bytes use the tree (latency-bound), larger the ring.
  size_t tree_max_bytes = 64 << 10;
  /// A collective is run in pieces of at most this many bytes per rank; host staging
  /// and device scratch are sized from it (about (size + 2) pieces per rank).
  size_t piece_bytes = 4 << 20;
};

/// What the collectives of a communicator cost, summed since creation or reset().
/// "Modelled" is the device's cost model (the chip's time), from the job status of
/// every submission the collectives made; wall is host time, emulator included.
struct Stats {
  uint64_t collectives = 0;
  uint64_t bytes_sent = 0;                    ///< bytes this rank sent to its peers
  std::chrono::nanoseconds modelled_copy{};   ///< device DMA to/from staging (over the host link)
  std::chrono::nanoseconds modelled_reduce{}; ///< reduction kernels on the SE
  std::chrono::nanoseconds wall{};            ///< host time inside collective calls
  [[nodiscard]] std::chrono::nanoseconds modelled() const noexcept { return modelled_copy + modelled_reduce; }
};

namespace detail {
struct Comm;
}

class Communicator {
 public:
  /// One rank of an MPI job: `comm` (duplicated; the caller may free its own) and
  /// the device this rank uses. Collective over `comm`: every rank must call it.
  [[nodiscard]] static Communicator mpi(MPI_Comm comm, Device dev, Options opt = {});
  /// One rank per device of this process, rank i on devs[i] (the same device may
  /// appear several times: each rank opens its own context). Each rank's
  /// collectives must be called from a thread of its own, in the same order on
  /// every rank, as with MPI.
  [[nodiscard]] static std::vector<Communicator> local(std::span<const Device> devs, Options opt = {});

  Communicator(Communicator&&) noexcept;
  Communicator& operator=(Communicator&&) noexcept;
  ~Communicator();

  [[nodiscard]] int rank() const noexcept;
  [[nodiscard]] int size() const noexcept;
  /// The rank's device (a cheap handle: copies share the open device).
  [[nodiscard]] Device device() const noexcept;
  [[nodiscard]] const Options& options() const noexcept;

  /// recv[i] = send_0[i] op send_1[i] op ... op send_{n-1}[i] (rank order), `count`
  /// elements at the buffers' starts. send and recv may be the same buffer.
  Event allreduce(Queue& q, const Buffer& send, const Buffer& recv, size_t count, DType t, Op op);
  /// recv (recv_count elements) = block `rank` of the reduction of every rank's send
  /// (size() * recv_count elements).
  Event reduce_scatter(Queue& q, const Buffer& send, const Buffer& recv, size_t recv_count, DType t, Op op);
  /// recv (size() * send_count elements) = every rank's send, in rank order.
  Event allgather(Queue& q, const Buffer& send, const Buffer& recv, size_t send_count, DType t);
  /// buf (count elements) = root's buf on every rank.
  Event broadcast(Queue& q, const Buffer& buf, size_t count, DType t, int root);
  /// Returns when every rank's queue has finished the work submitted before its barrier().
  Event barrier(Queue& q);

  /// The algorithm allreduce uses for `count` elements of `t`.
  [[nodiscard]] Algorithm allreduce_algorithm(size_t count, DType t) const noexcept;
  [[nodiscard]] const Stats& stats() const noexcept;
  /// True when the ranks' devices read each other's staging in device DRAM (peer DMA,
  /// local communicators on devices that allow it); false when staging is in host memory.
  [[nodiscard]] bool peer_dma() const noexcept;
  void reset_stats() noexcept;

 private:
  explicit Communicator(std::unique_ptr<detail::Comm> c);
  std::unique_ptr<detail::Comm> c_;
};

/// The reference: `inputs` (one span of raw elements per rank) reduced in rank order
/// exactly as the devices do (fp32 accumulation, one RNE rounding to bf16 at the end).
[[nodiscard]] std::vector<std::byte> reference_reduce(std::span<const std::span<const std::byte>> inputs, DType t,
                                                      Op op);
/// bf16 <-> fp32 as the device's SE converts (RNE; NaN stays NaN).
[[nodiscard]] uint16_t to_bf16(float f) noexcept;
[[nodiscard]] float from_bf16(uint16_t b) noexcept;

}  // namespace kiln::ccl
