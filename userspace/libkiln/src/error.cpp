// SPDX-License-Identifier: MIT
// libkiln: error category, errno mapping, logging and tracing.
#include <fmt/format.h>
#include <kiln/hw/kiln_status.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>

#include "internal.hpp"

namespace kiln {

namespace {
class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "kiln"; }
  std::string message(int c) const override {
    switch (Errc(c)) {
      case Errc::ok:
        return "success";
      case Errc::invalid_argument:
        return "invalid argument";
      case Errc::out_of_memory:
        return "out of memory";
      case Errc::not_supported:
        return "not supported";
      case Errc::permission_denied:
        return "permission denied";
      case Errc::timeout:
        return "timed out";
      case Errc::device_lost:
        return "device lost";
      case Errc::kernel_fault:
        return "kernel fault";
      case Errc::job_failed:
        return "job failed";
      case Errc::binary_incompatible:
        return "kernel binary incompatible";
      case Errc::invalid_binary:
        return "invalid kernel binary";
      case Errc::no_device:
        return "no device";
      case Errc::not_found:
        return "not found";
      case Errc::version_mismatch:
        return "driver version mismatch";
      case Errc::io_error:
        return "I/O error";
    }
    return "unknown kiln error";
  }
};
}  // namespace

const std::error_category& category() noexcept {
  static const Category c;
  return c;
}

std::string_view status_name(uint32_t s) noexcept {
  static constexpr std::string_view names[] = {
      "OK",        "BAD_PACKET",          "PRIVILEGED", "BAD_ADDRESS",      "MMU_FAULT",
      "DMA_ERROR", "ILLEGAL_INSTRUCTION", "MISALIGNED", "LOCAL_MEM_BOUNDS", "KERNEL_TRAP",
      "WATCHDOG",  "BAD_LAUNCH",          "ABORTED",    "RING_OVERFLOW",    "BAD_REGISTER",
      "FATAL",     "BAD_CONTEXT",         "INTERRUPTED"};
  static_assert(std::size(names) == KILN_STATUS_COUNT);
  return s < std::size(names) ? names[s] : "UNKNOWN";
}

Error::Error(Errc code, const std::string& what, std::string_view ioctl, int os_errno, std::optional<JobFault> job)
    : std::system_error(make_error_code(code), what), ioctl_(ioctl), errno_(os_errno), job_(std::move(job)) {}

Errc errc_from_errno(int err) noexcept {
  switch (err) {
    case 0:
      return Errc::ok;
    case EINVAL:
    case EFAULT:
    case E2BIG:
    case EBADF:
    case ENOENT:
      return Errc::invalid_argument;
    case ENOMEM:
    case ENOSPC:
      return Errc::out_of_memory;
    case ENOTTY:
    case EOPNOTSUPP:
    case ENOSYS:
      return Errc::not_supported;
    case EACCES:
    case EPERM:
      return Errc::permission_denied;
    case ETIME:
    case ETIMEDOUT:
      return Errc::timeout;
    case ENODEV:
    case ENXIO:
      return Errc::device_lost;
    case ECANCELED:
      return Errc::job_failed;
    default:
      return Errc::io_error;
  }
}

const char* version_string() noexcept {
  return "0.1.0";
}

namespace detail {

void throw_ioctl_error(std::string_view ioctl, int err, std::string_view what) {
  Errc e = errc_from_errno(err);
  std::string msg = fmt::format("{} failed: {} (errno {})", ioctl, std::strerror(err), err);
  if (!what.empty()) msg = fmt::format("{}: {}", what, msg);
  if (e == Errc::permission_denied && ioctl == "open")
    msg += "; is your user in the 'render' group? (see kiln::diagnose())";
  if (e == Errc::device_lost) throw DeviceLost(e, msg, ioctl, err);
  throw Error(e, msg, ioctl, err);
}

// ---- logging ---------------------------------------------------------------
Level log_level() noexcept {
  static const Level lvl = [] {
    const char* s = std::getenv("KILN_LOG");
    if (!s) return Level::warn;
    std::string_view v(s);
    if (v == "off" || v == "0" || v == "none") return Level::off;
    if (v == "error") return Level::error;
    if (v == "warn" || v == "warning") return Level::warn;
    if (v == "info" || v == "1") return Level::info;
    if (v == "debug" || v == "2") return Level::debug;
    if (v == "trace" || v == "3") return Level::trace;
    // A typo must not silently hide the output the user asked for.
    log_write(Level::warn, fmt::format("KILN_LOG='{}' is not one of off, error, warn, info, debug, trace "
                                       "(or 0-3); using warn",
                                       v));
    return Level::warn;
  }();
  return lvl;
}

namespace {
// Read KILN_LOG when the library loads, so a bad value is reported even by a program
// that never logs anything.
[[maybe_unused]] const Level initial_level = log_level();
}  // namespace

void log_write(Level l, const std::string& msg) {
  static constexpr const char* names[] = {"", "error", "warn", "info", "debug", "trace"};
  static std::mutex mu;
  std::lock_guard g(mu);
  fmt::print(stderr, "kiln[{}] {}: {}\n", ::getpid(), names[int(l)], msg);
}

// ---- tracing ---------------------------------------------------------------
namespace {
struct Tracer {
  std::mutex mu;
  std::string path;
  std::vector<TraceRecord> recs;
  int64_t t0 = 0;
  bool dirty = false;
  Tracer() {
    if (const char* p = std::getenv("KILN_TRACE"); p && *p) path = p;
    t0 = std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
             .count();
  }
  ~Tracer() { flush(); }
  static std::string esc(std::string_view s) {
    std::string o;
    for (char c : s) {
      if (c == '"' || c == '\\')
        o += '\\', o += c;
      else if (uint8_t(c) < 0x20)
        o += fmt::format("\\u{:04x}", int(c));
      else
        o += c;
    }
    return o;
  }
  void flush() {
    std::lock_guard g(mu);
    if (path.empty() || !dirty) return;
    std::ofstream f(path, std::ios::trunc);
    if (!f) {
      log(Level::error, "KILN_TRACE: cannot write {}", path);
      return;
    }
    f << "{\"displayTimeUnit\":\"ns\",\"traceEvents\":[\n";
    f << R"J({"ph":"M","pid":1,"name":"process_name","args":{"name":"host (libkiln)"}},)J"
         "\n";
    f << R"J({"ph":"M","pid":2,"name":"process_name","args":{"name":"kiln device (modelled time)"}},)J"
         "\n";
    f << R"J({"ph":"M","pid":3,"name":"process_name","args":{"name":"kiln PEs (modelled time)"}})J";
    // Records come in completion order, and the tracer may start after the first
    // submission: time 0 is the earliest submission, so no "ts" is negative.
    int64_t origin = t0;
    for (const auto& r : recs) origin = std::min(origin, r.host_submit_ns);
    // The device track is in modelled time: the device's cycle counter at the
    // modelled clock. It has no relation to the host clock, so the earliest
    // job's start is placed at its host submit, and the rest keep their
    // modelled distances from it.
    auto dev_ns = [](uint64_t cycles, uint32_t mhz) { return mhz ? double(cycles) * 1e3 / mhz : 0.0; };
    double dev_shift = 0;
    bool have_shift = false;
    uint64_t first_start = UINT64_MAX;
    for (const auto& r : recs) {
      if ((r.cycles_start || r.cycles) && r.cycles_start < first_start) {
        first_start = r.cycles_start;
        dev_shift = double(r.host_submit_ns - origin) - dev_ns(r.cycles_start, r.clock_mhz);
        have_shift = true;
      }
    }
    for (const auto& r : recs) {
      auto args = fmt::format(
          R"("ctx":{},"seqno":{},"status":"{}","cycles":{},"device_ns":{:.0f},"emulator_ns":{},"energy_uj":{:.3f},)"
          R"("commands":"{}")",
          r.ctx, r.seqno, status_name(r.status), r.cycles, dev_ns(r.cycles, r.clock_mhz), r.emulator_ns,
          double(r.energy_pj) * 1e-6, esc(r.commands));
      f << fmt::format(
          ",\n{{\"ph\":\"X\",\"pid\":1,\"tid\":{},\"name\":\"{}\",\"cat\":\"{}\",\"ts\":{:.3f},\"dur\":{:.3f},\"args\":"
          "{{{}}}}}",
          r.ctx, esc(r.name), esc(r.category), double(r.host_submit_ns - origin) / 1e3,
          double(std::max<int64_t>(0, r.host_complete_ns - r.host_submit_ns)) / 1e3, args);
      if (have_shift && (r.cycles_start || r.cycles))
        f << fmt::format(
            ",\n{{\"ph\":\"X\",\"pid\":2,\"tid\":{},\"name\":\"{}\",\"cat\":\"{}\",\"ts\":{:.3f},\"dur\":{:.3f},"
            "\"args\":{{{}}}}}",
            r.ctx, esc(r.name), esc(r.category), (dev_ns(r.cycles_start, r.clock_mhz) + dev_shift) / 1e3,
            dev_ns(r.cycles, r.clock_mhz) / 1e3, args);
      // KILN_PROFILE=pe-tracks: what each PE did, one track per PE; the
      // gaps between the device's intervals are scalar code.
      for (const auto& l : r.launches) {
        if (!have_shift) break;
        auto slice = [&](size_t pe, uint64_t start, uint64_t cycles, std::string_view what) {
          f << fmt::format(
              ",\n{{\"ph\":\"X\",\"pid\":3,\"tid\":{},\"name\":\"{}\",\"cat\":\"{}\",\"ts\":{:.3f},\"dur\":{:.3f}}}",
              pe, what, esc(l.kernel), (dev_ns(l.start_cycles + start, l.clock_mhz) + dev_shift) / 1e3,
              dev_ns(cycles, l.clock_mhz) / 1e3);
        };
        for (size_t pe = 0; pe < l.pes.size(); pe++) {
          const auto& p = l.pes[pe];
          if (!p.workgroups || p.timeline.empty()) continue;
          uint64_t at = 0;
          for (const auto& sg : p.timeline) {
            if (sg.start > at) slice(pe, at, sg.start - at, "scalar");
            slice(pe, sg.start, sg.cycles, to_string(sg.activity));
            at = sg.start + sg.cycles;
          }
          if (at < l.cycles && !p.dropped) slice(pe, at, l.cycles - at, "scalar");
        }
      }
    }
    f << "\n]}\n";
    dirty = false;
  }
};
Tracer& tracer() {
  static Tracer t;
  return t;
}
}  // namespace

bool trace_enabled() noexcept {
  return !tracer().path.empty();
}
void trace_record(TraceRecord r) {
  auto& t = tracer();
  if (t.path.empty()) return;
  std::lock_guard g(t.mu);
  t.recs.push_back(std::move(r));
  t.dirty = true;
}
void trace_flush() {
  if (trace_enabled()) tracer().flush();
}

}  // namespace detail
}  // namespace kiln
