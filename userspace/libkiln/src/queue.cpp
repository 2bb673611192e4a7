// SPDX-License-Identifier: MIT
// libkiln: command lists, queues, submissions and events.
//
// Every submission is one command buffer in a pooled host BO, laid out and
// written by the Encoder (encoder.hpp), submitted with DRM_IOCTL_KILN_SUBMIT
// signalling the queue's timeline syncobj at the next point. The BO, the
// buffers the commands use and the staging memory stay alive until that
// point signals and the submission is retired: its outcome read from the
// context's job-status ring (no ioctl), readbacks copied out.
#include <fmt/format.h>
#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_mmu.h>
#include <kiln/hw/kiln_packets.h>
#include <kiln/hw/kiln_profile.h>
#include <kiln/hw/kiln_status.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstring>

#include "internal.hpp"

namespace kiln {
using detail::HandleAccess;
namespace detail {
namespace {

int64_t steady_ns(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

bool is_kernel_fault(uint32_t s) {
  switch (s) {
    case KILN_STATUS_ILLEGAL_INSTRUCTION:
    case KILN_STATUS_MISALIGNED:
    case KILN_STATUS_LOCAL_MEM_BOUNDS:
    case KILN_STATUS_KERNEL_TRAP:
    case KILN_STATUS_WATCHDOG:
      return true;
    default:
      return false;
  }
}

const char* access_name(uint32_t a) {
  switch (a) {
    case KILN_ACCESS_READ:
      return "read";
    case KILN_ACCESS_WRITE:
      return "write";
    case KILN_ACCESS_READ | KILN_ACCESS_WRITE:
      return "read/write";
    case KILN_ACCESS_EXEC:
      return "instruction fetch";
    default:
      return "access";
  }
}

const char* mmu_reason_name(uint32_t r) {
  switch (r) {
    case KILN_MMU_FAULT_NOT_PRESENT:
      return "not mapped";
    case KILN_MMU_FAULT_PERMISSION:
      return "mapping lacks the permission";
    case KILN_MMU_FAULT_RESERVED:
      return "reserved page-table bits";
    case KILN_MMU_FAULT_BAD_PA:
      return "maps outside device memory";
    case KILN_MMU_FAULT_NON_CANONICAL:
      return "above the 48-bit address space";
    case KILN_MMU_FAULT_TABLE_DMA:
      return "page-table read failed";
    case KILN_MMU_FAULT_INJECTED:
      return "injected fault";
    default:
      return nullptr;
  }
}

// What fault_addr / fault_access / fault_reason mean depends on the status
// (docs/pe-isa.md section 3): an address, the instruction bits, a trap code, a
// cycle count.
std::string fault_detail(const drm_kiln_job_status& js) {
  const uint64_t a = js.fault_addr;
  switch (js.status) {
    case KILN_STATUS_MMU_FAULT: {
      std::string m = fmt::format("{} of address {:#x}", access_name(js.fault_access), a);
      if (const char* r = mmu_reason_name(js.fault_reason)) m += fmt::format(" ({})", r);
      return m;
    }
    case KILN_STATUS_MISALIGNED:
      return js.fault_access == KILN_ACCESS_EXEC ? fmt::format("jump to misaligned address {:#x}", a)
                                                 : fmt::format("misaligned {} of address {:#x}",
                                                               access_name(js.fault_access), a);
    case KILN_STATUS_LOCAL_MEM_BOUNDS:
      return fmt::format("{} of address {:#x}, outside the PE's local memory", access_name(js.fault_access), a);
    case KILN_STATUS_ILLEGAL_INSTRUCTION:
      // A unit's descriptor lives in local memory (at or above 2^48); instruction bits
      // fit in 32.
      return a >> 32 ? fmt::format("invalid unit descriptor at {:#x}", a)
                     : fmt::format("instruction bits {:#010x}", a);
    case KILN_STATUS_KERNEL_TRAP:
      if (js.fault_reason == 8) return "ecall";
      if (js.fault_reason == 3) return fmt::format("trap code {} (kiln_trap or ebreak)", int64_t(a));
      return fmt::format("gather index {} out of range", int64_t(a));
    case KILN_STATUS_WATCHDOG:
      return fmt::format("stopped after {} emulated cycles (raise Launch::watchdog_mcycles)", a);
    default:
      return a ? fmt::format("address {:#x}", a) : std::string();
  }
}

void check_same_device(const std::shared_ptr<DeviceState>& dev, const std::shared_ptr<Bo>& bo, const char* what) {
  if (!bo) fail(Errc::invalid_argument, "{}: empty Buffer", what);
  if (bo->dev != dev) fail(Errc::invalid_argument, "{}: Buffer belongs to another Device", what);
}

void check_range(const std::shared_ptr<Bo>& bo, uint64_t off, uint64_t size, const char* what) {
  if (off > bo->size || size > bo->size - off)
    fail(Errc::invalid_argument, "{}: range [{}, +{}) outside the {}-byte buffer", what, off, size, bo->size);
}

}  // namespace

// ---- StatusRing --------------------------------------------------------------
StatusRing::StatusRing(std::shared_ptr<Driver> drv, const drm_kiln_ctx_create& cc) : drv_(std::move(drv)) {
  if (!cc.status_size || cc.status_stride < sizeof(drm_kiln_job_record)) return;  // uAPI < 1.4
  map_ = drv_->mmap_readonly(cc.status_offset, cc.status_size);
  size_ = cc.status_size, stride_ = cc.status_stride, count_ = cc.status_size / cc.status_stride;
}

StatusRing::~StatusRing() {
  if (map_) drv_->munmap(map_, size_);
}

std::optional<drm_kiln_job_status> StatusRing::read(uint64_t seqno) const noexcept {
  if (!count_) return std::nullopt;
  // The kernel writes the record while we may read it: seqno, then the
  // fields, then seqno again, each load ordered (drm_kiln_job_record).
  const std::byte* p = map_ + size_t(seqno % count_) * stride_;
  auto field = [p](auto& v, size_t off) {
    std::atomic_ref<std::remove_reference_t<decltype(v)>> a(
        *reinterpret_cast<std::remove_reference_t<decltype(v)>*>(const_cast<std::byte*>(p) + off));
    v = a.load(std::memory_order_acquire);
  };
  drm_kiln_job_record r{};
  uint64_t again = 0;
  field(r.seqno, offsetof(drm_kiln_job_record, seqno));
  field(r.state, offsetof(drm_kiln_job_record, state));
  if (r.seqno != seqno || r.state != DRM_KILN_JOB_DONE) return std::nullopt;
  std::memcpy(&r, p, sizeof r);
  std::atomic_thread_fence(std::memory_order_acquire);
  field(again, offsetof(drm_kiln_job_record, seqno));
  if (again != seqno) return std::nullopt;
  drm_kiln_job_status js{};
  js.seqno = seqno, js.state = DRM_KILN_JOB_DONE, js.status = r.status, js.packet_index = r.packet_index;
  js.pe = r.pe, js.pc = r.pc, js.fault_addr = r.fault_addr, js.fault_access = r.fault_access;
  js.fault_reason = r.fault_reason, js.cycles = r.cycles, js.elapsed_ns = r.elapsed_ns, js.error = r.error;
  js.energy_pj = r.energy_pj;
  return js;
}

// ---- Submission ------------------------------------------------------------
std::optional<drm_kiln_job_status> Submission::outcome() noexcept {
  if (ring)
    if (auto js = ring->read(seqno)) return js;
  // No ring (driver before uAPI 1.4), or the record was reused.
  drm_kiln_job_status js{};
  js.ctx_id = ctx;
  js.seqno = seqno;
  try {
    dev->drv->job_status(js);
    if (js.state == DRM_KILN_JOB_DONE) return js;
  } catch (const Error& e) {
    log(Level::debug, "JOB_STATUS ctx {} seqno {}: {}", ctx, seqno, e.what());
  }
  // Record gone: fall back to the context's last error.
  drm_kiln_ctx_status cs{};
  cs.ctx_id = ctx;
  try {
    dev->drv->ctx_status(cs);
    if (cs.error_seqno == seqno && cs.error_status != KILN_STATUS_OK) {
      js.status = cs.error_status, js.fault_addr = cs.fault_addr, js.fault_access = cs.fault_access;
      js.fault_reason = cs.fault_reason, js.pe = KILN_JOB_STATUS_NO_PE;
      return js;
    }
  } catch (const Error&) {
  }
  return std::nullopt;
}

void Submission::retire() noexcept {
  std::lock_guard g(mu);
  if (retired) return;
  retired = true;
  timing.host_complete = std::chrono::steady_clock::now();
  const auto js = outcome();
  if (js) job_cycles = js->cycles, job_elapsed_ns = js->elapsed_ns, job_energy_pj = js->energy_pj;
  // Also for a failed job: what a kernel printed before it faulted explains the fault.
  deliver_debug_output();
  // Profiles of the launches that ran (a failed job's profile tells where it
  // stopped, too).
  if (cmd && cmd->map)
    for (auto& l : enc.launches)
      if (l.profile_size)
        if (auto p = parse_profile(std::span(cmd->map + l.profile_offset, l.profile_size), l.kernel, l.grid,
                                   clock_mhz)) {
          profile_collect(*p);
          profiles.push_back(std::move(*p));
        }
  if (js && (js->status != KILN_STATUS_OK || js->error != 0)) {
    fail(*js);
  } else if (cmd && cmd->map) {
    if (enc.ts_offset) {
      kiln_timestamp ts[2];
      std::memcpy(ts, cmd->map + enc.ts_offset, sizeof ts);
      timing.emulator_start_ns = ts[0].device_ns, timing.cycles_start = ts[0].cycles;
      timing.emulator_end_ns = ts[1].device_ns, timing.cycles_end = ts[1].cycles;
    }
    for (const auto& r : enc.readbacks) std::memcpy(r.dst.data(), cmd->map + r.offset, r.dst.size());
  }
  if (trace_enabled()) {
    TraceRecord r;
    const auto& pm = enc.packet_map;
    r.name = pm.size() == 1 ? pm[0].second : fmt::format("submit ({} commands)", pm.size());
    r.category = pm.size() == 1 ? pm[0].second.substr(0, pm[0].second.find(' ')) : "submit";
    r.ctx = ctx, r.seqno = seqno;
    r.host_submit_ns = steady_ns(timing.host_submit), r.host_complete_ns = steady_ns(timing.host_complete);
    r.cycles_start = timing.cycles_start;
    r.cycles = job_cycles ? job_cycles : timing.cycles();
    r.clock_mhz = clock_mhz;
    r.emulator_ns = job_elapsed_ns, r.energy_pj = job_energy_pj;
    r.status = js ? js->status : 0;
    r.commands = enc.summary;
    if (profile_options().pe_tracks) r.launches = profiles;
    trace_record(std::move(r));
  }
  enc.residency.clear();
  dev->give_back(std::move(cmd));
}

// The job failed: build the error every wait rethrows.
void Submission::fail(const drm_kiln_job_status& js) noexcept {
  JobFault jf;
  jf.seqno = seqno;
  jf.status = js.status;
  jf.packet_index = js.packet_index;
  if (js.pe != KILN_JOB_STATUS_NO_PE) jf.pe = js.pe;
  jf.pc = js.pc, jf.fault_addr = js.fault_addr, jf.fault_access = js.fault_access, jf.fault_reason = js.fault_reason;
  jf.fence_error = js.error;
  std::string where;
  const auto& pm = enc.packet_map;
  for (size_t i = 0; i < pm.size(); i++)
    if (js.packet_index >= pm[i].first && (i + 1 == pm.size() || js.packet_index < pm[i + 1].first)) {
      jf.command_index = uint32_t(i);
      where = fmt::format(" in command {} ({})", i, pm[i].second);
    }
  std::string msg;
  Errc code = Errc::job_failed;
  if (js.status == KILN_STATUS_MMU_FAULT || is_kernel_fault(js.status)) {
    code = jf.pe ? Errc::kernel_fault : Errc::job_failed;
    msg = fmt::format("job {} failed{}: {}", seqno, where, status_name(js.status));
    if (jf.pe) {
      uint32_t w = std::max<uint32_t>(1, dev->info.pe_grid_width);
      msg += fmt::format(" on PE {} ({},{}) at pc {:#x}", *jf.pe, *jf.pe % w, *jf.pe / w, jf.pc);
      // The offset is the address `kiln-cc --disassemble` shows.
      for (const auto& l : enc.launches)
        if (jf.command_index && l.command == *jf.command_index && l.module_base) {
          jf.module_base = l.module_base;
          if (jf.pc >= l.module_base && jf.pc - l.module_base < l.module_size)
            msg += fmt::format(" (offset {:#x} in {}, loaded at {:#x})", jf.pc - l.module_base, l.module,
                               l.module_base);
          else
            msg += fmt::format(" (outside {}, loaded at {:#x}, {} bytes)", l.module, l.module_base, l.module_size);
        }
    }
    if (std::string d = fault_detail(js); !d.empty()) msg += ", " + d;
  } else if (js.status == KILN_STATUS_OK && js.error == -ETIMEDOUT) {
    code = Errc::timeout;
    msg = fmt::format("job {}{} timed out on the device and was stopped by the driver", seqno, where);
  } else {
    msg = fmt::format("job {} failed{}: {}", seqno, where, status_name(js.status));
    if (js.status == KILN_STATUS_BAD_LAUNCH && js.fault_addr)
      msg += fmt::format(" (a cooperative launch of {} workgroups, more than the PEs)", js.fault_addr);
    else if (js.fault_addr)
      msg += fmt::format(" (address {:#x})", js.fault_addr);
    if (js.error) msg += fmt::format(" (fence error {})", std::strerror(-js.error));
  }
  // Did the failure cost us the context (banned) or the device? Only a
  // failure pays for this ioctl.
  drm_kiln_ctx_status cs{};
  cs.ctx_id = ctx;
  try {
    dev->drv->ctx_status(cs);
    if (cs.flags & DRM_KILN_CTX_BANNED) lost = true;
  } catch (const Error& e) {
    if (e.errc() == Errc::device_lost) lost = true;
  }
  if (js.status == KILN_STATUS_FATAL) {
    std::lock_guard g2(dev->mu);
    if (!dev->lost.exchange(true)) dev->lost_reason = "fatal device error (" + msg + ")";
    lost = true;
  }
  if (lost)
    msg += "; the queue's context is lost (banned after a hang or reset): create a new Queue";
  else if (js.status == KILN_STATUS_INTERRUPTED)
    msg += " (it was running when the device was reset and was not re-run, so the buffers it "
           "writes may hold partial results; the device recovered: resubmit from clean inputs)";
  else if (js.status == KILN_STATUS_ABORTED)
    msg += " (aborted by a device reset; the device recovered: resubmit)";
  error_msg = msg;
  if (lost)
    error.emplace(DeviceLost(Errc::device_lost, msg, "DRM_IOCTL_KILN_JOB_STATUS", 0, jf));
  else
    error.emplace(Error(code, msg, "DRM_IOCTL_KILN_JOB_STATUS", 0, jf));
  log(Level::info, "{}", msg);
}

Usage Submission::usage() const {
  Usage u;
  u.cycles = job_cycles ? job_cycles : timing.cycles();
  u.device_time = cycles_to_time(u.cycles, clock_mhz);
  u.emulator_time = std::chrono::nanoseconds(job_elapsed_ns ? job_elapsed_ns : timing.emulator_end_ns - timing.emulator_start_ns);
  u.energy_pj = job_energy_pj;
  return u;
}

void Submission::deliver_debug_output() noexcept {
  if (!cmd || !cmd->map) return;
  for (const auto& l : enc.launches) {
    if (!l.debug_size) continue;
    // The device wrote this memory: bound every length by the buffer.
    const std::byte* buf = cmd->map + l.debug_offset;
    kiln_debug_header h;
    std::memcpy(&h, buf, sizeof h);
    const uint64_t cap = l.debug_size - sizeof h;
    const uint64_t used = std::min<uint64_t>(h.used, cap);
    try {
      for (uint64_t off = 0; off + sizeof(kiln_debug_record) <= used;) {
        kiln_debug_record r;
        std::memcpy(&r, buf + sizeof h + off, sizeof r);
        off += sizeof r;
        const uint64_t len = std::min<uint64_t>(r.len, used - off);
        std::string_view text(reinterpret_cast<const char*>(buf + sizeof h + off), len);
        off += (len + 7) & ~uint64_t(7);
        while (!text.empty()) {
          size_t nl = text.find('\n');
          DebugLine line{l.kernel, r.pe, r.wg, text.substr(0, nl)};
          text.remove_prefix(nl == text.npos ? text.size() : nl + 1);
          if (debug_sink && *debug_sink)
            (*debug_sink)(line);
          else
            // one write per line, so lines of concurrent threads do not interleave
            fmt::print(stderr, "[kiln {} pe {} wg {}] {}\n", line.kernel, line.pe, line.workgroup, line.text);
        }
      }
    } catch (const std::exception& e) {
      log(Level::warn, "kernel debug output sink threw: {}", e.what());
    }
    if (h.dropped)
      log(Level::warn,
          "{}: {} bytes of kernel debug output did not fit in the {}-byte debug buffer "
          "(Device::set_debug_output, KILN_DEBUG_BYTES)",
          l.kernel, h.dropped, l.debug_size);
  }
}

uint32_t debug_bytes_from_env() noexcept {
  static const uint32_t bytes = [] {
    const char* s = std::getenv("KILN_DEBUG_BYTES");
    if (!s || !*s) return uint32_t(default_debug_bytes);
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(s, &end, 0);
    if (errno || *end || (v && v < min_debug_bytes) || v > max_debug_bytes) {
      log(Level::warn, "KILN_DEBUG_BYTES='{}' is not 0 or a size from {} to {}; using {}", s, min_debug_bytes,
          max_debug_bytes, default_debug_bytes);
      return uint32_t(default_debug_bytes);
    }
    return uint32_t(v);
  }();
  return bytes;
}

void Submission::rethrow() const {
  if (!error) return;
  if (lost) throw DeviceLost(error->errc(), error_msg, error->ioctl(), error->os_errno(), error->job());
  throw Error(error->errc(), error_msg, error->ioctl(), error->os_errno(), error->job());
}

// ---- QueueState ------------------------------------------------------------
std::shared_ptr<QueueState> make_queue(const Device& device, QueueDesc desc) {
  auto dev = HandleAccess::state(device);
  dev->check_lost();
  auto q = std::make_shared<QueueState>(dev, device);
  drm_kiln_ctx_create cc{};
  cc.priority = uint32_t(desc.priority);
  cc.timeout_ms = desc.timeout_ms;
  dev->drv->ctx_create(cc);
  q->ctx = cc.ctx_id;
  q->profiling = desc.profiling || profile_options().enabled;
  // The trace's clock is the device's cycle counter: it needs the timestamps.
  q->timestamps = desc.timestamps || trace_enabled();
  try {
    q->ring = std::make_shared<const StatusRing>(dev->drv, cc);
    q->syncobj = dev->drv->syncobj_create();
  } catch (...) {
    dev->drv->ctx_destroy(q->ctx);
    q->ctx = 0;
    throw;
  }
  // Unretired submissions are bounded by the driver's queued-job limit and
  // by the ring (a record must be read before its slot is reused).
  size_t limit = dev->info.max_queued_jobs ? dev->info.max_queued_jobs : SIZE_MAX;
  if (q->ring->records()) limit = std::min<size_t>(limit, q->ring->records());
  q->max_inflight = limit;
  log(Level::debug, "queue: context {} syncobj {} status ring of {} records", q->ctx, q->syncobj,
      q->ring->records());
  return q;
}

QueueState::~QueueState() {
  if (!ctx) return;
  try {
    if (next_point) wait_point(next_point);
  } catch (const std::exception& e) {
    log(Level::warn, "queue {}: waiting for work at destruction: {}", ctx, e.what());
  }
  for (auto& s : inflight) s->retire();
  inflight.clear();
  if (syncobj) dev->drv->syncobj_destroy(syncobj);
  dev->drv->ctx_destroy(ctx);
}

void QueueState::wait_point(uint64_t point) {
  dev->drv->syncobj_wait(std::span(&syncobj, 1), std::span(&point, 1), INT64_MAX);
}

// The one retire loop: in submission order, through timeline point `done`.
void QueueState::retire_through(uint64_t done) {
  while (!inflight.empty() && inflight.front()->point <= done) {
    auto s = std::move(inflight.front());
    inflight.pop_front();
    s->retire();
    if (s->error && !unreported) unreported = *s->error, unreported_sub = s;
    if (s->lost) lost = true, lost_reason = s->error ? s->error->what() : "context lost";
  }
}

void QueueState::retire_completed(bool block) {
  if (inflight.empty()) return;
  if (block) {
    wait_point(next_point);
    return retire_through(next_point);
  }
  try {
    retire_through(dev->drv->syncobj_query(syncobj));
  } catch (const Error&) {
  }
}

Event QueueState::submit(const Recording& rec, std::span<const Event> deps) {
  dev->check_lost();
  std::lock_guard g(mu);
  if (lost) throw DeviceLost(Errc::device_lost, "queue lost: " + lost_reason);

  EncodeOptions opt;
  {
    std::lock_guard g2(dev->mu);
    opt.debug_bytes = dev->debug_bytes;
  }
  opt.profiling = profiling, opt.pe_tracks = profile_options().pe_tracks, opt.timestamps = timestamps;
  opt.pes = dev->info.pe_count(), opt.max_cmd_size = dev->info.max_cmd_size;
  opt.max_submit_bos = dev->info.max_submit_bos;
  const Encoder encoder(rec, opt);

  // Back-pressure before the ioctl, against the published limit: wait for
  // the oldest submission rather than have SUBMIT refuse with -EBUSY.
  if (inflight.size() >= max_inflight) {
    wait_point(inflight.front()->point);
    retire_completed(false);
  }

  auto sub = std::make_shared<Submission>();
  sub->queue = weak_from_this();
  sub->dev = dev;
  sub->ring = ring;
  sub->ctx = ctx;
  sub->syncobj = syncobj;
  sub->clock_mhz = dev->info.clock_mhz ? dev->info.clock_mhz : KILN_PE_CLOCK_MHZ;
  sub->timing.clock_mhz = sub->clock_mhz;
  {
    std::lock_guard g2(dev->mu);
    sub->debug_sink = dev->debug_sink;
  }
  sub->cmd = dev->take_host_bo(encoder.size());
  sub->enc = encoder.encode(std::span(sub->cmd->map, encoder.size()), sub->cmd->va, sub->cmd);

  std::vector<drm_kiln_sync> syncs;
  auto add_dep = [&](const Event& e) {
    auto& s = HandleAccess::submission(e);
    if (!s || s->syncobj == syncobj) return;  // same queue: already in order
    if (s->dev != dev) fail(Errc::invalid_argument, "cannot wait on an Event of another Device");
    syncs.push_back({s->syncobj, DRM_KILN_SYNC_WAIT, s->point});
  };
  for (const auto& e : pending_waits) add_dep(e);
  for (const auto& e : deps) add_dep(e);
  uint64_t point = next_point + 1;
  syncs.push_back({syncobj, DRM_KILN_SYNC_SIGNAL, point});

  drm_kiln_submit a{};
  a.ctx_id = ctx;
  a.cmd_va = sub->cmd->va;
  a.cmd_size = uint32_t(sub->enc.cmd_size);
  a.bos = {reinterpret_cast<uintptr_t>(sub->enc.bos.data()), uint32_t(sub->enc.bos.size()), sizeof(drm_kiln_bo_ref)};
  a.syncs = {reinterpret_cast<uintptr_t>(syncs.data()), uint32_t(syncs.size()), sizeof(drm_kiln_sync)};
  sub->timing.host_submit = std::chrono::steady_clock::now();
  try {
    // -EBUSY now only comes from the file-wide limit (MAX_FILE_JOBS), which
    // one queue cannot see: wait for our oldest job and try again.
    for (;;) {
      try {
        dev->drv->submit(a);
        break;
      } catch (const Error& e) {
        if (e.os_errno() != EBUSY || inflight.empty()) throw;
        wait_point(inflight.front()->point);
        retire_completed(false);
      }
    }
  } catch (const Error& e) {
    sub->enc.residency.clear();
    dev->give_back(std::move(sub->cmd));
    if (e.errc() == Errc::device_lost) {
      try {
        dev->mark_lost(e.what());
      } catch (...) {
      }
    }
    if (e.os_errno() == ECANCELED || e.os_errno() == EIO) {
      lost = true;
      lost_reason = e.what();
      throw DeviceLost(Errc::device_lost, std::string(e.what()) + " (context banned: create a new Queue)", e.ioctl(),
                       e.os_errno());
    }
    throw;
  }
  next_point = point;
  sub->point = point;
  sub->seqno = a.seqno;
  pending_waits.clear();
  log(Level::trace, "submit ctx {} seqno {} point {}: {}", ctx, a.seqno, point, sub->enc.summary);
  // Reap what finished earlier, so fire-and-forget submissions do not pile
  // up. With nothing older in flight there is nothing to reap: skip the
  // SYNCOBJ_QUERY, it would only lengthen every submit-and-wait round trip.
  if (!inflight.empty()) retire_completed(false);
  inflight.push_back(sub);
  return HandleAccess::event(sub);
}

void run_blocking(const std::shared_ptr<DeviceState>& dev, Recording& rec) {
  auto q = make_queue(HandleAccess::device(dev), {});
  q->submit(rec, {}).wait();
}

}  // namespace detail

// ---- Event -----------------------------------------------------------------
namespace {
// Retire `s` and, first, everything older on its queue (the queue's one
// retire loop), so outcomes are collected in submission order.
void retire_upto(const std::shared_ptr<detail::Submission>& s) {
  if (auto q = s->queue.lock()) {
    std::lock_guard g(q->mu);
    q->retire_through(s->point);
  }
  s->retire();
}
}  // namespace

bool Event::wait(std::chrono::nanoseconds timeout) const {
  if (!s_) return true;
  bool retired;
  {
    std::lock_guard g(s_->mu);
    retired = s_->retired;
  }
  if (!retired) {
    int64_t abs = INT64_MAX;
    if (timeout != std::chrono::nanoseconds::max()) {
      int64_t now = detail::monotonic_ns();
      abs = timeout.count() > INT64_MAX - now ? INT64_MAX : now + std::max<int64_t>(0, timeout.count());
    }
    if (!s_->dev->drv->syncobj_wait(std::span(&s_->syncobj, 1), std::span(&s_->point, 1), abs)) return false;
    retire_upto(s_);
  }
  if (auto q = s_->queue.lock()) {
    std::lock_guard g(q->mu);
    if (q->unreported_sub == s_) q->unreported.reset(), q->unreported_sub.reset();
  }
  s_->rethrow();
  return true;
}

bool Event::ready() const {
  return wait(std::chrono::nanoseconds(0));
}

Timing Event::timing() const {
  wait();
  if (s_ && !s_->enc.ts_offset)
    throw Error(Errc::invalid_argument,
                "Event::timing: the queue has no timestamps (QueueDesc::timestamps); "
                "Event::usage() has the job's modelled cycles");
  return s_ ? s_->timing : Timing{};
}
Usage Event::usage() const {
  wait();
  return s_ ? s_->usage() : Usage{};
}
std::vector<LaunchProfile> Event::profiles() const {
  wait();
  return s_ ? s_->profiles : std::vector<LaunchProfile>{};
}
std::chrono::nanoseconds Event::elapsed_since(const Event& earlier) const {
  auto a = earlier.timing(), b = timing();
  return cycles_to_time(b.cycles_end, b.clock_mhz) - cycles_to_time(a.cycles_end, a.clock_mhz);
}
uint64_t Event::seqno() const noexcept {
  return s_ ? s_->seqno : 0;
}

// ---- CommandList -------------------------------------------------------------
CommandList::CommandList(const Device& dev) : r_(std::make_unique<detail::Recording>()) {
  r_->dev = HandleAccess::state(dev);
}
CommandList::CommandList(CommandList&&) noexcept = default;
CommandList& CommandList::operator=(CommandList&&) noexcept = default;
CommandList::~CommandList() = default;
size_t CommandList::size() const noexcept {
  return r_ ? r_->cmds.size() : 0;
}

CommandList& CommandList::copy(const Buffer& dst, const Buffer& src, size_t size, size_t dst_off, size_t src_off) {
  detail::check_same_device(r_->dev, HandleAccess::bo(dst), "copy destination");
  detail::check_same_device(r_->dev, HandleAccess::bo(src), "copy source");
  if (size == whole_size)
    size = std::min(dst.size() - std::min(dst_off, dst.size()), src.size() - std::min(src_off, src.size()));
  if (size == 0) throw Error(Errc::invalid_argument, "copy of 0 bytes");
  detail::check_range(HandleAccess::bo(dst), dst_off, size, "copy destination");
  detail::check_range(HandleAccess::bo(src), src_off, size, "copy source");
  if (HandleAccess::bo(dst) == HandleAccess::bo(src) && dst_off < src_off + size && src_off < dst_off + size)
    throw Error(Errc::invalid_argument, "copy within one buffer with overlapping ranges");
  detail::Cmd c{detail::Cmd::copy};
  c.label = fmt::format("copy {} B", size);
  c.dst = HandleAccess::bo(dst), c.src = HandleAccess::bo(src), c.size = size, c.dst_off = dst_off, c.src_off = src_off;
  r_->cmds.push_back(std::move(c));
  return *this;
}

CommandList& CommandList::write(const Buffer& dst, std::span<const std::byte> src, size_t dst_off) {
  detail::check_same_device(r_->dev, HandleAccess::bo(dst), "write destination");
  if (src.empty()) throw Error(Errc::invalid_argument, "write of 0 bytes");
  detail::check_range(HandleAccess::bo(dst), dst_off, src.size(), "write destination");
  detail::Cmd c{detail::Cmd::write};
  c.label = fmt::format("upload {} B", src.size());
  c.dst = HandleAccess::bo(dst), c.dst_off = dst_off, c.size = src.size(), c.host_src = src;
  r_->cmds.push_back(std::move(c));
  return *this;
}

CommandList& CommandList::read(std::span<std::byte> dst, const Buffer& src, size_t src_off) {
  detail::check_same_device(r_->dev, HandleAccess::bo(src), "read source");
  if (dst.empty()) throw Error(Errc::invalid_argument, "read of 0 bytes");
  detail::check_range(HandleAccess::bo(src), src_off, dst.size(), "read source");
  detail::Cmd c{detail::Cmd::read};
  c.label = fmt::format("download {} B", dst.size());
  c.src = HandleAccess::bo(src), c.src_off = src_off, c.size = dst.size(), c.host_dst = dst;
  r_->cmds.push_back(std::move(c));
  return *this;
}

CommandList& CommandList::fill(const Buffer& dst, uint32_t pattern, size_t size, size_t off) {
  detail::check_same_device(r_->dev, HandleAccess::bo(dst), "fill destination");
  if (size == whole_size) size = dst.size() - std::min(off, dst.size());
  if (size == 0 || size % 4 || off % 4)
    throw Error(Errc::invalid_argument,
                fmt::format("fill: size {} and offset {} must be non-zero multiples of 4", size, off));
  detail::check_range(HandleAccess::bo(dst), off, size, "fill destination");
  detail::Cmd c{detail::Cmd::fill};
  c.label = fmt::format("fill {} B", size);
  c.dst = HandleAccess::bo(dst), c.dst_off = off, c.size = size, c.pattern = pattern;
  r_->cmds.push_back(std::move(c));
  return *this;
}

CommandList& CommandList::launch(const Kernel& k, const Launch& l, const Args& args) {
  if (HandleAccess::module(k)->dev != r_->dev)
    throw Error(Errc::invalid_argument, fmt::format("kernel '{}' was loaded on another Device", k.name()));
  if (HandleAccess::module(args.kernel()) != HandleAccess::module(k) || &args.kernel().info() != &k.info())
    throw Error(Errc::invalid_argument,
                fmt::format("Args were built for kernel '{}', not '{}'", args.kernel().name(), k.name()));
  args.validate();
  for (int d = 0; d < 3; d++)
    if (l.grid[d] == 0 || l.grid[d] > KILN_LAUNCH_MAX_GRID)
      throw Error(Errc::invalid_argument, fmt::format("launch '{}': grid {}x{}x{} (each dimension 1..{})", k.name(),
                                                      l.grid[0], l.grid[1], l.grid[2], KILN_LAUNCH_MAX_GRID));
  const auto& info = r_->dev->info;
  uint32_t lm = l.local_mem ? l.local_mem : k.info().local_mem;
  if (info.local_mem_size && lm > info.local_mem_size)
    throw Error(Errc::invalid_argument, fmt::format("launch '{}': needs {} bytes of local memory, a PE has {}",
                                                    k.name(), lm, info.local_mem_size));
  bool coop = l.cooperative || k.info().cooperative;
  uint64_t groups = uint64_t(l.grid[0]) * l.grid[1] * l.grid[2];
  if (coop && info.pe_count() && groups > info.pe_count())
    throw Error(Errc::invalid_argument,
                fmt::format("launch '{}': a cooperative launch of {} workgroups exceeds the {} PEs", k.name(), groups,
                            info.pe_count()));
  detail::Cmd c{detail::Cmd::launch};
  c.label = fmt::format("launch {} [{}x{}x{}]", k.name(), l.grid[0], l.grid[1], l.grid[2]);
  c.kernel = k.name();
  c.module = HandleAccess::module(k);
  c.entry_va = k.entry_address();
  c.args.assign(args.block().begin(), args.block().end());
  c.args_align = k.info().args_align;
  c.grid = l.grid;
  c.local_mem = lm;
  c.watchdog = l.watchdog_mcycles;
  c.cooperative = coop;
  for (size_t i = 0; i < args.bos_.size(); i++)
    if (args.bos_[i]) c.refs.emplace_back(args.bos_[i], (uint32_t(args.bo_access_[i]) & uint32_t(Access::write)) != 0);
  r_->cmds.push_back(std::move(c));
  return *this;
}

CommandList& CommandList::barrier() {
  detail::Cmd c{detail::Cmd::barrier};
  c.label = "barrier";
  r_->cmds.push_back(std::move(c));
  return *this;
}

// ---- Queue -------------------------------------------------------------------
Queue::~Queue() = default;
uint32_t Queue::context_id() const noexcept {
  return s_->ctx;
}
const Device& Queue::device() const noexcept {
  return s_->device;
}

Event Queue::copy(const Buffer& dst, std::span<const std::byte> src, size_t dst_off, Deps deps) {
  CommandList cl(s_->device);
  cl.write(dst, src, dst_off);
  return s_->submit(*HandleAccess::recording(cl), deps);
}
Event Queue::copy(std::span<std::byte> dst, const Buffer& src, size_t src_off, Deps deps) {
  CommandList cl(s_->device);
  cl.read(dst, src, src_off);
  return s_->submit(*HandleAccess::recording(cl), deps);
}
Event Queue::copy(const Buffer& dst, const Buffer& src, size_t size, size_t dst_off, size_t src_off, Deps deps) {
  CommandList cl(s_->device);
  cl.copy(dst, src, size, dst_off, src_off);
  return s_->submit(*HandleAccess::recording(cl), deps);
}
Event Queue::fill(const Buffer& dst, uint32_t pattern, size_t size, size_t off, Deps deps) {
  CommandList cl(s_->device);
  cl.fill(dst, pattern, size, off);
  return s_->submit(*HandleAccess::recording(cl), deps);
}
Event Queue::launch(const Kernel& k, const Launch& l, const Args& args, Deps deps) {
  CommandList cl(s_->device);
  cl.launch(k, l, args);
  return s_->submit(*HandleAccess::recording(cl), deps);
}
Event Queue::submit(const CommandList& cl, Deps deps) {
  if (!HandleAccess::recording(cl) || HandleAccess::recording(cl)->dev != s_->dev)
    throw Error(Errc::invalid_argument, "CommandList belongs to another Device");
  return s_->submit(*HandleAccess::recording(cl), deps);
}
Event Queue::barrier(Deps deps) {
  CommandList cl(s_->device);
  cl.barrier();
  return s_->submit(*HandleAccess::recording(cl), deps);
}
void Queue::wait(const Event& e) {
  std::lock_guard g(s_->mu);
  s_->pending_waits.push_back(e);
}
void Queue::finish() {
  std::optional<Error> err;
  std::shared_ptr<detail::Submission> sub;
  {
    std::lock_guard g(s_->mu);
    s_->retire_completed(true);
    err = std::move(s_->unreported);
    sub = std::move(s_->unreported_sub);
    s_->unreported.reset();
    s_->unreported_sub.reset();
  }
  if (sub) sub->rethrow();
  if (s_->lost) throw DeviceLost(Errc::device_lost, "queue lost: " + s_->lost_reason);
}

}  // namespace kiln
