// SPDX-License-Identifier: MIT
#include "runtime.hpp"

#include <array>

#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

// torch 2.3 made Allocator::allocate non-const and added copy_data (for copy-on-write
// storage), and its autograd engine asks the PrivateUse1 hooks whether a device has a
// context; 1.13 (Debian 12) and 2.6 (Debian 13) are the versions built and tested.
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 3)
#define KILN_TORCH_2_3 1
#include <ATen/detail/PrivateUse1HooksInterface.h>
#else
#define KILN_TORCH_2_3 0
#endif

namespace kiln_torch {
namespace {

constexpr int kMaxDevices = 16;
constexpr int kMaxStreams = 64;
constexpr size_t kMaxPending = 512;   // completed events harvested beyond this many

thread_local int tls_device = 0;
thread_local std::array<int, kMaxDevices> tls_stream{};

// Sizes are rounded so that a training loop's tensors of slightly different
// sizes share cached blocks: 4 KiB pages up to 1 MiB, then 64 KiB steps.
size_t round_size(size_t n) {
  size_t step = n <= (1u << 20) ? 4096 : 65536;
  return (n + step - 1) / step * step;
}

void check_index(int index) {
  TORCH_CHECK(index >= 0 && index < Runtime::device_count(), "kiln: device index ", index, " is out of range (",
              Runtime::device_count(), " Kiln device(s))");
}

}  // namespace

int current_device() { return tls_device; }

void set_current_device(int index) {
  check_index(index);
  tls_device = index;
}

int Runtime::device_count() {
  static const int n = [] { return std::min<int>(int(kiln::enumerate().size()), kMaxDevices); }();
  return n;
}

Runtime& Runtime::get(int index) {
  static std::mutex mu;
  static std::array<std::unique_ptr<Runtime>, kMaxDevices> rts;
  std::lock_guard lk(mu);
  if (!rts.at(size_t(index))) {
    check_index(index);
    rts[size_t(index)].reset(new Runtime(index));
  }
  return *rts[size_t(index)];
}

Runtime::Runtime(int index) : index_(index), dev_(kiln::Device::open(index)), lib_(dev_) {
  queues_.push_back(std::make_unique<kiln::Queue>(dev_.queue()));
}

kiln::Queue& Runtime::queue() {
  std::lock_guard lk(mu_);
  return *queues_.at(size_t(tls_stream[size_t(index_)]));
}

int Runtime::new_stream() {
  std::lock_guard lk(mu_);
  TORCH_CHECK(queues_.size() < kMaxStreams, "kiln: at most ", kMaxStreams, " streams per device");
  queues_.push_back(std::make_unique<kiln::Queue>(dev_.queue()));
  return int(queues_.size() - 1);
}

int Runtime::current_stream() const { return tls_stream[size_t(index_)]; }

void Runtime::set_current_stream(int id) {
  TORCH_CHECK(id >= 0 && id < stream_count(), "kiln: stream ", id, " does not exist on device ", index_);
  tls_stream[size_t(index_)] = id;
}

int Runtime::stream_count() const {
  std::lock_guard lk(mu_);
  return int(queues_.size());
}

Block* Runtime::allocate(size_t bytes) {
  size_t want = round_size(std::max<size_t>(bytes, 1));
  int stream = current_stream();
  std::lock_guard lk(mu_);
  // Reuse a cached block of this stream no more than twice the size: the queue is in
  // order, so work queued on the block's previous tensor completes before new work.
  for (auto it = free_.lower_bound(want); it != free_.end() && it->first <= 2 * want; ++it) {
    if (it->second->stream != stream) continue;
    Block* b = it->second;
    free_.erase(it);
    mem_.allocated += int64_t(b->size);
    mem_.max_allocated = std::max(mem_.max_allocated, mem_.allocated);
    mem_.allocations++;
    mem_.cache_hits++;
    return b;
  }
  auto b = std::make_unique<Block>();
  try {
    b->buf = lib_.alloc(want);
  } catch (const kiln::Error& e) {
    if (e.code() != kiln::Errc::out_of_memory || free_.empty()) throw;
    // Out of device memory with blocks cached: give them back and try once more.
    for (auto& [sz, fb] : free_) {
      mem_.reserved -= int64_t(fb->size);
      live_.erase(fb->buf.device_address());
      delete fb;
    }
    free_.clear();
    b->buf = lib_.alloc(want);
  }
  b->size = b->buf.size();
  b->stream = stream;
  b->device = index_;
  mem_.allocated += int64_t(b->size);
  mem_.reserved += int64_t(b->size);
  mem_.max_allocated = std::max(mem_.max_allocated, mem_.allocated);
  mem_.max_reserved = std::max(mem_.max_reserved, mem_.reserved);
  mem_.allocations++;
  live_[b->buf.device_address()] = b.get();
  return b.release();
}

void Runtime::release(Block* b) noexcept {
  std::lock_guard lk(mu_);
  mem_.allocated -= int64_t(b->size);
  free_.emplace(b->size, b);
}

void Runtime::empty_cache() {
  std::lock_guard lk(mu_);
  for (auto& [sz, b] : free_) {
    mem_.reserved -= int64_t(b->size);
    live_.erase(b->buf.device_address());
    delete b;   // kiln::Buffer is released once queued work using it completes
  }
  free_.clear();
}

MemoryStats Runtime::memory_stats() const {
  std::lock_guard lk(mu_);
  return mem_;
}

void Runtime::reset_peak() {
  std::lock_guard lk(mu_);
  mem_.max_allocated = mem_.allocated;
  mem_.max_reserved = mem_.reserved;
}

Ref Runtime::find(const void* p) const {
  auto addr = uint64_t(reinterpret_cast<uintptr_t>(p));
  std::lock_guard lk(mu_);
  auto it = live_.upper_bound(addr);
  TORCH_CHECK(it != live_.begin(), "kiln: data pointer ", p, " is not in any buffer of device ", index_);
  --it;
  const Block* b = it->second;
  TORCH_CHECK(addr < it->first + b->size, "kiln: data pointer ", p, " is not in any buffer of device ", index_);
  return {&b->buf, addr - it->first};
}

void Runtime::launch(const kiln::Args& a) { track(lib_.run(queue(), a)); }

void Runtime::track(kiln::Event e) {
  std::lock_guard lk(mu_);
  pending_.push_back(std::move(e));
  // Bound the list: account for the oldest submissions (waiting for them if need be).
  while (pending_.size() > kMaxPending) account_front();
}

void Runtime::account_front() {
  stats_.submissions++;
  try {
    auto u = pending_.front().usage();
    stats_.cycles += u.cycles;
    stats_.energy_pj += u.energy_pj;
    stats_.device_time += u.device_time;
    stats_.emulator_time += u.emulator_time;
  } catch (const kiln::Error&) {
    // A failed job: Queue::finish() (synchronize(), every copy to the host) reports it.
    stats_.failed++;
  }
  pending_.pop_front();
}

void Runtime::harvest(bool all) {
  std::lock_guard lk(mu_);
  while (!pending_.empty()) {
    if (!all) {
      bool done;
      try {
        done = pending_.front().ready();
      } catch (const kiln::Error&) {
        done = true;
      }
      if (!done) break;
    }
    account_front();
  }
}

void Runtime::synchronize() {
  std::vector<kiln::Queue*> qs;
  {
    std::lock_guard lk(mu_);
    for (auto& q : queues_) qs.push_back(q.get());
  }
  for (auto* q : qs) q->finish();
  harvest(true);
}

DeviceStats Runtime::device_stats() {
  harvest(false);
  std::lock_guard lk(mu_);
  return stats_;
}

namespace {

void delete_block(void* ctx) {
  auto* b = static_cast<Block*>(ctx);
  Runtime::get(b->device).release(b);
}

#if KILN_TORCH_2_3
#define KILN_ALLOCATE_CONST
#else
#define KILN_ALLOCATE_CONST const
#endif

class KilnAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t n) KILN_ALLOCATE_CONST override {
    int dev = current_device();
    c10::Device device(kDeviceType, c10::DeviceIndex(dev));
    if (n == 0) return {nullptr, nullptr, &delete_block, device};
    Block* b = Runtime::get(dev).allocate(n);
    auto* data = reinterpret_cast<void*>(uintptr_t(b->buf.device_address()));
    return {data, b, &delete_block, device};
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }
#if KILN_TORCH_2_3
  // Kiln storage holds device addresses, which the host cannot memcpy; torch calls this
  // only to materialise a lazily cloned (copy-on-write) storage.
  void copy_data(void*, const void*, std::size_t) const override {
    TORCH_CHECK(false, "kiln: copy-on-write storage (torch._lazy_clone) is not supported on the kiln device");
  }
#endif
};
#undef KILN_ALLOCATE_CONST

KilnAllocator g_allocator;

// Device and stream bookkeeping for torch's DeviceGuard / StreamGuard: a stream id is
// an index into the device's queues.
struct KilnGuardImpl final : public c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override { return kDeviceType; }
  c10::Device exchangeDevice(c10::Device d) const override {
    c10::Device old = getDevice();
    if (d.index() != old.index()) set_current_device(d.index());
    return old;
  }
  c10::Device getDevice() const override { return {kDeviceType, c10::DeviceIndex(current_device())}; }
  void setDevice(c10::Device d) const override { set_current_device(d.index()); }
  void uncheckedSetDevice(c10::Device d) const noexcept override { tls_device = d.index(); }
  c10::Stream getStream(c10::Device d) const noexcept override {
    return c10::Stream(c10::Stream::UNSAFE, d, c10::StreamId(tls_stream[size_t(d.index())]));
  }
  c10::Stream getDefaultStream(c10::Device d) const override { return c10::Stream(c10::Stream::UNSAFE, d, 0); }
  c10::Stream exchangeStream(c10::Stream s) const noexcept override {
    auto old = getStream(s.device());
    tls_stream[size_t(s.device_index())] = int(s.id());
    return old;
  }
  c10::DeviceIndex deviceCount() const noexcept override { return c10::DeviceIndex(Runtime::device_count()); }
};

C10_REGISTER_GUARD_IMPL(PrivateUse1, KilnGuardImpl);

#if KILN_TORCH_2_3
// The autograd engine starts a thread per device and asks whether the device has a
// context to make current there: every Kiln device index torch sees can be opened.
struct KilnHooks final : public at::PrivateUse1HooksInterface {
  bool hasPrimaryContext(c10::DeviceIndex index) const override { return index < Runtime::device_count(); }
};

KilnHooks g_hooks;
#endif

struct RegisterAllocator {
  RegisterAllocator() {
    c10::SetAllocator(kDeviceType, &g_allocator);
#if KILN_TORCH_2_3
    at::RegisterPrivateUse1HooksInterface(&g_hooks);
#endif
  }
} g_register_allocator;

}  // namespace

c10::Allocator* allocator() { return &g_allocator; }

}  // namespace kiln_torch
