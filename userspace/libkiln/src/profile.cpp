// SPDX-License-Identifier: MIT
// libkiln: launch profiles (the device's kiln_profile records), their
// roofline and report, and the KILN_PROFILE program-wide profiler.
#include <fmt/format.h>
#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_profile.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "internal.hpp"

namespace kiln {

static_assert(activity_count == KILN_PROF_ACTIVITIES);
static_assert(fabric_count == KILN_PROF_FABRICS);

std::string_view to_string(Activity a) noexcept {
  static constexpr std::string_view names[] = {"scalar", "DPE",     "SE",     "RE",   "MLU",
                                               "DMA wait", "barrier", "fabric", "idle", "launch"};
  return size_t(a) < activity_count ? names[size_t(a)] : "?";
}

std::string_view to_string(Fabric f) noexcept {
  static constexpr std::string_view names[] = {"DRAM", "SRAM", "host link", "local ports"};
  return size_t(f) < fabric_count ? names[size_t(f)] : "?";
}

std::chrono::nanoseconds LaunchProfile::device_time() const noexcept {
  return cycles_to_time(cycles, clock_mhz);
}

uint64_t LaunchProfile::flops() const noexcept {
  uint64_t f = se_elems + se_transc_elems + re_elems;
  for (uint64_t m : macs) f += 2 * m;
  return f;
}

LaunchProfile& LaunchProfile::operator+=(const LaunchProfile& o) {
  if (kernel.empty()) kernel = o.kernel, grid = o.grid, start_cycles = o.start_cycles;
  if (!clock_mhz) clock_mhz = o.clock_mhz;
  cycles += o.cycles, waves += o.waves, launches += o.launches, instructions += o.instructions;
  energy_pj += o.energy_pj;
  for (size_t f = 0; f < fabric_count; f++) bytes[f] += o.bytes[f];
  for (size_t d = 0; d < macs.size(); d++) macs[d] += o.macs[d];
  se_elems += o.se_elems, se_transc_elems += o.se_transc_elems, re_elems += o.re_elems, mlu_bytes += o.mlu_bytes;
  if (pes.size() < o.pes.size()) pes.resize(o.pes.size());
  for (size_t i = 0; i < o.pes.size(); i++) {
    for (size_t a = 0; a < activity_count; a++) pes[i].cycles[a] += o.pes[i].cycles[a];
    pes[i].workgroups += o.pes[i].workgroups;
  }
  return *this;
}

uint64_t LaunchProfile::total(Activity a) const noexcept {
  uint64_t t = 0;
  for (const auto& p : pes) t += p[a];
  return t;
}

namespace {
uint64_t div_up(uint64_t a, uint64_t b) {
  return b ? (a + b - 1) / b : 0;
}
uint64_t xfer(uint64_t bytes, uint64_t bps) {
  return uint64_t(((unsigned __int128)bytes * KILN_PE_CLOCK_HZ + bps - 1) / bps);
}
}  // namespace

// The chip's shortest time for this work: the units of a PE run one at a
// time, so the compute bound is their cycles over all PEs; each fabric
// carries its bytes at its chip-wide rate; the launch pays its fixed cost
// whatever it does.
Roofline LaunchProfile::roofline() const {
  const uint64_t pes_n = std::max<uint64_t>(1, pes.size());
  const uint64_t dpe = div_up(macs[KILN_DTYPE_FP32], KILN_COST_DPE_MACS_FP32 * pes_n) +
                       div_up(macs[KILN_DTYPE_BF16], KILN_COST_DPE_MACS_BF16 * pes_n) +
                       div_up(macs[KILN_DTYPE_FP16], KILN_COST_DPE_MACS_FP16 * pes_n) +
                       div_up(macs[KILN_DTYPE_INT8], KILN_COST_DPE_MACS_INT8 * pes_n);
  const uint64_t se = div_up(se_elems, KILN_COST_SE_ELEMS * pes_n) +
                      div_up(se_transc_elems, KILN_COST_SE_TRANSC_ELEMS * pes_n);
  const uint64_t other = div_up(re_elems, KILN_COST_RE_ELEMS * pes_n) + div_up(mlu_bytes, KILN_COST_MLU_BYTES * pes_n);
  struct Term {
    const char* name;
    uint64_t cycles;
  } terms[] = {
      {"DPE", dpe + se + other},  // renamed below to the biggest unit
      {"DRAM", xfer(bytes[size_t(Fabric::dram)], KILN_COST_DRAM_BPS)},
      {"SRAM", xfer(bytes[size_t(Fabric::sram)], KILN_COST_SRAM_BPS)},
      {"host link", xfer(bytes[size_t(Fabric::host)], KILN_COST_HOST_BPS)},
      {"local ports", xfer(bytes[size_t(Fabric::local)], KILN_COST_LOCAL_BPS * pes_n)},
  };
  terms[0].name = dpe >= se && dpe >= other ? "DPE" : se >= other ? "SE" : "RE/MLU";
  const Term* top = std::max_element(std::begin(terms), std::end(terms),
                                     [](const Term& a, const Term& b) { return a.cycles < b.cycles; });
  const uint64_t n = std::max<uint32_t>(1, launches);
  const uint64_t fixed = n * KILN_COST_LAUNCH + uint64_t(waves > n ? waves - n : 0) * KILN_COST_WAVE;
  Roofline r;
  r.bound = top->cycles > fixed ? top->name : "launch";
  r.bound_cycles = fixed + top->cycles;
  r.fraction = cycles ? double(r.bound_cycles) / double(cycles) : 0;
  return r;
}

std::string LaunchProfile::report() const {
  const double s = double(device_time().count()) * 1e-9;
  std::string o = launches > 1 ? fmt::format("{} launches", launches)
                               : fmt::format("{} [{}x{}x{}]", kernel, grid[0], grid[1], grid[2]);
  o += fmt::format(": {:.3f} us modelled ({} cycles, {} wave{}), {:.3f} mJ, {:.1f} W\n", s * 1e6, cycles, waves,
                   waves == 1 ? "" : "s", energy_j() * 1e3, s > 0 ? energy_j() / s : 0.0);
  if (!pes.empty()) {
    const double all = double(cycles) * double(pes.size());
    o += "  PE time:";
    for (size_t a = 0; a < activity_count; a++)
      if (uint64_t t = total(Activity(a))) o += fmt::format(" {} {:.1f}%", to_string(Activity(a)), 100.0 * t / all);
    // How evenly the work spread: a PE is working unless idle, held by a
    // fabric or being dispatched to.
    std::vector<uint64_t> busy;
    for (const auto& p : pes) busy.push_back(cycles - p[Activity::idle] - p[Activity::fabric] - p[Activity::launch]);
    std::sort(busy.begin(), busy.end());
    o += fmt::format("\n  PE busy time: busiest {:.1f}%, median {:.1f}% of the launch ({} PEs)\n",
                     cycles ? 100.0 * busy.back() / cycles : 0.0, cycles ? 100.0 * busy[busy.size() / 2] / cycles : 0.0,
                     pes.size());
  }
  o += "  bytes:";
  for (size_t f = 0; f < fabric_count; f++)
    if (bytes[f]) o += fmt::format(" {} {:.2f} MiB", to_string(Fabric(f)), double(bytes[f]) / (1 << 20));
  if (!std::any_of(bytes.begin(), bytes.end(), [](uint64_t b) { return b; })) o += " none";
  o += "\n";
  const uint64_t traffic = bytes[size_t(Fabric::dram)] + bytes[size_t(Fabric::sram)] + bytes[size_t(Fabric::host)];
  o += fmt::format("  achieved: {:.3f} TFLOP/s, {:.1f} GB/s over DRAM/SRAM/host\n", s > 0 ? flops() / s * 1e-12 : 0.0,
                   s > 0 ? traffic / s * 1e-9 : 0.0);
  const Roofline r = roofline();
  o += fmt::format("  roofline: {}-bound, {:.3f} us at best: {:.1f}% reached\n", r.bound,
                   double(cycles_to_time(r.bound_cycles, clock_mhz).count()) * 1e-3, 100 * r.fraction);
  return o;
}

namespace detail {

std::optional<LaunchProfile> parse_profile(std::span<const std::byte> buf, std::string kernel,
                                           std::array<uint32_t, 3> grid, uint32_t clock_mhz) {
  kiln_profile_header h;
  if (buf.size() < sizeof h) return std::nullopt;
  std::memcpy(&h, buf.data(), sizeof h);
  if (h.magic != KILN_PROFILE_MAGIC || h.version != KILN_PROFILE_VERSION) return std::nullopt;
  LaunchProfile p;
  p.kernel = std::move(kernel);
  p.grid = grid;
  p.clock_mhz = clock_mhz;
  p.cycles = h.cycles, p.start_cycles = h.start_cycles, p.waves = h.waves, p.instructions = h.instructions;
  p.launches = 1;
  p.energy_pj = h.energy_pj;
  std::copy(std::begin(h.fabric_bytes), std::end(h.fabric_bytes), p.bytes.begin());
  std::copy(std::begin(h.macs), std::end(h.macs), p.macs.begin());
  p.se_elems = h.se_elems, p.se_transc_elems = h.se_transc_elems, p.re_elems = h.re_elems, p.mlu_bytes = h.mlu_bytes;
  const uint64_t pe_end = uint64_t(h.pe_offset) + uint64_t(h.num_pes) * sizeof(kiln_profile_pe);
  if (h.pe_offset && pe_end <= buf.size()) {
    p.pes.resize(h.num_pes);
    for (uint32_t i = 0; i < h.num_pes; i++) {
      kiln_profile_pe r;
      std::memcpy(&r, buf.data() + h.pe_offset + size_t(i) * sizeof r, sizeof r);
      auto& pe = p.pes[i];
      std::copy(std::begin(r.cycles), std::end(r.cycles), pe.cycles.begin());
      pe.workgroups = r.workgroups;
      pe.dropped = r.dropped;
      const uint64_t list = uint64_t(h.segment_offset) + uint64_t(i) * h.segments_per_pe * sizeof(kiln_profile_segment);
      if (!h.segment_offset || r.segments > h.segments_per_pe ||
          list + uint64_t(r.segments) * sizeof(kiln_profile_segment) > buf.size())
        continue;
      pe.timeline.resize(r.segments);
      for (uint32_t k = 0; k < r.segments; k++) {
        kiln_profile_segment sg;
        std::memcpy(&sg, buf.data() + list + size_t(k) * sizeof sg, sizeof sg);
        pe.timeline[k] = {sg.start, sg.cycles, Activity(std::min<uint32_t>(sg.activity, activity_count - 1))};
      }
    }
  }
  return p;
}

// ---- KILN_PROFILE ------------------------------------------------------------
namespace {

ProfileOptions parse_env() {
  ProfileOptions o;
  const char* e = std::getenv("KILN_PROFILE");
  if (!e || !*e || std::string_view(e) == "0") return o;
  std::string_view v = e;
  o.enabled = true;
  while (!v.empty()) {
    size_t c = v.find(',');
    std::string_view w = v.substr(0, c);
    v = c == std::string_view::npos ? std::string_view{} : v.substr(c + 1);
    if (w == "1" || w == "summary")
      continue;
    else if (w == "launches")
      o.launches = true;
    else if (w == "pe-tracks")
      o.pe_tracks = true;
    else if (w.starts_with("out="))
      o.out = std::string(w.substr(4));
    else
      log(Level::warn, "KILN_PROFILE: unknown option '{}' (known: summary, launches, pe-tracks, out=FILE)", w);
  }
  return o;
}

// The program-wide summary, printed when the program ends: per kernel, its
// launches, modelled time, energy, what its PEs did and its roofline.
struct Profiler {
  ProfileOptions opt = parse_env();
  std::mutex mu;
  struct Kernel {
    uint64_t launches = 0;
    LaunchProfile sum;  // figures summed over the launches
    uint64_t bound_cycles = 0;
    std::map<std::string, uint64_t> bounds;  // bound -> launches
  };
  std::map<std::string, Kernel> kernels;
  std::FILE* out = nullptr;

  std::FILE* stream() {
    if (out) return out;
    if (!opt.out.empty()) {
      out = std::fopen(opt.out.c_str(), "w");
      if (!out) log(Level::error, "KILN_PROFILE: cannot write {}", opt.out);
    }
    if (!out) out = stderr;
    return out;
  }
  void add(const LaunchProfile& p) {
    std::lock_guard g(mu);
    if (opt.launches) fmt::print(stream(), "kiln-prof: {}", p.report());
    auto& k = kernels[p.kernel];
    k.launches++;
    k.sum += p;
    Roofline r = p.roofline();
    k.bound_cycles += r.bound_cycles;
    k.bounds[r.bound]++;
  }
  ~Profiler() {
    if (!opt.enabled || kernels.empty()) return;
    std::FILE* f = stream();
    uint64_t all = 0, all_pj = 0;
    for (const auto& [n, k] : kernels) all += k.sum.cycles, all_pj += k.sum.energy_pj;
    std::vector<const Kernel*> order;
    for (const auto& [n, k] : kernels) order.push_back(&k);
    std::sort(order.begin(), order.end(), [](auto* a, auto* b) { return a->sum.cycles > b->sum.cycles; });
    const uint32_t mhz = order.front()->sum.clock_mhz;
    fmt::print(f, "kiln-prof: {} launches, {:.3f} ms modelled, {:.3f} mJ\n",
               [&] {
                 uint64_t n = 0;
                 for (auto* k : order) n += k->launches;
                 return n;
               }(),
               double(cycles_to_time(all, mhz).count()) * 1e-6, double(all_pj) * 1e-9);
    fmt::print(f, "{:>6} {:>7} {:>11}  {:<24} {:<58} {}\n", "time%", "calls", "total us", "kernel",
               "PE time: where the cycles went", "roofline");
    for (const Kernel* k : order) {
      const auto& s = k->sum;
      std::string split;
      const double pe_cycles = double(s.cycles) * double(std::max<size_t>(1, s.pes.size()));
      std::vector<std::pair<uint64_t, size_t>> acts;
      for (size_t a = 0; a < activity_count; a++) acts.emplace_back(s.total(Activity(a)), a);
      std::sort(acts.rbegin(), acts.rend());
      for (auto [t, a] : acts)
        if (t && split.size() < 50) split += fmt::format("{} {:.0f}% ", to_string(Activity(a)), 100.0 * t / pe_cycles);
      std::string bound;
      for (const auto& [b, n] : k->bounds) bound += fmt::format("{}{}", bound.empty() ? "" : "/", b);
      fmt::print(f, "{:>5.1f}% {:>7} {:>11.1f}  {:<24} {:<58} {}-bound, {:.0f}% reached\n",
                 all ? 100.0 * s.cycles / all : 0.0, k->launches, double(cycles_to_time(s.cycles, mhz).count()) * 1e-3,
                 s.kernel, split, bound, s.cycles ? 100.0 * k->bound_cycles / s.cycles : 0.0);
    }
    std::fflush(f);
    if (f != stderr) std::fclose(f);
  }
};

Profiler& profiler() {
  static Profiler p;
  return p;
}

}  // namespace

const ProfileOptions& profile_options() {
  return profiler().opt;
}

void profile_collect(const LaunchProfile& p) {
  if (profiler().opt.enabled) profiler().add(p);
}

}  // namespace detail
}  // namespace kiln
