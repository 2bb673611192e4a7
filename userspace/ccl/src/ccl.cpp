// SPDX-License-Identifier: MIT
// kiln::ccl: communicators, the ring and tree algorithms, the two transports.
//
// Every collective is a sequence of rounds that all ranks run in step. In a
// round a rank sends at most one contiguous range to each peer and receives
// at most one from each, then records device work (reductions) on what it
// received:
//   1. copy-out: one submission copies the ranges to send from device
//      buffers into this rank's staging buffer: in device DRAM for a local
//      communicator whose devices reach each other's DRAM (peer DMA), else
//      pinned host memory (device DMA over the host link);
//   2. agree: the ranks exchange their status; if any rank failed (a device
//      fault, a lost device), every rank throws the same error naming it, so
//      a fault never leaves a peer waiting for data;
//   3. move: with peer DMA (every rank on this machine, DRAM staging that
//      every device imported at creation: PRIME within the process, dma-buf
//      fds over Unix sockets between MPI ranks) only the offsets of the
//      ranges travel, through MPI or shared memory, and the receiver's DMA
//      engine reads the sender's staging directly. Otherwise MPI moves the
//      bytes between host staging buffers with Isend/Irecv (a local group
//      without peer DMA imports the peers' host staging instead);
//   4. copy-in: one submission copies the received ranges into device
//      buffers (local: straight from the peer's staging buffer), then one with
//      the reduction launches; agree again, so a staging buffer is reused
//      only after every reader is done.
// The host waits for each submission: MPI has to see the data complete, and
// a local peer may read a staging buffer only once it is written.
#include "kiln/ccl.hpp"

#include "fd_share.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <barrier>
#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <unistd.h>

extern const unsigned char kiln_ccl_reduce_kbin[];
extern const size_t kiln_ccl_reduce_kbin_size;

namespace kiln::ccl {

std::string_view to_string(DType t) noexcept { return t == DType::bf16 ? "bf16" : "f32"; }
std::string_view to_string(Op o) noexcept { return o == Op::max ? "max" : "sum"; }
std::string_view to_string(Algorithm a) noexcept {
  switch (a) {
    case Algorithm::ring: return "ring";
    case Algorithm::tree: return "tree";
    default: return "automatic";
  }
}

// ---- the reference -----------------------------------------------------------------------

uint16_t to_bf16(float f) noexcept {
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN, sign kept
  u += 0x7fffu + ((u >> 16) & 1);
  return uint16_t(u >> 16);
}

float from_bf16(uint16_t b) noexcept { return std::bit_cast<float>(uint32_t(b) << 16); }

namespace {

constexpr uint32_t kCanonicalNan = 0x7fc00000u;

float canon(float v) noexcept { return std::isnan(v) ? std::bit_cast<float>(kCanonicalNan) : v; }

// The SE's fmax: RISC-V semantics (a NaN operand loses; -0 < +0), canonical NaN.
float fmax_rv(float a, float b) noexcept {
  if (std::isnan(a) && std::isnan(b)) return std::bit_cast<float>(kCanonicalNan);
  if (std::isnan(a)) return b;
  if (std::isnan(b)) return a;
  if (a == 0 && b == 0) return std::signbit(a) ? b : a;
  return a > b ? a : b;
}

float apply(Op op, float a, float b) noexcept { return op == Op::max ? fmax_rv(a, b) : canon(a + b); }

float load(std::span<const std::byte> s, size_t i, DType t) noexcept {
  if (t == DType::bf16) {
    uint16_t v;
    std::memcpy(&v, s.data() + i * 2, 2);
    return from_bf16(v);
  }
  float f;
  std::memcpy(&f, s.data() + i * 4, 4);
  return f;
}

}  // namespace

std::vector<std::byte> reference_reduce(std::span<const std::span<const std::byte>> inputs, DType t, Op op) {
  if (inputs.empty()) throw Error(Errc::invalid_argument, "reference_reduce: inputs is empty");
  size_t es = dtype_size(t), n = inputs[0].size() / es;
  for (auto& in : inputs)
    if (in.size() != inputs[0].size())
      throw Error(Errc::invalid_argument, "reference_reduce: inputs differ in size");
  std::vector<std::byte> out(n * es);
  for (size_t i = 0; i < n; i++) {
    float acc = load(inputs[0], i, t);
    // One input: the devices copy it unchanged, bits and all.
    if (inputs.size() == 1) {
      std::memcpy(out.data() + i * es, inputs[0].data() + i * es, es);
      continue;
    }
    for (size_t r = 1; r < inputs.size(); r++) acc = apply(op, acc, load(inputs[r], i, t));
    if (t == DType::bf16) {
      uint16_t b = to_bf16(acc);
      std::memcpy(out.data() + i * 2, &b, 2);
    } else {
      std::memcpy(out.data() + i * 4, &acc, 4);
    }
  }
  return out;
}

namespace detail {

namespace {

struct Send {
  int peer;
  const Buffer* buf;
  size_t off, bytes;
};
struct Recv {
  int peer;
  const Buffer* buf;
  size_t off, bytes;
};

// What a failed rank tells its peers.
struct Failure {
  int rank = -1;
  int code = 0;
  std::string what;
};

}  // namespace

// How the bytes of a round get from one rank's staging buffer to another rank.
class Transport {
 public:
  virtual ~Transport() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Collective: every rank's status in, the lowest failed rank's out (rank -1: none).
  virtual Failure agree(const Failure& mine) = 0;
  /// Collective: after copy-out. Makes the sends' bytes (in `out` at `out_off[i]`)
  /// available to their peers; returns for each recv the buffer and offset to copy from.
  virtual void move(std::span<const Send> sends, std::span<const size_t> out_off, std::span<const Recv> recvs,
                    std::vector<std::pair<const Buffer*, size_t>>& from) = 0;
  /// Staging this rank sends from.
  virtual const Buffer& out() const = 0;
  virtual void barrier() = 0;
};

// ---- MPI ---------------------------------------------------------------------------------

namespace {

void mpi_check(int rc, const char* call) {
  if (rc == MPI_SUCCESS) return;
  char msg[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, msg, &len);
  throw Error(Errc::io_error, fmt::format("kiln::ccl: {} failed: {}", call, std::string_view(msg, size_t(len))));
}

class MpiTransport final : public Transport {
 public:
  MpiTransport(MPI_Comm comm, Device& dev, size_t out_bytes, size_t in_bytes) {
    int inited = 0;
    MPI_Initialized(&inited);
    if (!inited) throw Error(Errc::invalid_argument, "Communicator::mpi: MPI is not initialised (call MPI_Init first)");
    if (comm == MPI_COMM_NULL) throw Error(Errc::invalid_argument, "Communicator::mpi: comm is MPI_COMM_NULL");
    mpi_check(MPI_Comm_dup(comm, &comm_), "MPI_Comm_dup");
    MPI_Comm_rank(comm_, &rank_);
    MPI_Comm_size(comm_, &size_);
    if (!share_dram_staging(dev, out_bytes)) {
      out_ = dev.alloc(out_bytes, Memory::host);
      in_ = dev.alloc(in_bytes, Memory::host);
    }
  }
  ~MpiTransport() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  const Buffer& out() const override { return out_; }
  bool peer_dma() const { return !peers_.empty(); }

  Failure agree(const Failure& mine) override {
    // The lowest failed rank (size_ = none) decides; it then broadcasts its code and message.
    int me = mine.rank >= 0 ? rank_ : size_, who = size_;
    mpi_check(MPI_Allreduce(&me, &who, 1, MPI_INT, MPI_MIN, comm_), "MPI_Allreduce");
    if (who == size_) return {};
    char msg[512] = {};
    int code = mine.code;
    if (who == rank_) std::snprintf(msg, sizeof msg, "%s", mine.what.c_str());
    mpi_check(MPI_Bcast(&code, 1, MPI_INT, who, comm_), "MPI_Bcast");
    mpi_check(MPI_Bcast(msg, sizeof msg, MPI_CHAR, who, comm_), "MPI_Bcast");
    return {who, code, msg};
  }

  void move(std::span<const Send> sends, std::span<const size_t> out_off, std::span<const Recv> recvs,
            std::vector<std::pair<const Buffer*, size_t>>& from) override {
    if (peer_dma()) return tell_offsets(sends, out_off, recvs, from);
    auto out = out_.map(), in = in_.map();
    std::vector<MPI_Request> reqs;
    size_t in_off = 0;
    from.clear();
    for (auto& r : recvs) {
      if (in_off + r.bytes > in.size())
        throw Error(Errc::invalid_argument, "kiln::ccl: a round receives more than the staging holds");
      post(reqs, MPI_Irecv, in.data() + in_off, r.bytes, r.peer);
      from.emplace_back(&in_, in_off);
      in_off += r.bytes;
    }
    for (size_t i = 0; i < sends.size(); i++)
      post(reqs, nullptr, out.data() + out_off[i], sends[i].bytes, sends[i].peer);
    mpi_check(MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
  }

  void barrier() override { mpi_check(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  // When every rank is on this machine and the devices reach each other's DRAM: staging
  // in device DRAM, every peer's imported (its dma-buf passed over a Unix socket), so a
  // round moves only offsets through MPI and the bytes by peer DMA. Collective; every
  // rank returns the same. A communicator that spans machines uses MPI for every peer.
  bool share_dram_staging(Device& dev, size_t out_bytes) {
    MPI_Comm node = MPI_COMM_NULL;
    mpi_check(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node),
              "MPI_Comm_split_type");
    int node_size = 0;
    MPI_Comm_size(node, &node_size);
    bool ok = node_size == size_ && size_ > 1;
    if (ok) {
      int fd = -1;
      try {
        out_ = dev.alloc(out_bytes, Memory::device);
        fd = out_.export_dmabuf();
      } catch (const Error&) {
        fd = -1;  // peers learn it from share_fds' agreement
      }
      auto [fds, shared] = share_fds(node, fd);
      if (fd >= 0) ::close(fd);
      std::vector<Buffer> peers(static_cast<size_t>(size_));
      for (size_t r = 0; r < fds.size(); r++) {
        if (fds[r] < 0) continue;
        try {
          if (shared) peers[r] = dev.import_dmabuf(fds[r]);
        } catch (const Error&) {
          shared = false;  // e.g. not_supported: kiln.p2p forbids it
        }
        ::close(fds[r]);
      }
      int mine = shared, every = 0;
      mpi_check(MPI_Allreduce(&mine, &every, 1, MPI_INT, MPI_MIN, node), "MPI_Allreduce");
      ok = every;
      if (ok) peers_ = std::move(peers);
    }
    MPI_Comm_free(&node);
    if (!ok) out_ = Buffer();
    return ok;
  }

  // Peer DMA: each receiver learns where in the sender's staging its bytes are.
  void tell_offsets(std::span<const Send> sends, std::span<const size_t> out_off, std::span<const Recv> recvs,
                    std::vector<std::pair<const Buffer*, size_t>>& from) {
    std::vector<uint64_t> in_off(recvs.size()), sent_off(out_off.begin(), out_off.end());
    std::vector<MPI_Request> reqs(recvs.size() + sends.size());
    for (size_t i = 0; i < recvs.size(); i++)
      mpi_check(MPI_Irecv(&in_off[i], 1, MPI_UINT64_T, recvs[i].peer, kTag, comm_, &reqs[i]), "MPI_Irecv");
    for (size_t i = 0; i < sends.size(); i++)
      mpi_check(MPI_Isend(&sent_off[i], 1, MPI_UINT64_T, sends[i].peer, kTag, comm_, &reqs[recvs.size() + i]),
                "MPI_Isend");
    mpi_check(MPI_Waitall(int(reqs.size()), reqs.data(), MPI_STATUSES_IGNORE), "MPI_Waitall");
    from.clear();
    for (size_t i = 0; i < recvs.size(); i++) from.emplace_back(&peers_[size_t(recvs[i].peer)], size_t(in_off[i]));
  }

  using IrecvFn = int (*)(void*, int, MPI_Datatype, int, int, MPI_Comm, MPI_Request*);
  // MPI counts are ints: a message of more than 2 GiB goes in parts.
  void post(std::vector<MPI_Request>& reqs, IrecvFn recv, std::byte* p, size_t bytes, int peer) {
    constexpr size_t kMax = size_t(1) << 30;
    for (size_t o = 0; o < bytes || (bytes == 0 && o == 0); o += kMax) {
      int n = int(std::min(kMax, bytes - o));
      MPI_Request rq;
      if (recv)
        mpi_check(recv(p + o, n, MPI_BYTE, peer, kTag, comm_, &rq), "MPI_Irecv");
      else
        mpi_check(MPI_Isend(p + o, n, MPI_BYTE, peer, kTag, comm_, &rq), "MPI_Isend");
      reqs.push_back(rq);
      if (bytes == 0) break;
    }
  }
  static constexpr int kTag = 0x4b31;
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
  Buffer out_, in_;
  std::vector<Buffer> peers_;  // peer DMA: rank r's staging, imported (empty: MPI moves the bytes)
};

// ---- one process, several devices -------------------------------------------------------

// Shared by the ranks of a local group.
struct LocalGroup {
  explicit LocalGroup(int n) : size(n), sync(n), failures(size_t(n)), offsets(size_t(n) * size_t(n)) {}
  int size;
  std::barrier<> sync;
  std::vector<Failure> failures;
  std::vector<size_t> offsets;  // [src * size + dst]: where src put dst's bytes in its staging
};

class LocalTransport final : public Transport {
 public:
  LocalTransport(std::shared_ptr<LocalGroup> g, int rank, Buffer out) : g_(std::move(g)), rank_(rank), out_(std::move(out)) {}
  int rank() const override { return rank_; }
  int size() const override { return g_->size; }
  const Buffer& out() const override { return out_; }
  /// peers[p]: rank p's staging as imported into this rank's device.
  std::vector<Buffer> peers;

  Failure agree(const Failure& mine) override {
    g_->failures[size_t(rank_)] = mine;
    g_->sync.arrive_and_wait();
    Failure f;
    for (auto& x : g_->failures)
      if (x.rank >= 0) {
        f = x;
        break;
      }
    // Nobody may overwrite a status before everyone has read it.
    g_->sync.arrive_and_wait();
    return f;
  }

  void move(std::span<const Send> sends, std::span<const size_t> out_off, std::span<const Recv> recvs,
            std::vector<std::pair<const Buffer*, size_t>>& from) override {
    for (size_t i = 0; i < sends.size(); i++) g_->offsets[size_t(rank_) * size_t(g_->size) + size_t(sends[i].peer)] = out_off[i];
    g_->sync.arrive_and_wait();
    from.clear();
    for (auto& r : recvs)
      from.emplace_back(&peers[size_t(r.peer)], g_->offsets[size_t(r.peer) * size_t(g_->size) + size_t(rank_)]);
  }

  void barrier() override { g_->sync.arrive_and_wait(); }

 private:
  std::shared_ptr<LocalGroup> g_;
  int rank_;
  Buffer out_;
};

}  // namespace

// ---- one rank ----------------------------------------------------------------------------

struct Comm {
  Device dev;
  Options opt;
  std::unique_ptr<Transport> tr;
  Kernel reduce;  // kiln_ccl_reduce (kernels/ccl_reduce.c), embedded in the library
  Buffer scratch;  // received slices, then the fp32 accumulator
  size_t scratch_acc_off = 0;
  Stats stats;
  const char* what = "";  // the collective running, for messages
  uint64_t rounds = 0;    // rounds run since creation
  bool peer_dma = false;  // staging in device DRAM, read by the peers' DMA engines
  // KILN_CCL_INJECT_FAULT=<rank>:<round>: that rank's device traps in that round.
  int inject_rank = -1;
  uint64_t inject_round = 0;

  Comm(Device d, Options o) : dev(std::move(d)), opt(check(o)), reduce(load_reduce(dev)) {
    if (const char* f = std::getenv("KILN_CCL_INJECT_FAULT")) {
      unsigned long long r = 0;
      if (std::sscanf(f, "%d:%llu", &inject_rank, &r) != 2)
        throw Error(Errc::invalid_argument,
                    fmt::format("kiln::ccl: KILN_CCL_INJECT_FAULT='{}' is not <rank>:<round>", f));
      inject_round = r;
    }
  }

  static Options check(Options o) {
    if (o.piece_bytes < 4096 || o.piece_bytes % 4096)
      throw Error(Errc::invalid_argument,
                  fmt::format("kiln::ccl: Options::piece_bytes {} must be a positive multiple of 4096", o.piece_bytes));
    if (o.algorithm > Algorithm::tree)
      throw Error(Errc::invalid_argument, fmt::format("kiln::ccl: Options::algorithm {} is unknown", uint32_t(o.algorithm)));
    return o;
  }
  static Kernel load_reduce(Device& d) {
    auto mod = d.load(std::as_bytes(std::span(kiln_ccl_reduce_kbin, kiln_ccl_reduce_kbin_size)), "ccl_reduce.kbin");
    return mod.kernel("kiln_ccl_reduce");
  }

  int rank() const { return tr->rank(); }
  int size() const { return tr->size(); }

  void make_scratch() {
    size_t n = size_t(std::max(1, size() - 1));
    scratch_acc_off = n * opt.piece_bytes;
    scratch = dev.alloc(scratch_acc_off + 2 * opt.piece_bytes);
  }

  Launch grid() const { return {.grid = {std::max(1u, dev.info().pe_count()), 1, 1}}; }

  [[noreturn]] void fail(const Failure& f) {
    std::string msg = f.rank == rank() ? fmt::format("kiln::ccl {}: this rank ({}) failed: {}", what, f.rank, f.what)
                                       : fmt::format("kiln::ccl {}: rank {} of {} failed: {}", what, f.rank, size(), f.what);
    throw Error(f.rank == rank() ? Errc(f.code) : Errc::job_failed, msg);
  }

  // Run `body`; a kiln::Error (or any exception) becomes this rank's failure.
  template <class F>
  Failure attempt(F&& body) {
    try {
      body();
      return {};
    } catch (const Error& e) {
      return {rank(), int(e.errc()), e.what()};
    } catch (const std::exception& e) {
      return {rank(), int(Errc::io_error), e.what()};
    }
  }

  void agree(const Failure& mine) {
    Failure f = tr->agree(mine);
    // A rank that failed itself reports its own error; the others the lowest failed rank's.
    if (f.rank >= 0) fail(mine.rank >= 0 ? mine : f);
  }

  void account(const Event& e, std::chrono::nanoseconds& into) { into += e.usage().device_time; }

  // One round (see the top of the file). `reduce_work` records launches run after the copy-in.
  template <class R>
  void round(Queue& q, std::span<const Send> sends, std::span<const Recv> recvs, R&& reduce_work) {
    std::vector<size_t> out_off(sends.size());
    agree(attempt([&] {
      size_t off = 0;
      CommandList cl(dev);
      for (size_t i = 0; i < sends.size(); i++) {
        out_off[i] = off;
        if (sends[i].bytes) cl.copy(tr->out(), *sends[i].buf, sends[i].bytes, off, sends[i].off);
        off += sends[i].bytes;
        stats.bytes_sent += sends[i].bytes;
      }
      if (off > tr->out().size()) throw Error(Errc::invalid_argument, "kiln::ccl: a round sends more than the staging holds");
      if (!cl.empty()) {
        auto e = q.submit(cl);
        e.wait();
        account(e, stats.modelled_copy);
      }
    }));
    std::vector<std::pair<const Buffer*, size_t>> from;
    tr->move(sends, out_off, recvs, from);
    agree(attempt([&] {
      CommandList in(dev), red(dev);
      for (size_t i = 0; i < recvs.size(); i++)
        if (recvs[i].bytes) in.copy(*recvs[i].buf, *from[i].first, recvs[i].bytes, recvs[i].off, from[i].second);
      reduce_work(red);
      if (rank() == inject_rank && rounds == inject_round) {
        auto trap = dev.load(std::as_bytes(std::span(kiln_ccl_reduce_kbin, kiln_ccl_reduce_kbin_size)), "ccl_reduce.kbin")
                        .kernel("kiln_ccl_trap");
        cl_trap(red, trap);
      }
      Event ein, ered;
      if (!in.empty()) ein = q.submit(in);
      if (!red.empty()) ered = q.submit(red);
      if (ein.valid()) {
        ein.wait();
        account(ein, stats.modelled_copy);
      }
      if (ered.valid()) {
        ered.wait();
        account(ered, stats.modelled_reduce);
      }
    }));
    rounds++;
  }

  void cl_trap(CommandList& cl, const Kernel& trap) {
    Args a(trap);
    a.set(0, uint32_t(0xcc1));
    cl.launch(trap, {.grid = {1, 1, 1}}, a);
  }

  // out (type t) = in[0] op in[1] op ... in rank order, n elements; the inputs are
  // (buffer, byte offset) in the data type t. N >= 3 accumulates in fp32 scratch.
  void record_reduce(CommandList& cl, std::span<const std::pair<const Buffer*, size_t>> in, const Buffer& out,
                     size_t out_off, size_t n, DType t, Op op) {
    auto launch = [&](const Buffer& a, size_t aoff, uint32_t at, const Buffer& b, size_t boff, uint32_t bt,
                      const Buffer& o, size_t ooff, uint32_t ot) {
      Args args(reduce);
      args.set(0, uint32_t(op)).set(1, a, aoff).set(2, at).set(3, b, boff).set(4, bt).set(5, o, ooff).set(6, ot);
      args.set(7, uint64_t(n));
      cl.launch(reduce, grid(), args);
    };
    uint32_t ty = uint32_t(t), f32 = uint32_t(DType::f32);
    if (n == 0) return;
    if (in.size() == 1) {
      if (in[0].first != &out || in[0].second != out_off) cl.copy(out, *in[0].first, n * dtype_size(t), out_off, in[0].second);
      return;
    }
    if (in.size() == 2) {
      launch(*in[0].first, in[0].second, ty, *in[1].first, in[1].second, ty, out, out_off, ty);
      return;
    }
    const Buffer& acc = scratch;
    size_t aoff = scratch_acc_off;
    launch(*in[0].first, in[0].second, ty, *in[1].first, in[1].second, ty, acc, aoff, f32);
    for (size_t k = 2; k + 1 < in.size(); k++) launch(acc, aoff, f32, *in[k].first, in[k].second, ty, acc, aoff, f32);
    launch(acc, aoff, f32, *in.back().first, in.back().second, ty, out, out_off, ty);
  }

  // Block b of n elements split over `size()` ranks: [first, first + count).
  std::pair<size_t, size_t> block(size_t n, int b) const {
    size_t N = size_t(size()), base = n / N, rem = n % N;
    size_t first = size_t(b) * base + std::min(size_t(b), rem);
    return {first, base + (size_t(b) < rem)};
  }

  // Reduce-scatter of one piece: rank r gets the reduction of block r, where block b of
  // rank p's input is at src_off(b) in `send`, written to `recv` at dst_off. Direct: each
  // rank sends every peer its block, the owner reduces all of them in rank order.
  template <class Off>
  void rs_direct(Queue& q, const Buffer& send, Off src_off, std::span<const size_t> blk_n, const Buffer& recv,
                 size_t dst_off, DType t, Op op) {
    int N = size(), me = rank();
    size_t es = dtype_size(t);
    std::vector<Send> sends;
    std::vector<Recv> recvs;
    std::vector<std::pair<const Buffer*, size_t>> in(static_cast<size_t>(N));
    size_t slot = 0;
    for (int p = 0; p < N; p++) {
      if (p == me) {
        in[size_t(p)] = {&send, src_off(me)};
        continue;
      }
      sends.push_back({p, &send, src_off(p), blk_n[size_t(p)] * es});
      recvs.push_back({p, &scratch, slot, blk_n[size_t(me)] * es});
      in[size_t(p)] = {&scratch, slot};
      slot += blk_n[size_t(me)] * es;
    }
    round(q, sends, recvs, [&](CommandList& cl) { record_reduce(cl, in, recv, dst_off, blk_n[size_t(me)], t, op); });
  }

  // Ring allgather of one piece: block b (blk_bytes[b]) lives at off(b) in `buf` on rank b
  // and ends up at off(b) on every rank. N - 1 rounds, one block per link per round.
  template <class Off>
  void ag_ring(Queue& q, const Buffer& buf, Off off, std::span<const size_t> blk_bytes) {
    int N = size(), me = rank();
    for (int s = 0; s < N - 1; s++) {
      int sb = (me - s + N) % N, rb = (me - s - 1 + 2 * N) % N;
      Send snd{(me + 1) % N, &buf, off(sb), blk_bytes[size_t(sb)]};
      Recv rcv{(me - 1 + N) % N, &buf, off(rb), blk_bytes[size_t(rb)]};
      round(q, std::span(&snd, 1), std::span(&rcv, 1), [](CommandList&) {});
    }
  }

  // Binomial-tree broadcast of `bytes` at `off` in buf from root: ceil(log2 N) rounds.
  void bcast_tree(Queue& q, const Buffer& buf, size_t off, size_t bytes, int root) {
    int N = size(), me = (rank() - root + size()) % size();
    for (int k = 1; k < N; k <<= 1) {
      std::vector<Send> s;
      std::vector<Recv> r;
      if (me < k && me + k < N) s.push_back({(me + k + root) % N, &buf, off, bytes});
      if (me >= k && me < 2 * k) r.push_back({(me - k + root) % N, &buf, off, bytes});
      round(q, s, r, [](CommandList&) {});
    }
  }

  // Tree allreduce of one piece: rank 0 gathers every input and reduces them in rank
  // order (one round), then a binomial broadcast of the result.
  void allreduce_tree(Queue& q, const Buffer& send, const Buffer& recv, size_t off, size_t n, DType t, Op op) {
    int N = size(), me = rank();
    size_t bytes = n * dtype_size(t);
    std::vector<Send> sends;
    std::vector<Recv> recvs;
    std::vector<std::pair<const Buffer*, size_t>> in;
    if (me == 0) {
      in.emplace_back(&send, off);
      for (int p = 1; p < N; p++) {
        recvs.push_back({p, &scratch, size_t(p - 1) * bytes, bytes});
        in.emplace_back(&scratch, size_t(p - 1) * bytes);
      }
    } else {
      sends.push_back({0, &send, off, bytes});
    }
    round(q, sends, recvs, [&](CommandList& cl) {
      if (me == 0) record_reduce(cl, in, recv, off, n, t, op);
    });
    bcast_tree(q, recv, off, bytes, 0);
  }

  void allreduce_ring(Queue& q, const Buffer& send, const Buffer& recv, size_t off, size_t n, DType t, Op op) {
    int N = size();
    size_t es = dtype_size(t);
    const auto nb = static_cast<size_t>(N);
    std::vector<size_t> blk_n(nb), blk_b(nb), blk_first(nb);
    for (int b = 0; b < N; b++) {
      auto [f, c] = block(n, b);
      blk_first[size_t(b)] = off + f * es, blk_n[size_t(b)] = c, blk_b[size_t(b)] = c * es;
    }
    auto at = [&](int b) { return blk_first[size_t(b)]; };
    rs_direct(q, send, at, blk_n, recv, at(rank()), t, op);
    ag_ring(q, recv, at, blk_b);
  }

  // Pieces of at most piece_bytes / (what one round stages per element) elements.
  template <class F>
  void pieces(size_t n, size_t max_elems, F&& f) {
    for (size_t first = 0; first < n; first += max_elems) f(first, std::min(max_elems, n - first));
  }
};

namespace {

// Scoped: names the collective for error messages, counts it and its wall time.
struct Scope {
  Comm& c;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  Scope(Comm& comm, const char* what) : c(comm) {
    c.what = what;
    c.stats.collectives++;
  }
  ~Scope() { c.stats.wall += std::chrono::steady_clock::now() - t0; }
};

void check_buffer(const Buffer& b, size_t bytes, const char* fn, const char* name) {
  if (!b) throw Error(Errc::invalid_argument, fmt::format("kiln::ccl {}: {} is an empty Buffer", fn, name));
  if (bytes > b.size())
    throw Error(Errc::invalid_argument,
                fmt::format("kiln::ccl {}: {} holds {} bytes, the collective needs {}", fn, name, b.size(), bytes));
}

void check_types(DType t, Op op, const char* fn) {
  if (t != DType::f32 && t != DType::bf16)
    throw Error(Errc::invalid_argument, fmt::format("kiln::ccl {}: dtype {} is neither f32 nor bf16", fn, uint32_t(t)));
  if (op != Op::sum && op != Op::max)
    throw Error(Errc::invalid_argument, fmt::format("kiln::ccl {}: op {} is neither sum nor max", fn, uint32_t(op)));
}

void check_queue(const Comm& c, Queue& q, const char* fn) {
  if (q.device() != c.dev)
    throw Error(Errc::invalid_argument,
                fmt::format("kiln::ccl {}: the queue is not on this rank's device ({})", fn, c.dev.info().path));
}

}  // namespace

}  // namespace detail

// ---- Communicator ------------------------------------------------------------------------

Communicator::Communicator(std::unique_ptr<detail::Comm> c) : c_(std::move(c)) {}
Communicator::Communicator(Communicator&&) noexcept = default;
Communicator& Communicator::operator=(Communicator&&) noexcept = default;
Communicator::~Communicator() = default;

Communicator Communicator::mpi(MPI_Comm comm, Device dev, Options opt) {
  auto c = std::make_unique<detail::Comm>(std::move(dev), opt);
  int n = 1;
  if (comm != MPI_COMM_NULL) MPI_Comm_size(comm, &n);
  size_t stage = size_t(std::max(1, n - 1)) * opt.piece_bytes;
  auto t = std::make_unique<detail::MpiTransport>(comm, c->dev, stage, stage);
  c->peer_dma = t->peer_dma();
  c->tr = std::move(t);
  c->make_scratch();
  return Communicator(std::move(c));
}

namespace {

// One rank per device, each staging in `staging` memory; every device imports every
// rank's staging buffer (PRIME), so its DMA engine reads the peers' data there directly:
// no CPU copy between devices. Empty if a device refused a peer's buffer as not supported
// (device DRAM without peer DMA: kiln.p2p, docs/collectives.md).
std::vector<std::unique_ptr<detail::Comm>> make_local(std::span<const Device> devs, const Options& opt,
                                                      Memory staging) {
  int n = int(devs.size());
  auto g = std::make_shared<detail::LocalGroup>(n);
  std::vector<std::unique_ptr<detail::Comm>> comms;
  std::vector<detail::LocalTransport*> ts;
  for (int r = 0; r < n; r++) {
    auto c = std::make_unique<detail::Comm>(devs[size_t(r)], opt);
    size_t stage = size_t(std::max(1, n - 1)) * opt.piece_bytes;
    auto t = std::make_unique<detail::LocalTransport>(g, r, c->dev.alloc(stage, staging));
    ts.push_back(t.get());
    c->tr = std::move(t);
    c->peer_dma = staging == Memory::device;
    c->make_scratch();
    comms.push_back(std::move(c));
  }
  for (int r = 0; r < n; r++)
    for (int p = 0; p < n; p++) {
      int fd = ts[size_t(p)]->out().export_dmabuf();
      try {
        ts[size_t(r)]->peers.push_back(comms[size_t(r)]->dev.import_dmabuf(fd));
      } catch (const Error& e) {
        ::close(fd);
        if (e.errc() == Errc::not_supported && staging == Memory::device) return {};
        throw;
      }
      ::close(fd);
    }
  return comms;
}

}  // namespace

std::vector<Communicator> Communicator::local(std::span<const Device> devs, Options opt) {
  if (devs.empty()) throw Error(Errc::invalid_argument, "Communicator::local: devs is empty");
  // Staging in device DRAM when the devices reach each other's DRAM (peer DMA): a
  // round's bytes then cross the host link once, read by the receiver from the sender's
  // DRAM. Otherwise in pinned host memory, crossed twice (copy-out and copy-in).
  auto comms = make_local(devs, opt, Memory::device);
  if (comms.empty()) comms = make_local(devs, opt, Memory::host);
  std::vector<Communicator> out;
  for (auto& c : comms) out.push_back(Communicator(std::move(c)));
  return out;
}

int Communicator::rank() const noexcept { return c_->rank(); }
int Communicator::size() const noexcept { return c_->size(); }
Device Communicator::device() const noexcept { return c_->dev; }
const Options& Communicator::options() const noexcept { return c_->opt; }
const Stats& Communicator::stats() const noexcept { return c_->stats; }
bool Communicator::peer_dma() const noexcept { return c_->peer_dma; }
void Communicator::reset_stats() noexcept { c_->stats = {}; }

Algorithm Communicator::allreduce_algorithm(size_t count, DType t) const noexcept {
  if (c_->opt.algorithm != Algorithm::automatic) return c_->opt.algorithm;
  return count * dtype_size(t) <= c_->opt.tree_max_bytes ? Algorithm::tree : Algorithm::ring;
}

Event Communicator::allreduce(Queue& q, const Buffer& send, const Buffer& recv, size_t count, DType t, Op op) {
  auto& c = *c_;
  detail::Scope s(c, "allreduce");
  size_t es = dtype_size(t);
  // Arguments are agreed on like device errors: a rank that got bad ones fails them all.
  c.agree(c.attempt([&] {
    detail::check_types(t, op, "allreduce");
    detail::check_queue(c, q, "allreduce");
    detail::check_buffer(send, count * es, "allreduce", "send");
    detail::check_buffer(recv, count * es, "allreduce", "recv");
  }));
  Algorithm a = allreduce_algorithm(count, t);
  if (size() == 1) {
    if (&send != &recv && count) q.copy(recv, send, count * es);
    return q.barrier();
  }
  // Tree: root receives (size - 1) pieces into scratch; ring: a piece is split in size() blocks.
  size_t max_elems = c.opt.piece_bytes / es;
  c.pieces(count, max_elems, [&](size_t first, size_t n) {
    if (a == Algorithm::tree)
      c.allreduce_tree(q, send, recv, first * es, n, t, op);
    else
      c.allreduce_ring(q, send, recv, first * es, n, t, op);
  });
  return q.barrier();
}

Event Communicator::reduce_scatter(Queue& q, const Buffer& send, const Buffer& recv, size_t recv_count, DType t,
                                   Op op) {
  auto& c = *c_;
  detail::Scope s(c, "reduce_scatter");
  size_t es = dtype_size(t), N = size_t(size());
  c.agree(c.attempt([&] {
    detail::check_types(t, op, "reduce_scatter");
    detail::check_queue(c, q, "reduce_scatter");
    detail::check_buffer(send, N * recv_count * es, "reduce_scatter", "send");
    detail::check_buffer(recv, recv_count * es, "reduce_scatter", "recv");
  }));
  if (size() == 1) {
    if (&send != &recv && recv_count) q.copy(recv, send, recv_count * es);
    return q.barrier();
  }
  // A round receives (size - 1) blocks into scratch, each at most a piece.
  c.pieces(recv_count, c.opt.piece_bytes / es, [&](size_t first, size_t n) {
    std::vector<size_t> blk(N, n);
    c.rs_direct(q, send, [&](int b) { return (size_t(b) * recv_count + first) * es; }, blk, recv, first * es, t, op);
  });
  return q.barrier();
}

Event Communicator::allgather(Queue& q, const Buffer& send, const Buffer& recv, size_t send_count, DType t) {
  auto& c = *c_;
  detail::Scope s(c, "allgather");
  size_t es = dtype_size(t), N = size_t(size());
  c.agree(c.attempt([&] {
    detail::check_types(t, Op::sum, "allgather");
    detail::check_queue(c, q, "allgather");
    detail::check_buffer(send, send_count * es, "allgather", "send");
    detail::check_buffer(recv, N * send_count * es, "allgather", "recv");
  }));
  size_t me = size_t(rank());
  c.pieces(send_count, c.opt.piece_bytes / es, [&](size_t first, size_t n) {
    auto off = [&](int b) { return (size_t(b) * send_count + first) * es; };
    // Own block first (unless already in place), then the ring. Every rank agrees
    // here, whether it copied or not: the agreements are collective.
    c.agree(c.attempt([&] {
      if (n && (&send != &recv || off(int(me)) != first * es)) q.copy(recv, send, n * es, off(int(me)), first * es).wait();
    }));
    std::vector<size_t> blk(N, n * es);
    c.ag_ring(q, recv, off, blk);
  });
  return q.barrier();
}

Event Communicator::broadcast(Queue& q, const Buffer& buf, size_t count, DType t, int root) {
  auto& c = *c_;
  detail::Scope s(c, "broadcast");
  size_t es = dtype_size(t);
  c.agree(c.attempt([&] {
    detail::check_types(t, Op::sum, "broadcast");
    detail::check_queue(c, q, "broadcast");
    if (root < 0 || root >= size())
      throw Error(Errc::invalid_argument,
                  fmt::format("kiln::ccl broadcast: root {} is not a rank (0..{})", root, size() - 1));
    detail::check_buffer(buf, count * es, "broadcast", "buf");
  }));
  c.pieces(count, c.opt.piece_bytes / es, [&](size_t first, size_t n) { c.bcast_tree(q, buf, first * es, n * es, root); });
  return q.barrier();
}

Event Communicator::barrier(Queue& q) {
  auto& c = *c_;
  detail::Scope s(c, "barrier");
  detail::check_queue(c, q, "barrier");
  c.agree(c.attempt([&] { q.finish(); }));
  return q.barrier();
}

}  // namespace kiln::ccl
