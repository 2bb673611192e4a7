// SPDX-License-Identifier: MIT
// kiln_bench: the in-VM half of `make bench` (scripts/bench runs it). Each
// subcommand measures one thing against the real driver and device and
// prints one line per figure:  BENCH {"bench":"<name>", ...}
// or, when a prerequisite is missing,  BENCH {"bench":"<name>","skipped":"<why>"}.
// Not a test: nothing is asserted except that results are correct where
// checked (a wrong GEMM result is reported as an error, never as a speed).
//
//   kiln_bench gemm    --dtype f32|bf16 --sizes 256,512 [--min-time S] [--rounds R --peer-dir D]
//   kiln_bench dma     --max BYTES [--min-time S]          (h2d, d2h, d2d + guest memcpy)
//   kiln_bench latency --n N                               (no-op job round trip, job rates)
//   kiln_bench blk     --dev /dev/vda --n N                (4 KiB O_DIRECT read latency)
//   kiln_bench roundtrip --dev /dev/vda --n N --rounds R  (the two above, interleaved A/B)
//   kiln_bench interp  --kbin bench.kbin --iters N [--rounds R --peer-dir D]
//                                                          (every device: 1 PE and all PEs)
//   kiln_bench scale   --contexts C --jobs J --bos N       (contexts, BOs, DRAM fill)
//   kiln_bench telemetry                                    (device time / cycles counters)
//   kiln_bench sample  --name N --cmd "prog args"          (wall time + device time of a sample)
//
// --peer-dir D interleaves the host's peer with the device: after each round the
// guest creates D/turn-<tag> (D is in kiln-vm's writable share) and waits for
// D/done-<tag>, which scripts/bench creates once it has timed the peer for that
// round on the host. Load that comes and goes then hits both sides of a round.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <kiln/hw/kiln_isa.h>
#include <kiln/kiln.hpp>
#include <map>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace {

using clk = std::chrono::steady_clock;
double now() { return std::chrono::duration<double>(clk::now().time_since_epoch()).count(); }

// --- output -----------------------------------------------------------------------------
std::string jesc(const std::string& s) {
  std::string o;
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if (c == '\n') o += "\\n";
    else if (static_cast<unsigned char>(c) < 0x20) o += ' ';
    else o += c;
  }
  return o;
}

class Rec {
 public:
  explicit Rec(const std::string& bench) { s_ << "{\"bench\":\"" << jesc(bench) << "\""; }
  Rec& kv(const std::string& k, const std::string& v) {
    s_ << ",\"" << k << "\":\"" << jesc(v) << "\"";
    return *this;
  }
  Rec& kv(const std::string& k, const char* v) { return kv(k, std::string(v)); }
  Rec& kv(const std::string& k, double v) {
    char b[64];
    if (std::isfinite(v)) std::snprintf(b, sizeof b, "%.6g", v);
    else std::snprintf(b, sizeof b, "null");
    s_ << ",\"" << k << "\":" << b;
    return *this;
  }
  Rec& kv(const std::string& k, uint64_t v) {
    s_ << ",\"" << k << "\":" << v;
    return *this;
  }
  Rec& kv(const std::string& k, int v) { return kv(k, uint64_t(int64_t(v))); }
  Rec& kv(const std::string& k, uint32_t v) { return kv(k, uint64_t(v)); }
  Rec& arr(const std::string& k, const std::vector<double>& v) {
    s_ << ",\"" << k << "\":[";
    for (size_t i = 0; i < v.size(); i++) {
      char b[64];
      std::snprintf(b, sizeof b, "%s%.6g", i ? "," : "", v[i]);
      s_ << b;
    }
    s_ << "]";
    return *this;
  }
  void emit() {
    std::printf("BENCH %s}\n", s_.str().c_str());
    std::fflush(stdout);
  }

 private:
  std::ostringstream s_;
};

void skipped(const std::string& bench, const std::string& why) { Rec(bench).kv("skipped", why).emit(); }
void failed(const std::string& bench, const std::string& why) { Rec(bench).kv("error", why).emit(); }

double pct(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  size_t i = size_t(std::ceil(p / 100.0 * double(v.size()))) ;
  i = i ? i - 1 : 0;
  return v[std::min(i, v.size() - 1)];
}

// --- arguments ----------------------------------------------------------------------------
struct Opts {
  std::map<std::string, std::string> m;
  std::string get(const std::string& k, const std::string& d) const {
    auto it = m.find(k);
    return it == m.end() ? d : it->second;
  }
  uint64_t num(const std::string& k, uint64_t d) const {
    auto it = m.find(k);
    if (it == m.end()) return d;
    char* end = nullptr;
    uint64_t v = std::strtoull(it->second.c_str(), &end, 0);
    if (*end == 'K' || *end == 'k') v <<= 10;
    else if (*end == 'M') v <<= 20;
    else if (*end == 'G') v <<= 30;
    return v;
  }
  double real(const std::string& k, double d) const {
    auto it = m.find(k);
    return it == m.end() ? d : std::atof(it->second.c_str());
  }
  std::vector<uint32_t> list(const std::string& k, const std::string& d) const {
    std::vector<uint32_t> r;
    std::stringstream ss(get(k, d));
    std::string x;
    while (std::getline(ss, x, ',')) r.push_back(uint32_t(std::stoul(x)));
    return r;
  }
};

std::string fmt_size(uint64_t b) {
  char s[32];
  if (b >= (1ull << 30) && b % (1ull << 30) == 0) std::snprintf(s, sizeof s, "%lluG", (unsigned long long)(b >> 30));
  else if (b >= (1ull << 20) && b % (1ull << 20) == 0) std::snprintf(s, sizeof s, "%lluM", (unsigned long long)(b >> 20));
  else if (b >= 1024 && b % 1024 == 0) std::snprintf(s, sizeof s, "%lluK", (unsigned long long)(b >> 10));
  else std::snprintf(s, sizeof s, "%llu", (unsigned long long)b);
  return s;
}

kiln::Device open_dev(const Opts& o) { return kiln::Device::open(int(o.num("device", 0))); }

// The guest's side of the A/B handshake with scripts/bench (see the top of the file).
class PeerTurns {
 public:
  explicit PeerTurns(std::string dir) : dir_(std::move(dir)) {}
  [[nodiscard]] bool enabled() const { return !dir_.empty(); }

  // Hands the host its turn `tag` and returns once the host has taken it.
  void take(const std::string& tag) const {
    if (!enabled()) return;
    const std::string turn = dir_ + "/turn-" + tag, done = dir_ + "/done-" + tag;
    int fd = ::open(turn.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw std::runtime_error(turn + ": " + std::strerror(errno));
    ::close(fd);
    // 9p lookups of a missing name reach the host every time: polling sees the new file.
    // Every 20 ms: each poll is work for QEMU while the host times its peer.
    struct stat st;
    for (double t0 = now(); ::stat(done.c_str(), &st) != 0; ::usleep(20000))
      if (now() - t0 > kTimeoutS)
        throw std::runtime_error("the host did not take its turn " + tag + " in " +
                                 std::to_string(int(kTimeoutS)) + " s (is scripts/bench watching " + dir_ + "?)");
  }

 private:
  static constexpr double kTimeoutS = 600;
  std::string dir_;
};

// --- GEMM -----------------------------------------------------------------------------------
uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7fff + ((u >> 16) & 1);  // round to nearest even (inputs are finite)
  return uint16_t(u >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// C = A * B through the SDK's op-library wrapper, kiln::ops::Library::gemm
// (gemm.kbin, docs/pe-isa.md §7): what an application calls. Library::run
// launches it with one workgroup per PE.
int cmd_gemm(const Opts& o) {
  const std::string dt = o.get("dtype", "f32");
  const std::string name = "gemm_" + dt;
  const double min_time = o.real("min-time", 1.0);
  const int rounds = std::max(1, int(o.num("rounds", 1)));
  const PeerTurns turns(o.get("peer-dir", ""));
  kiln::Device dev = open_dev(o);
  kiln::ops::Library lib(dev);
  try {
    lib.kernel("gemm", dt == "bf16" ? "kiln_gemm_bf16" : "kiln_gemm_f32");  // load gemm.kbin now
  } catch (const kiln::Error& e) {
    skipped(name, std::string("op library gemm.kbin not usable: ") + e.what());
    return 0;
  }
  kiln::Queue q = dev.queue();
  const uint32_t grid = lib.grid().grid[0];
  const size_t es = dt == "bf16" ? 2 : 4;
  for (uint32_t n : o.list("sizes", "256,512,1024,2048")) {
    try {
      const size_t nn = size_t(n) * n;
      std::vector<float> fa(nn), fb(nn);
      std::mt19937 rng(n);
      std::uniform_real_distribution<float> U(-1.0f, 1.0f);
      for (auto& x : fa) x = U(rng);
      for (auto& x : fb) x = U(rng);
      std::vector<std::byte> ra(nn * es), rb(nn * es);
      if (es == 2) {
        for (size_t i = 0; i < nn; i++) {
          uint16_t a = to_bf16(fa[i]), b = to_bf16(fb[i]);
          std::memcpy(&ra[i * 2], &a, 2), std::memcpy(&rb[i * 2], &b, 2);
          fa[i] = from_bf16(a), fb[i] = from_bf16(b);
        }
      } else {
        std::memcpy(ra.data(), fa.data(), nn * 4), std::memcpy(rb.data(), fb.data(), nn * 4);
      }
      kiln::Buffer A = dev.alloc(nn * es), B = dev.alloc(nn * es), C = dev.alloc(nn * 4), bias = dev.alloc(size_t(n) * 4);
      q.copy(A, std::span<const std::byte>(ra));
      q.copy(B, std::span<const std::byte>(rb));
      q.fill(bias, 0);
      q.fill(C, 0);
      q.finish();
      // A zero bias, as before the switch to kiln::ops, so the figures stay comparable.
      const kiln::Args args = lib.gemm(
          A, B, C, {.m = n, .n = n, .k = n, .dtype = es == 2 ? kiln::ops::DType::bf16 : kiln::ops::DType::f32}, &bias);
      lib.run(q, args).wait();  // warm-up (decode, page tables)
      // Check 64 entries against a double-precision CPU reference.
      std::vector<float> c(nn);
      q.download(c, C).wait();
      double maxerr = 0;
      for (int s = 0; s < 64; s++) {
        size_t i = (size_t(s) * 7919) % n, j = (size_t(s) * 104729) % n;
        double ref = 0;
        for (size_t p = 0; p < n; p++) ref += double(fa[i * n + p]) * fb[p * n + j];
        maxerr = std::max(maxerr, std::fabs(ref - c[i * n + j]) / (1.0 + std::fabs(ref)));
      }
      if (maxerr > 1e-3) {
        failed(name, "n=" + std::to_string(n) + ": result differs from the CPU reference (rel err " + std::to_string(maxerr) + ")");
        continue;
      }
      const double flops = 2.0 * n * n * n;
      std::vector<double> ts, round_gflops;
      uint64_t cycles = 0;
      for (int r = 0; r < rounds; r++) {
        std::vector<double> rt;
        for (double total = 0; total < min_time || rt.size() < 3;) {
          double t0 = now();
          kiln::Event e = lib.run(q, args);
          e.wait();
          double t = now() - t0;
          rt.push_back(t), total += t;
          cycles = e.cycles();
        }
        round_gflops.push_back(flops / pct(rt, 0) / 1e9);
        ts.insert(ts.end(), rt.begin(), rt.end());
        turns.take("sgemm-" + std::to_string(n) + "-" + dt + "-" + std::to_string(r));
      }
      const double med = pct(ts, 50), best = pct(ts, 0);
      const double emu_s = double(cycles) / (dev.info().clock_mhz ? dev.info().clock_mhz * 1e6 : 1.35e9);
      // scripts/bench pairs each round's best with the peer timed right after it
      Rec(name).kv("n", n).kv("grid", grid).kv("reps", uint64_t(ts.size())).kv("median_s", med).kv("best_s", best)
          .kv("gflops", flops / med / 1e9).kv("gflops_best", flops / best / 1e9).kv("emulated_cycles", cycles)
          .kv("emulated_s", emu_s).kv("emulated_gflops", emu_s > 0 ? flops / emu_s / 1e9 : NAN).kv("max_rel_err", maxerr)
          .arr("gflops_rounds", round_gflops).emit();
    } catch (const kiln::Error& e) {
      failed(name, "n=" + std::to_string(n) + ": " + e.what());
    }
  }
  return 0;
}

// --- DMA --------------------------------------------------------------------------------------
// Time `fn(b)` (b copies issued back to back, the last one waited for) in
// batches until min_time; returns the best and median seconds per copy.
std::pair<double, double> time_batches(const std::function<void(int)>& fn, int batch, double min_time) {
  std::vector<double> per;
  double total = 0;
  fn(1);  // warm-up
  while (total < min_time || per.size() < 3) {
    double t0 = now();
    fn(batch);
    double t = now() - t0;
    per.push_back(t / batch), total += t;
    if (per.size() >= 200) break;
  }
  return {pct(per, 0), pct(per, 50)};
}

int cmd_dma(const Opts& o) {
  const uint64_t maxb = o.num("max", 64ull << 20);
  const double min_time = o.real("min-time", 0.3);
  kiln::Device dev = open_dev(o);
  kiln::Queue q = dev.queue();
  kiln::Buffer hb, d0, d1;
  try {
    hb = dev.alloc(maxb, kiln::Memory::host);
    d0 = dev.alloc(maxb, kiln::Memory::device);
    d1 = dev.alloc(maxb, kiln::Memory::device);
    q.fill(d0, 0x01020304);
    q.fill(d1, 0x05060708);
    auto hm = hb.map();
    std::memset(hm.data(), 0x5a, hm.size());
    q.finish();
  } catch (const kiln::Error& e) {
    skipped("dma", std::string("cannot allocate the buffers: ") + e.what());
    return 0;
  }
  std::vector<char> m0(maxb), m1(maxb);
  std::memset(m0.data(), 1, maxb), std::memset(m1.data(), 2, maxb);
  for (uint64_t sz = 4096; sz <= maxb; sz *= 4) {
    // batch: enough copies to amortise the submit for small sizes, bounded
    const int batch = int(std::clamp<uint64_t>((16ull << 20) / sz, 1, 64));
    auto dev_copy = [&](const kiln::Buffer& dst, const kiln::Buffer& src) {
      return [&q, &dst, &src, sz](int b) {
        kiln::Event e;
        for (int i = 0; i < b; i++) e = q.copy(dst, src, sz);
        e.wait();
      };
    };
    struct Dir {
      const char* name;
      std::function<void(int)> fn;
    } dirs[] = {
        {"h2d", dev_copy(d0, hb)},
        {"d2h", dev_copy(hb, d0)},
        {"d2d", dev_copy(d1, d0)},
        {"memcpy",
         [&](int b) {
           for (int i = 0; i < b; i++) {
             std::memcpy(i & 1 ? m0.data() : m1.data(), i & 1 ? m1.data() : m0.data(), sz);
             __asm__ volatile("" ::: "memory");
           }
         }},
    };
    // The directions and the memcpy peer take turns, kRounds times, so that load which comes
    // and goes reaches all of them; each keeps its best and its median over the rounds.
    constexpr int kRounds = 3;
    const double round_time = std::min(min_time, 0.05 + double(sz) / 1e9 * 4) / kRounds;
    std::vector<std::vector<double>> best(std::size(dirs)), med(std::size(dirs));
    std::vector<std::string> error(std::size(dirs));
    for (int r = 0; r < kRounds; r++) {
      for (size_t i = 0; i < std::size(dirs); i++) {
        if (!error[i].empty()) continue;
        try {
          auto [b, m] = time_batches(dirs[i].fn, batch, round_time);
          best[i].push_back(b), med[i].push_back(m);
        } catch (const kiln::Error& e) {
          error[i] = e.what();
        }
      }
    }
    for (size_t i = 0; i < std::size(dirs); i++) {
      if (!error[i].empty()) {
        failed("dma", std::string(dirs[i].name) + " " + fmt_size(sz) + ": " + error[i]);
        continue;
      }
      const double b = pct(best[i], 0), m = pct(med[i], 50);
      Rec("dma").kv("dir", dirs[i].name).kv("bytes", sz).kv("size", fmt_size(sz)).kv("batch", batch)
          .kv("rounds", kRounds).kv("best_s", b).kv("median_s", m).kv("gbps", double(sz) / b / 1e9)
          .kv("gbps_median", double(sz) / m / 1e9).emit();
    }
  }
  // What handing out cleared memory costs: a device BO is zeroed by the device's fill engine
  // before BO_CREATE returns, a host BO gets zeroed pages from the kernel. Interleaved per size.
  hb = {}, d0 = {}, d1 = {};
  for (uint64_t sz = 2ull << 20; sz <= std::min<uint64_t>(maxb, 64ull << 20); sz *= 4) {
    for (auto [name, mem] : {std::pair{"device", kiln::Memory::device}, std::pair{"host", kiln::Memory::host}}) {
      try {
        auto [best, med] = time_batches([&](int b) { for (int i = 0; i < b; i++) (void)dev.alloc(sz, mem); }, 1,
                                        std::min(min_time, 0.2));
        Rec("alloc").kv("memory", name).kv("bytes", sz).kv("size", fmt_size(sz)).kv("best_s", best)
            .kv("median_s", med).kv("gbps", double(sz) / best / 1e9).emit();
      } catch (const kiln::Error& e) {
        failed("alloc", std::string(name) + " " + fmt_size(sz) + ": " + e.what());
      }
    }
  }
  return 0;
}

// --- job round trip and rates ---------------------------------------------------------------------
int cmd_latency(const Opts& o) {
  const int n = int(o.num("n", 2000));
  const int K = int(o.num("list", 64));
  kiln::Device dev = open_dev(o);
  kiln::Queue q = dev.queue();
  for (int i = 0; i < 50; i++) q.barrier().wait();
  std::vector<double> lat, sub;
  for (int i = 0; i < n; i++) {
    double t0 = now();
    kiln::Event e = q.barrier();
    double t1 = now();
    e.wait();
    lat.push_back(now() - t0), sub.push_back(t1 - t0);
  }
  double sum = 0;
  for (double x : lat) sum += x;
  // submit_p50_us: the SUBMIT ioctl (and SDK packet building) alone; the rest
  // of the round trip is scheduler -> doorbell -> device -> MSI-X -> fence -> wake-up.
  Rec("noop_roundtrip").kv("n", n).kv("p50_us", pct(lat, 50) * 1e6).kv("p99_us", pct(lat, 99) * 1e6)
      .kv("mean_us", sum / n * 1e6).kv("min_us", pct(lat, 0) * 1e6).kv("submit_p50_us", pct(sub, 50) * 1e6)
      .kv("submit_p99_us", pct(sub, 99) * 1e6).emit();

  // Job rates with the same command (a 64-byte DMA fill) in each mode.
  kiln::Buffer small = dev.alloc(4096);
  const int jobs = n;
  double t0 = now();
  for (int i = 0; i < jobs; i++) q.fill(small, uint32_t(i), 64).wait();
  double single = jobs / (now() - t0);
  t0 = now();
  kiln::Event prev;
  for (int i = 0; i < jobs; i++) {
    kiln::Event deps[1] = {prev};
    prev = q.fill(small, uint32_t(i), 64, 0, prev.valid() ? std::span<const kiln::Event>(deps) : std::span<const kiln::Event>());
  }
  prev.wait();
  double chained = jobs / (now() - t0);
  kiln::CommandList cl(dev);
  for (int i = 0; i < K; i++) cl.fill(small, uint32_t(i), 64, size_t(i % 64) * 64);
  const int replays = std::max(1, jobs / K);
  q.submit(cl).wait();
  t0 = now();
  for (int r = 0; r < replays; r++) q.submit(cl).wait();
  double replay = double(replays) * K / (now() - t0);
  t0 = now();
  kiln::Event last;
  for (int r = 0; r < replays; r++) last = q.submit(cl);
  last.wait();
  double replay_pipe = double(replays) * K / (now() - t0);
  Rec("job_rate").kv("jobs", jobs).kv("list_len", K).kv("single_per_s", single).kv("chained_per_s", chained)
      .kv("replay_per_s", replay).kv("replay_pipelined_per_s", replay_pipe).emit();
  return 0;
}

// No-op job round trip and 4 KiB virtio-blk read, timed interleaved: `rounds`
// rounds of `n / rounds` Kiln round trips then as many reads (A/B/A/B), so load
// that comes and goes hits both sides alike. Each round gives one p50 and one
// p99 ratio; the figure is their median and best with the spread (max - min
// over the median) and the guest's load average, recorded before and after.
int cmd_roundtrip(const Opts& o) {
  const std::string path = o.get("dev", "/dev/vda");
  const int n = int(o.num("n", 2000));
  const int rounds = std::max(1, int(o.num("rounds", 10)));
  const int per = std::max(10, n / rounds);
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) {
    skipped("roundtrip_ab", path + ": " + std::strerror(errno));
    return 0;
  }
  off_t size = ::lseek(fd, 0, SEEK_END);
  void* buf = nullptr;
  if (size < 4096 || posix_memalign(&buf, 4096, 4096)) {
    skipped("roundtrip_ab", path + ": too small");
    return 0;
  }
  const uint64_t blocks = uint64_t(size) / 4096;
  auto loadavg = [] {
    std::string l;
    if (FILE* f = std::fopen("/proc/loadavg", "r")) {
      char b[64] = {};
      if (std::fgets(b, sizeof b, f)) l.assign(b, std::strcspn(b, " "));
      std::fclose(f);
    }
    return l;
  };
  const std::string load_before = loadavg();
  kiln::Device dev = open_dev(o);
  kiln::Queue q = dev.queue();
  uint64_t blk_i = 0;
  auto blk_once = [&] {
    off_t off = off_t(((blk_i++ * 7919) % blocks) * 4096);
    double t0 = now();
    if (::pread(fd, buf, 4096, off) != 4096) throw std::runtime_error(path + ": pread failed");
    return now() - t0;
  };
  for (int i = 0; i < 50; i++) q.barrier().wait(), blk_once();  // warm both paths
  std::vector<double> k50, k99, b50, b99, r50, r99, all_k, all_b;
  for (int r = 0; r < rounds; r++) {
    std::vector<double> kl, bl;
    for (int i = 0; i < per; i++) {
      double t0 = now();
      q.barrier().wait();
      kl.push_back(now() - t0);
    }
    for (int i = 0; i < per; i++) bl.push_back(blk_once());
    k50.push_back(pct(kl, 50)), k99.push_back(pct(kl, 99)), b50.push_back(pct(bl, 50)), b99.push_back(pct(bl, 99));
    r50.push_back(k50.back() / b50.back()), r99.push_back(k99.back() / b99.back());
    all_k.insert(all_k.end(), kl.begin(), kl.end()), all_b.insert(all_b.end(), bl.begin(), bl.end());
  }
  std::free(buf);
  ::close(fd);
  auto spread = [](const std::vector<double>& v) { return (pct(v, 100) - pct(v, 0)) / pct(v, 50); };
  Rec("roundtrip_ab").kv("rounds", rounds).kv("per_round", per)
      .kv("kiln_p50_us", pct(all_k, 50) * 1e6).kv("kiln_p99_us", pct(all_k, 99) * 1e6)
      .kv("blk_p50_us", pct(all_b, 50) * 1e6).kv("blk_p99_us", pct(all_b, 99) * 1e6)
      .kv("p50_ratio_median", pct(r50, 50)).kv("p50_ratio_best", pct(r50, 0)).kv("p50_ratio_spread", spread(r50))
      .kv("p99_ratio_median", pct(r99, 50)).kv("p99_ratio_best", pct(r99, 0)).kv("p99_ratio_spread", spread(r99))
      .kv("guest_load_before", load_before).kv("guest_load_after", loadavg()).emit();
  return 0;
}

int cmd_blk(const Opts& o) {
  const std::string path = o.get("dev", "/dev/vda");
  const int n = int(o.num("n", 2000));
  int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (fd < 0) {
    skipped("blk_read", path + ": " + std::strerror(errno));
    return 0;
  }
  off_t size = ::lseek(fd, 0, SEEK_END);
  if (size < 4096) {
    skipped("blk_read", path + ": too small");
    return 0;
  }
  void* buf = nullptr;
  if (posix_memalign(&buf, 4096, 4096)) return 1;
  const uint64_t blocks = uint64_t(size) / 4096;
  std::vector<double> lat;
  for (int i = -50; i < n; i++) {
    off_t off = off_t(((uint64_t(i + 50) * 7919) % blocks) * 4096);
    double t0 = now();
    ssize_t r = ::pread(fd, buf, 4096, off);
    double t = now() - t0;
    if (r != 4096) {
      failed("blk_read", path + ": pread: " + (r < 0 ? std::strerror(errno) : "short read"));
      return 0;
    }
    if (i >= 0) lat.push_back(t);
  }
  double sum = 0;
  for (double x : lat) sum += x;
  Rec("blk_read").kv("dev", path).kv("n", n).kv("p50_us", pct(lat, 50) * 1e6).kv("p99_us", pct(lat, 99) * 1e6)
      .kv("mean_us", sum / n * 1e6).kv("min_us", pct(lat, 0) * 1e6).emit();
  ::close(fd);
  free(buf);
  return 0;
}

// --- interpreter ------------------------------------------------------------------------------------
// bench_scalar on one PE and on every PE of each device, `rounds` times, the
// devices taking turns within a round so that the worker-scaling ratio compares
// launches timed in the same window. With --peer-dir the host runs the same loop
// under qemu-riscv64 after each round (the TCG anchor, docs/performance.md §9).
int cmd_interp(const Opts& o) {
  const std::string kbin = o.get("kbin", "bench.kbin");
  const uint32_t iters = uint32_t(o.num("iters", 2000000));
  const int rounds = std::max(1, int(o.num("rounds", 1)));
  const PeerTurns turns(o.get("peer-dir", ""));
  struct Bench {
    Bench(const kiln::DeviceInfo& di, const std::string& kbin)
        : info(di), dev(kiln::Device::open(int(di.index))), mod(dev.load_file(kbin)), k(mod.kernel("bench_scalar")),
          q(dev.queue()), out(dev.alloc(size_t(di.pe_count()) * 8, kiln::Memory::host)),
          sink(dev.alloc(size_t(di.pe_count()) * 8)) {}
    kiln::DeviceInfo info;
    kiln::Device dev;
    kiln::Module mod;
    kiln::Kernel k;
    kiln::Queue q;
    kiln::Buffer out, sink;
    std::vector<double> one_pe_s, one_pe_short_s, all_pe_s;  // a launch of iters, of iters / 4, of all PEs
    uint64_t one_pe_instr = 0, all_pe_instr = 0, one_pe_cycles = 0;
    std::string error;  // the device's first failure: it sits out the remaining rounds
  };
  std::deque<Bench> benches;  // the handles stay where they were created
  for (const auto& di : kiln::enumerate()) {  // main() reports a machine without devices
    try {
      benches.emplace_back(di, kbin);
    } catch (const kiln::Error& e) {
      failed("interp", di.path + ": " + e.what());
    }
  }
  // Seconds, instructions retired and emulated cycles of one launch.
  auto run = [](Bench& b, uint32_t grid, uint32_t it) {
    kiln::Launch l;
    l.grid = {grid, 1, 1};
    double t0 = now();
    kiln::Event e = b.q.launch_with(b.k, l, b.out, b.sink, it);
    e.wait();
    double t = now() - t0;
    uint64_t instr = 0;
    auto m = b.out.map<uint64_t>();
    for (uint32_t i = 0; i < grid; i++) instr += m[i];
    return std::make_tuple(t, instr, e.cycles());
  };
  for (int r = -1; r < rounds; r++) {  // round -1 warms up
    for (auto& b : benches) {
      if (!b.error.empty()) continue;
      try {
        if (r < 0) {
          run(b, 1, 1000);
          continue;
        }
        auto [t1, i1, c1] = run(b, 1, iters);
        auto [ts, is, cs] = run(b, 1, iters / 4);
        auto [tn, in, cn] = run(b, b.info.pe_count(), iters / 4);
        b.one_pe_s.push_back(t1), b.one_pe_short_s.push_back(ts), b.all_pe_s.push_back(tn);
        b.one_pe_instr = i1, b.all_pe_instr = in, b.one_pe_cycles = c1;
      } catch (const kiln::Error& e) {
        b.error = e.what();
      }
    }
    if (r >= 0) turns.take("tcg-" + std::to_string(r));
  }
  for (auto& b : benches) {
    if (!b.error.empty()) {
      failed("interp", b.info.path + ": " + b.error);
      continue;
    }
    const double t1 = pct(b.one_pe_s, 50), tn = pct(b.all_pe_s, 50);
    Rec rec("interp");
    rec.kv("device", b.info.path).kv("pci", b.info.pci.address).kv("dram_size", b.info.dram_size)
        .kv("pes", b.info.pe_count()).kv("iters", iters).kv("rounds", rounds)
        .kv("one_pe_s", t1).kv("one_pe_instr", b.one_pe_instr).kv("mips_one_pe", double(b.one_pe_instr) / t1 / 1e6)
        .kv("all_pe_s", tn).kv("all_pe_instr", b.all_pe_instr).kv("mips_all_pe", double(b.all_pe_instr) / tn / 1e6)
        .kv("cycles_per_instr", b.one_pe_instr ? double(b.one_pe_cycles) / double(b.one_pe_instr) : NAN)
        .arr("one_pe_s_rounds", b.one_pe_s).arr("one_pe_short_s_rounds", b.one_pe_short_s).kv("short_iters", iters / 4)
        .arr("all_pe_s_rounds", b.all_pe_s).emit();
  }
  return 0;
}

// --- scale ------------------------------------------------------------------------------------------
int cmd_scale(const Opts& o) {
  const uint32_t C = uint32_t(o.num("contexts", 64));
  const uint32_t J = uint32_t(o.num("jobs", 1000));
  const uint32_t NB = uint32_t(o.num("bos", 10000));
  kiln::Device dev = open_dev(o);
  // 1. C contexts x J no-op jobs: each round submits one job to every
  //    context, then waits for all of them; time per job per 10% of the run.
  try {
    std::vector<kiln::Queue> qs;
    double t0 = now();
    for (uint32_t i = 0; i < C; i++) qs.push_back(dev.queue());
    double tctx = now() - t0;
    std::vector<double> buckets;
    const uint32_t step = std::max(1u, J / 10);
    double tb = now(), tall = now();
    std::vector<kiln::Event> ev(C);
    for (uint32_t r = 0; r < J; r++) {
      for (uint32_t i = 0; i < C; i++) ev[i] = qs[i].barrier();
      for (auto& e : ev) e.wait();
      if ((r + 1) % step == 0) {
        double t = now();
        buckets.push_back((t - tb) / (double(step) * C) * 1e6);
        tb = t;
      }
    }
    double total = now() - tall;
    Rec("scale_contexts").kv("contexts", C).kv("jobs_per_context", J).kv("total_jobs", uint64_t(C) * J)
        .kv("context_create_us", tctx / C * 1e6).kv("total_s", total).kv("us_per_job", total / (double(C) * J) * 1e6)
        .arr("us_per_job_by_decile", buckets).emit();
  } catch (const kiln::Error& e) {
    failed("scale_contexts", e.what());
  }
  // 2. NB BOs created then destroyed (device DRAM and host memory).
  for (auto mem : {kiln::Memory::device, kiln::Memory::host}) {
    const char* mname = mem == kiln::Memory::device ? "device" : "host";
    try {
      std::vector<kiln::Buffer> bos;
      bos.reserve(NB);
      std::vector<double> cb, db;
      const uint32_t step = std::max(1u, NB / 10);
      double tb = now(), t0 = now();
      for (uint32_t i = 0; i < NB; i++) {
        bos.push_back(dev.alloc(4096, mem));
        if ((i + 1) % step == 0) {
          double t = now();
          cb.push_back((t - tb) / step * 1e6);
          tb = t;
        }
      }
      double tc = now() - t0;
      tb = now(), t0 = now();
      for (uint32_t i = 0; i < NB; i++) {
        bos.pop_back();
        if ((i + 1) % step == 0) {
          double t = now();
          db.push_back((t - tb) / step * 1e6);
          tb = t;
        }
      }
      double td = now() - t0;
      Rec("scale_bos").kv("memory", mname).kv("count", NB).kv("create_us", tc / NB * 1e6).kv("destroy_us", td / NB * 1e6)
          .arr("create_us_by_decile", cb).arr("destroy_us_by_decile", db).emit();
    } catch (const kiln::Error& e) {
      failed("scale_bos", std::string(mname) + ": " + e.what());
    }
  }
  // 3. Device memory: mixed sizes (log-uniform 4 KiB..16 MiB) until DRAM is full.
  try {
    const uint64_t dram = dev.refresh().dram_free;
    std::mt19937_64 rng(42);
    std::uniform_real_distribution<double> L(12.0, 24.0);
    std::vector<kiln::Buffer> bufs;
    std::vector<std::pair<uint64_t, double>> t_alloc;  // bytes allocated so far, time
    uint64_t bytes = 0;
    std::string stop = "none";
    int misses = 0;
    while (misses < 8) {
      uint64_t sz = (uint64_t(std::exp2(L(rng))) + 4095) & ~4095ull;
      double t0 = now();
      try {
        bufs.push_back(dev.alloc(sz));
      } catch (const kiln::Error& e) {
        stop = e.what();
        misses++;  // fragmentation or full: try a few smaller sizes before stopping
        continue;
      }
      t_alloc.push_back({bytes, now() - t0});
      bytes += sz;
    }
    // Per-decile of fill fraction: mean alloc time.
    std::vector<double> by(10, 0), cnt(10, 0);
    for (auto& [b, t] : t_alloc) {
      size_t d = std::min<size_t>(9, size_t(double(b) / double(dram) * 10));
      by[d] += t * 1e6, cnt[d] += 1;
    }
    for (int i = 0; i < 10; i++) by[i] = cnt[i] ? by[i] / cnt[i] : NAN;
    std::shuffle(bufs.begin(), bufs.end(), rng);
    double t0 = now();
    size_t nbufs = bufs.size();
    bufs.clear();
    double tfree = now() - t0;
    Rec("scale_dram").kv("dram_free", dram).kv("allocated", bytes).kv("fill_pct", double(bytes) / double(dram) * 100)
        .kv("allocations", uint64_t(nbufs)).kv("free_us", nbufs ? tfree / nbufs * 1e6 : NAN)
        .arr("alloc_us_by_fill_decile", by).arr("allocs_by_fill_decile", cnt).kv("stopped_by", stop).emit();
  } catch (const kiln::Error& e) {
    failed("scale_dram", e.what());
  }
  return 0;
}

// Run a sample program (argv after --cmd, space-separated) and report its wall
// time and the device time / emulated cycles it added (telemetry deltas).
int cmd_sample(const Opts& o) {
  const std::string name = o.get("name", "sample"), cmdline = o.get("cmd", "");
  kiln::Device dev = open_dev(o);
  auto a = dev.telemetry();
  double t0 = now();
  int rc = std::system(cmdline.c_str());
  double wall = now() - t0;
  auto b = dev.telemetry();
  rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + (WIFSIGNALED(rc) ? WTERMSIG(rc) : 0);
  Rec("sample").kv("name", name).kv("rc", rc).kv("wall_s", wall)
      .kv("emulator_s", double(b.emulator_time_ns - a.emulator_time_ns) / 1e9)
      .kv("busy_s", double(b.busy_ns - a.busy_ns) / 1e9)
      .kv("cycles", b.total_cycles - a.total_cycles)
      .kv("device_s", double((b.device_time() - a.device_time()).count()) / 1e9)
      .kv("energy_j", b.energy_j - a.energy_j)
      .kv("launches", b.launches - a.launches).emit();
  return 0;
}

int cmd_telemetry(const Opts& o) {
  kiln::Device dev = open_dev(o);
  auto t = dev.telemetry();
  Rec("telemetry").kv("tag", o.get("tag", "")).kv("emulator_time_ns", t.emulator_time_ns).kv("total_cycles", t.total_cycles)
      .kv("busy_ns", t.busy_ns).kv("launches", t.launches).kv("dma_bytes", t.dma_bytes).emit();
  return 0;
}

// Published MTIA 2i figures next to the model's, measured through the SDK in
// modelled time (docs/fidelity.md). Each record: figure, reference, kiln, unit.
int cmd_fidelity(const Opts& o) {
  kiln::Device dev = open_dev(o);
  kiln::Module mod = dev.load_file(o.get("kbin", "bench.kbin"));
  kiln::Queue q = dev.queue();
  const uint32_t pes = dev.info().pe_count();
  auto fig = [](const char* name, double reference, double kiln, const char* unit) {
    Rec("fidelity").kv("figure", name).kv("reference", reference).kv("kiln", kiln).kv("unit", unit).emit();
  };
  auto secs = [](const kiln::Event& e) { return double(e.device_time().count()) * 1e-9; };
  // Bandwidth: every PE streams 4 MiB into its local memory.
  const uint64_t per_pe = uint64_t(o.num("stream-mib", 4)) << 20;
  for (auto [name, mem, ref] : {std::tuple{"dram_bw_64pe_GBps", kiln::Memory::device, 204.8},
                                std::tuple{"sram_bw_64pe_GBps", kiln::Memory::sram, 2700.0}}) {
    kiln::Buffer src = dev.alloc(per_pe, mem);
    kiln::Event e = q.launch_with(mod.kernel("bench_stream"), {.grid = {pes, 1, 1}}, src, per_pe);
    fig(name, ref, double(per_pe) * pes / secs(e) / 1e9, "GB/s");
  }
  // Launch: a no-op kernel on every PE (MTIA 2i: under 1 us).
  kiln::Event noop = q.launch_with(mod.kernel("bench_noop"), {.grid = {pes, 1, 1}});
  fig("launch_noop_us", 1.0, secs(noop) * 1e6, "us");
  // Full load: the bf16 GEMM the energy model is calibrated on (TDP 85 W,
  // 177 TFLOPS dense bf16, hence 2.08 TFLOPS/W).
  const uint32_t tile = 128 * 128 * 2, b_tiles = 4, tiles = uint32_t(o.num("tiles", 256));
  kiln::Buffer a = dev.alloc(tile), b = dev.alloc(size_t(tile) * b_tiles, kiln::Memory::sram),
               c = dev.alloc(size_t(pes) * 128 * 128 * 4);
  kiln::Event g = q.launch_with(mod.kernel("bench_gemm_bf16"), {.grid = {pes, 1, 1}}, a, b, c, tiles, b_tiles);
  const double flops = 2.0 * pes * tiles * 128 * 128 * 128;
  fig("bf16_dense_tflops", 177.0, flops / secs(g) / 1e12, "TFLOPS");
  fig("full_load_power_W", 85.0, g.usage().power_w(), "W");
  fig("bf16_tflops_per_W", 177.0 / 85.0, flops / g.energy() / 1e12, "TFLOPS/W");
  // The same load in int8 (int32 accumulators): MTIA 2i's 354 TOPS, 2,048 MAC/cycle/PE.
  kiln::Buffer a8 = dev.alloc(tile / 2), b8 = dev.alloc(size_t(tile / 2) * b_tiles, kiln::Memory::sram);
  kiln::Event g8 = q.launch_with(mod.kernel("bench_gemm_int8"), {.grid = {pes, 1, 1}}, a8, b8, c, tiles, b_tiles);
  fig("int8_dense_tops", 354.0, flops / secs(g8) / 1e12, "TOPS");
  // The op library's 2K^3 bf16 GEMM: operands on chip against the DPE peak, and
  // operands in DRAM against that size's DRAM roofline (A and B read once, C
  // written once, plus the launch's dispatch). MTIA 2i: > 92 % of peak.
  kiln::ops::Library lib(dev);
  const uint32_t n = 2048;
  const double peak_cycles = double(n) * n * n / (KILN_COST_DPE_MACS_BF16 * double(pes));
  const double dram_cycles = (2.0 * n * n * 2 + double(n) * n * 4) * KILN_PE_CLOCK_HZ / KILN_COST_DRAM_BPS;
  for (auto mem : {kiln::Memory::sram, kiln::Memory::device}) {
    kiln::Buffer A = dev.alloc(size_t(n) * n * 2, mem), B = dev.alloc(size_t(n) * n * 2, mem),
                 C = dev.alloc(size_t(n) * n * 4, mem);
    kiln::Event e = lib.run(q, lib.gemm(A, B, C, {.m = n, .n = n, .k = n, .dtype = kiln::ops::DType::bf16}));
    const double cycles = double(e.cycles());
    if (mem == kiln::Memory::sram)
      fig("gemm_bf16_2048_pct_peak", 92.0, 100 * peak_cycles / cycles, "%");
    else
      fig("gemm_bf16_2048_dram_pct_roofline", 92.0,
          100 * (std::max(peak_cycles, dram_cycles) + KILN_COST_LAUNCH) / cycles, "%");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: kiln_bench gemm|dma|latency|blk|interp|scale|telemetry|fidelity [--key value]...\n");
    return 2;
  }
  std::string cmd = argv[1];
  Opts o;
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0) {
      std::fprintf(stderr, "kiln_bench: bad option %s\n", argv[i]);
      return 2;
    }
    o.m[k.substr(2)] = argv[i + 1];
  }
  std::map<std::string, int (*)(const Opts&)> cmds{
      {"gemm", cmd_gemm}, {"dma", cmd_dma},       {"latency", cmd_latency},   {"blk", cmd_blk},
      {"interp", cmd_interp}, {"scale", cmd_scale}, {"telemetry", cmd_telemetry}, {"sample", cmd_sample},
      {"fidelity", cmd_fidelity}, {"roundtrip", cmd_roundtrip}};
  auto it = cmds.find(cmd);
  if (it == cmds.end()) {
    std::fprintf(stderr, "kiln_bench: unknown benchmark %s\n", cmd.c_str());
    return 2;
  }
  if (cmd != "blk" && kiln::enumerate().empty()) {
    skipped(cmd, "no usable Kiln device: " + kiln::diagnose());
    return 0;
  }
  try {
    return it->second(o);
  } catch (const std::exception& e) {
    failed(cmd, e.what());
    return 1;
  }
}
