// SPDX-License-Identifier: MIT
// libkiln: fake driver for unit tests (see fake_driver.hpp).
#include "fake_driver.hpp"

#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_mmu.h>
#include <kiln/hw/kiln_profile.h>
#include <kiln/hw/kiln_regs.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "internal.hpp"

extern "C" {
#include "kiln_packet.h"  // the device engine's decoder and validator
}

namespace kiln::detail {
namespace {
// dma-buf "fds" shared between fake drivers in one process.
std::mutex g_prime_mu;
std::map<int, std::tuple<std::shared_ptr<void>, uint64_t, uint32_t>> g_prime;
int g_next_prime_fd = 10000;
}  // namespace

FakeDriver::FakeDriver(Options o) : o_(std::move(o)) {}

void FakeDriver::check_inject(const char* name) {
  calls_[name]++;
  auto it = inject_.find(name);
  if (it == inject_.end()) return;
  int err = it->second.first;
  if (--it->second.second <= 0) inject_.erase(it);
  throw_ioctl_error(name, err, "fake");
}

void FakeDriver::inject_error(std::string ioctl, int err, int count) {
  std::lock_guard g(mu_);
  inject_[std::move(ioctl)] = {err, count};
}
void FakeDriver::hold() {
  std::lock_guard g(mu_);
  holding_ = true;
}
void FakeDriver::release() {
  std::lock_guard g(mu_);
  holding_ = false;
  for (auto& j : held_) run(j);
  held_.clear();
  cv_.notify_all();
}
void FakeDriver::set_launch_hook(LaunchHook h) {
  std::lock_guard g(mu_);
  hook_ = std::move(h);
}
void FakeDriver::fail_next_job(LaunchResult r) {
  std::lock_guard g(mu_);
  fail_next_ = r;
}
void FakeDriver::reset_device(bool ban) {
  std::lock_guard g(mu_);
  for (auto& j : held_) {
    drm_kiln_job_status st{};
    st.state = DRM_KILN_JOB_DONE;
    st.status = KILN_STATUS_ABORTED;
    st.pe = KILN_JOB_STATUS_NO_PE;
    st.error = -ECANCELED;
    if (ban) ctxs_[j.ctx].banned = true;
    complete(j, st);
  }
  held_.clear();
  holding_ = false;
  cv_.notify_all();
}

std::span<std::byte> FakeDriver::memory(uint64_t va, uint64_t size) {
  std::lock_guard g(mu_);
  for (auto& [h, b] : bos_)
    if (va >= b.va && va - b.va <= b.size && size <= b.size - (va - b.va))
      return {b.mem->bytes.data() + (va - b.va), size_t(size)};
  return {};
}

size_t FakeDriver::live_bos() const {
  std::lock_guard g(mu_);
  return bos_.size();
}
size_t FakeDriver::live_contexts() const {
  std::lock_guard g(mu_);
  return ctxs_.size();
}
size_t FakeDriver::live_syncobjs() const {
  std::lock_guard g(mu_);
  return syncobjs_.size();
}
size_t FakeDriver::submits() const {
  std::lock_guard g(mu_);
  return submits_;
}
size_t FakeDriver::ioctl_count(const std::string& n) const {
  std::lock_guard g(mu_);
  auto it = calls_.find(n);
  return it == calls_.end() ? 0 : it->second;
}
std::vector<kiln_pkt_generic> FakeDriver::last_packets() const {
  std::lock_guard g(mu_);
  return last_packets_;
}
std::vector<drm_kiln_bo_ref> FakeDriver::last_bo_list() const {
  std::lock_guard g(mu_);
  return last_bos_;
}
std::vector<drm_kiln_sync> FakeDriver::last_syncs() const {
  std::lock_guard g(mu_);
  return last_syncs_;
}

DriverVersion FakeDriver::version() {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_VERSION");
  return {o_.name, o_.major, o_.minor, 0};
}

uint64_t FakeDriver::get_param(uint32_t p) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_GET_PARAM");
  switch (p) {
    case DRM_KILN_PARAM_DEVICE_ID:
      return KILN_PCI_DEVICE_ID;
    case DRM_KILN_PARAM_NUM_QUEUES:
      return 4;
    case DRM_KILN_PARAM_PE_GRID:
      return o_.grid_w | o_.grid_h << 8;
    case DRM_KILN_PARAM_LOCAL_MEM_SIZE:
      return o_.local_mem;
    case DRM_KILN_PARAM_DRAM_SIZE:
      return o_.dram_size;
    case DRM_KILN_PARAM_DRAM_FREE:
      return o_.dram_size - dram_used_;
    case DRM_KILN_PARAM_SRAM_SIZE:
    case DRM_KILN_PARAM_SRAM_FREE:
      return KILN_SRAM_SIZE;
    case DRM_KILN_PARAM_VA_START:
      return 0x100000000ull;
    case DRM_KILN_PARAM_VA_END:
      return 0x10000000000ull;
    case DRM_KILN_PARAM_JOB_TIMEOUT_MS:
      return 5000;
    case DRM_KILN_PARAM_MAX_SUBMIT_BOS:
      return o_.max_submit_bos;
    case DRM_KILN_PARAM_MAX_QUEUED_JOBS:
      return o_.max_queued_jobs;
    case DRM_KILN_PARAM_MAX_SUBMIT_SYNCS:
      return 64;
    case DRM_KILN_PARAM_MAX_CMD_SIZE:
      return o_.max_cmd_size;
    case DRM_KILN_PARAM_UAPI_VERSION:
      return uint64_t(o_.major) << 16 | uint64_t(o_.minor);
    case DRM_KILN_PARAM_CLOCK_MHZ:
      return KILN_PE_CLOCK_MHZ;
    case DRM_KILN_PARAM_MAX_CONTEXTS:
      return 63;
    case DRM_KILN_PARAM_CONTEXTS_IN_USE:
      return ctxs_.size();
    default:
      if (p < DRM_KILN_PARAM_NUM_PARAMS) return 0;
      throw_ioctl_error("DRM_IOCTL_KILN_GET_PARAM", EINVAL, "fake");
  }
}

uint32_t FakeDriver::query_info(uint32_t type, std::span<std::byte> out) {
  std::unique_lock g(mu_);
  check_inject("DRM_IOCTL_KILN_QUERY_INFO");
  if (type == DRM_KILN_QUERY_TELEMETRY) {
    drm_kiln_telemetry t{};
    t.temperature_mc = 45000, t.power_mw = 25000, t.pe_clock_mhz = KILN_PE_CLOCK_MHZ, t.mem_clock_mhz = 3200;
    t.packets = submits_, t.device_time_ns = device_ns_, t.total_cycles = cycles_;
    std::memcpy(out.data(), &t, std::min(out.size(), sizeof t));
    return sizeof t;
  }
  throw_ioctl_error("DRM_IOCTL_KILN_QUERY_INFO", EINVAL, "fake");
}

void FakeDriver::bo_create(drm_kiln_bo_create& a) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_BO_CREATE");
  if (a.size == 0 || (a.flags & ~DRM_KILN_BO_FLAGS) || a.handle || a.va)
    throw_ioctl_error("DRM_IOCTL_KILN_BO_CREATE", EINVAL, "fake");
  a.size = (a.size + 4095) & ~4095ull;
  // like kiln.ko: more than the memory has at all is E2BIG, more than is free ENOSPC
  if ((a.flags & DRM_KILN_BO_DRAM) && a.size > o_.dram_size)
    throw_ioctl_error("DRM_IOCTL_KILN_BO_CREATE", E2BIG, "fake");
  if ((a.flags & DRM_KILN_BO_DRAM) && dram_used_ + a.size > o_.dram_size)
    throw_ioctl_error("DRM_IOCTL_KILN_BO_CREATE", ENOSPC, "fake");
  if (a.size > (4ull << 30)) throw_ioctl_error("DRM_IOCTL_KILN_BO_CREATE", ENOMEM, "fake");
  FBo b;
  b.mem = std::make_shared<Storage>();
  b.mem->bytes.resize(size_t(a.size));
  b.va = next_va_;
  b.size = a.size;
  b.flags = a.flags;
  next_va_ += a.size + (64 << 10);  // guard gap
  if (a.flags & DRM_KILN_BO_DRAM) dram_used_ += a.size;
  a.handle = next_handle_++;
  a.va = b.va;
  bos_[a.handle] = std::move(b);
}

void FakeDriver::bo_info(drm_kiln_bo_info& a) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_BO_INFO");
  auto it = bos_.find(a.handle);
  if (it == bos_.end()) throw_ioctl_error("DRM_IOCTL_KILN_BO_INFO", ENOENT, "fake");
  a.flags = it->second.flags, a.size = it->second.size, a.va = it->second.va;
  a.mmap_offset = (it->second.flags & DRM_KILN_BO_NO_MMAP) ? 0 : uint64_t(a.handle) << 32;
}

bool FakeDriver::bo_wait(drm_kiln_bo_wait& a) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_BO_WAIT");
  return held_.empty();
}

void FakeDriver::gem_close(uint32_t h) noexcept {
  std::lock_guard g(mu_);
  calls_["DRM_IOCTL_GEM_CLOSE"]++;
  auto it = bos_.find(h);
  if (it == bos_.end()) return;
  if (it->second.flags & DRM_KILN_BO_DRAM) dram_used_ -= it->second.size;
  bos_.erase(it);
}

void FakeDriver::ctx_create(drm_kiln_ctx_create& a) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_CTX_CREATE");
  if (a.flags || a.priority > DRM_KILN_PRIORITY_REALTIME)
    throw_ioctl_error("DRM_IOCTL_KILN_CTX_CREATE", EINVAL, "fake");
  if (ctxs_.size() >= 63) throw_ioctl_error("DRM_IOCTL_KILN_CTX_CREATE", ENOSPC, "fake");
  if (a.ctx_id || a.status_offset || a.status_size || a.status_stride || a.pad || a.pad2)
    throw_ioctl_error("DRM_IOCTL_KILN_CTX_CREATE", EINVAL, "fake");
  a.ctx_id = next_ctx_++;
  Ctx c;
  if (o_.status_ring) {
    c.ring = std::make_shared<std::vector<drm_kiln_job_record>>(o_.max_queued_jobs);
    a.status_offset = uint64_t(a.ctx_id) << 16;  // below the BOs' handle << 32, as kiln.ko
    a.status_size = uint32_t(c.ring->size() * sizeof(drm_kiln_job_record));
    a.status_stride = sizeof(drm_kiln_job_record);
  }
  ctxs_[a.ctx_id] = std::move(c);
}

void FakeDriver::ctx_destroy(uint32_t id) noexcept {
  std::lock_guard g(mu_);
  calls_["DRM_IOCTL_KILN_CTX_DESTROY"]++;
  ctxs_.erase(id);
}

std::byte* FakeDriver::translate(const Job& j, uint64_t va, uint64_t size, bool& ok) {
  for (const auto& r : j.bos) {
    auto it = bos_.find(r.handle);
    if (it == bos_.end()) continue;
    const auto& b = it->second;
    if (va >= b.va && va - b.va < b.size && size <= b.size - (va - b.va)) return b.mem->bytes.data() + (va - b.va);
  }
  ok = false;
  return nullptr;
}

void FakeDriver::complete(Job& j, const drm_kiln_job_status& st0) {
  drm_kiln_job_status st = st0;
  st.ctx_id = j.ctx;
  st.seqno = j.seqno;
  auto& c = ctxs_[j.ctx];
  c.jobs[j.seqno] = st;
  if (c.ring) {
    drm_kiln_job_record& r = (*c.ring)[j.seqno % c.ring->size()];
    r.seqno = j.seqno, r.status = st.status, r.packet_index = st.packet_index, r.pe = st.pe, r.pc = st.pc;
    r.fault_addr = st.fault_addr, r.fault_access = st.fault_access, r.fault_reason = st.fault_reason;
    r.cycles = st.cycles, r.elapsed_ns = st.elapsed_ns, r.error = st.error, r.energy_pj = st.energy_pj;
    r.state = DRM_KILN_JOB_DONE;
  }
  c.completed = j.seqno;
  if (st.status != KILN_STATUS_OK) {
    c.last_error.error_seqno = j.seqno;
    c.last_error.error_status = st.status;
    c.last_error.fault_addr = st.fault_addr;
    if (o_.ban_on_fault) c.banned = true;
  }
  for (const auto& s : j.signals) syncobjs_[s.handle] = std::max<uint64_t>(syncobjs_[s.handle], s.point);
  cv_.notify_all();
}

// A profile as the device writes it, for a launch of `cycles` in which every
// PE ran scalar code throughout (what the fake can know of a kernel).
void FakeDriver::write_profile(const Job& j, const kiln_pkt_launch& p, uint64_t cycles) {
  bool ok = true;
  std::byte* hp = translate(j, p.profile_va, sizeof(kiln_profile_header), ok);
  if (!ok) return;
  kiln_profile_header h;
  std::memcpy(&h, hp, sizeof h);
  const uint32_t pes = o_.grid_w * o_.grid_h, size = h.size;
  std::byte* buf = translate(j, p.profile_va, size, ok);
  if (!ok) return;
  h = {};
  h.magic = KILN_PROFILE_MAGIC, h.version = KILN_PROFILE_VERSION, h.size = size, h.num_pes = pes;
  h.cycles = cycles, h.start_cycles = cycles_ - cycles, h.waves = 1;
  h.energy_pj = cycles * kEnergyPerCyclePj;
  if (size >= sizeof h + pes * sizeof(kiln_profile_pe)) {
    h.pe_offset = sizeof h;
    for (uint32_t i = 0; i < pes; i++) {
      kiln_profile_pe r{};
      r.cycles[KILN_PROF_SCALAR] = cycles;
      r.workgroups = 1;
      std::memcpy(buf + h.pe_offset + i * sizeof r, &r, sizeof r);
    }
  }
  std::memcpy(buf, &h, sizeof h);
}

void FakeDriver::run(Job& j) {
  drm_kiln_job_status st{};
  st.state = DRM_KILN_JOB_DONE;
  st.pe = KILN_JOB_STATUS_NO_PE;
  uint64_t start_ns = device_ns_, start_cycles = cycles_;
  auto fault = [&](uint32_t status, uint32_t idx, uint64_t addr) {
    st.status = status, st.packet_index = idx, st.fault_addr = addr;
    st.error = -EIO;
  };
  bool ok = true;
  std::byte* cmd = translate(j, j.cmd_va, j.cmd_size, ok);
  if (!ok) {
    fault(KILN_STATUS_MMU_FAULT, 0, j.cmd_va);
  } else {
    for (uint32_t i = 0; i < j.cmd_size / KILN_PACKET_SIZE && st.status == KILN_STATUS_OK; i++) {
      KilnPacket pkt;
      kiln_packet_decode(reinterpret_cast<const uint8_t*>(cmd + size_t(i) * KILN_PACKET_SIZE), &pkt);
      last_packets_.push_back(pkt.generic);
      device_ns_ += 100;
      // The same rules as the device: the fake must not accept what the chip rejects.
      if (uint32_t v = kiln_packet_validate(&pkt, /*user=*/true, nullptr); v != KILN_STATUS_OK) {
        fault(v, i, 0);
        break;
      }
      switch (KILN_PKT_OPCODE(pkt.header)) {
        case KILN_OP_NOP:
          break;
        case KILN_OP_DMA_COPY: {
          const kiln_pkt_dma_copy& p = pkt.dma_copy;
          bool o1 = true, o2 = true;
          std::byte* s = translate(j, p.src, p.size, o1);
          std::byte* d = translate(j, p.dst, p.size, o2);
          if (!o1) {
            fault(KILN_STATUS_MMU_FAULT, i, p.src);
            break;
          }
          if (!o2) {
            fault(KILN_STATUS_MMU_FAULT, i, p.dst);
            break;
          }
          std::memcpy(d, s, size_t(p.size));
          cycles_ += p.size / 64;
          break;
        }
        case KILN_OP_DMA_FILL: {
          const kiln_pkt_dma_fill& p = pkt.dma_fill;
          bool o = true;
          std::byte* d = translate(j, p.dst, p.size, o);
          if (!o) {
            fault(KILN_STATUS_MMU_FAULT, i, p.dst);
            break;
          }
          for (uint64_t k = 0; k < p.size; k += 4) std::memcpy(d + k, &p.pattern, 4);
          cycles_ += p.size / 64;
          break;
        }
        case KILN_OP_FENCE: {
          const kiln_pkt_fence& p = pkt.fence;
          bool is64 = KILN_PKT_FLAGS(p.header) & KILN_FENCE_FLAG_64BIT;
          bool o = true;
          std::byte* d = translate(j, p.addr, is64 ? 8 : 4, o);
          if (!o) {
            fault(KILN_STATUS_MMU_FAULT, i, p.addr);
            break;
          }
          std::memcpy(d, &p.value, is64 ? 8 : 4);
          break;
        }
        case KILN_OP_WAIT: {
          const kiln_pkt_wait& p = pkt.wait;
          bool o = true;
          std::byte* d = translate(j, p.addr, 8, o);
          if (!o) {
            fault(KILN_STATUS_MMU_FAULT, i, p.addr);
            break;
          }
          uint64_t v;
          std::memcpy(&v, d, 8);
          v &= p.mask;
          bool sat = p.op == KILN_WAIT_GEQUAL ? v >= p.value : p.op == KILN_WAIT_EQUAL ? v == p.value : v != p.value;
          if (!sat) fault(KILN_STATUS_BAD_PACKET, i, p.addr);  // the fake cannot block
          break;
        }
        case KILN_OP_TIMESTAMP: {
          const kiln_pkt_timestamp& p = pkt.timestamp;
          bool o = true;
          std::byte* d = translate(j, p.addr, 16, o);
          if (!o) {
            fault(KILN_STATUS_MMU_FAULT, i, p.addr);
            break;
          }
          kiln_timestamp ts{device_ns_, cycles_};
          std::memcpy(d, &ts, sizeof ts);
          break;
        }
        case KILN_OP_LAUNCH: {
          const kiln_pkt_launch& p = pkt.launch;
          bool o = true;
          translate(j, p.entry_va, 4, o);
          if (!o) {
            fault(KILN_STATUS_MMU_FAULT, i, p.entry_va);
            break;
          }
          if (p.args_size) {
            translate(j, p.args_va, p.args_size, o);
            if (!o) {
              fault(KILN_STATUS_MMU_FAULT, i, p.args_va);
              break;
            }
          }
          if (!p.grid_x || !p.grid_y || !p.grid_z) {
            fault(KILN_STATUS_BAD_LAUNCH, i, 0);
            break;
          }
          LaunchResult r;
          if (fail_next_) {
            r = *fail_next_;
            fail_next_.reset();
          } else if (hook_) {
            mu_.unlock();
            try {
              r = hook_(p, *this);
            } catch (...) {
              mu_.lock();
              throw;
            }
            mu_.lock();
          }
          cycles_ += r.cycles;
          device_ns_ += r.cycles;
          if (p.profile_va) write_profile(j, p, r.cycles);
          if (r.status != KILN_STATUS_OK) {
            fault(r.status, i, r.fault_addr);
            st.pe = r.pe, st.pc = r.pc, st.fault_reason = r.fault_reason, st.fault_access = r.fault_access;
          }
          break;
        }
        default:
          fault(KILN_STATUS_BAD_PACKET, i, 0);
      }
    }
  }
  st.cycles = cycles_ - start_cycles;
  st.elapsed_ns = device_ns_ - start_ns;
  st.energy_pj = st.cycles * kEnergyPerCyclePj;
  complete(j, st);
}

void FakeDriver::submit(drm_kiln_submit& a) {
  std::unique_lock g(mu_);
  check_inject("DRM_IOCTL_KILN_SUBMIT");
  auto it = ctxs_.find(a.ctx_id);
  if (it == ctxs_.end() || (a.flags & ~DRM_KILN_SUBMIT_FLAGS) || a.pad) throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", EINVAL, "fake");
  if (it->second.banned) throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", EIO, "fake");  // as kiln.ko
  if (a.cmd_va % 64 || a.cmd_size % 64 || a.cmd_size == 0 || a.cmd_size > o_.max_cmd_size)
    throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", EINVAL, "fake");
  if (a.bos.stride != sizeof(drm_kiln_bo_ref) || a.syncs.stride != sizeof(drm_kiln_sync))
    throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", EINVAL, "fake");
  if (a.bos.count > o_.max_submit_bos) throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", E2BIG, "fake");
  Job j;
  j.ctx = a.ctx_id;
  j.cmd_va = a.cmd_va;
  j.cmd_size = a.cmd_size;
  auto* refs = reinterpret_cast<const drm_kiln_bo_ref*>(uintptr_t(a.bos.ptr));
  j.bos.assign(refs, refs + a.bos.count);
  for (const auto& r : j.bos)
    if (!bos_.count(r.handle) || (r.flags & ~DRM_KILN_BO_REF_WRITE))
      throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", ENOENT, "fake");
  auto* syncs = reinterpret_cast<const drm_kiln_sync*>(uintptr_t(a.syncs.ptr));
  last_syncs_.assign(syncs, syncs + a.syncs.count);
  for (uint32_t i = 0; i < a.syncs.count; i++) {
    const auto& s = syncs[i];
    if (!syncobjs_.count(s.handle) || !(s.flags & (DRM_KILN_SYNC_WAIT | DRM_KILN_SYNC_SIGNAL)))
      throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", EINVAL, "fake");
    if (s.flags & DRM_KILN_SYNC_SIGNAL) j.signals.push_back(s);
  }
  last_bos_ = j.bos;
  last_packets_.clear();
  if (it->second.submitted - it->second.completed >= o_.max_queued_jobs)
    throw_ioctl_error("DRM_IOCTL_KILN_SUBMIT", EBUSY, "fake");  // as kiln.ko
  j.seqno = ++it->second.submitted;
  if (auto& ring = it->second.ring) {
    drm_kiln_job_record pending{};
    pending.seqno = j.seqno, pending.state = DRM_KILN_JOB_PENDING;
    (*ring)[j.seqno % ring->size()] = pending;
  }
  a.seqno = j.seqno;
  submits_++;
  if (holding_)
    held_.push_back(std::move(j));
  else
    run(j);
}

void FakeDriver::ctx_status(drm_kiln_ctx_status& a) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_CTX_STATUS");
  auto it = ctxs_.find(a.ctx_id);
  if (it == ctxs_.end()) throw_ioctl_error("DRM_IOCTL_KILN_CTX_STATUS", EINVAL, "fake");
  uint32_t id = a.ctx_id;
  a = it->second.last_error;
  a.ctx_id = id;
  a.flags = it->second.banned ? DRM_KILN_CTX_BANNED : 0;
  a.submitted = it->second.submitted;
  a.completed = it->second.completed;
}

void FakeDriver::job_status(drm_kiln_job_status& a) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_KILN_JOB_STATUS");
  auto it = ctxs_.find(a.ctx_id);
  if (it == ctxs_.end() || a.seqno == 0 || a.seqno > it->second.submitted)
    throw_ioctl_error("DRM_IOCTL_KILN_JOB_STATUS", EINVAL, "fake");
  auto j = it->second.jobs.find(a.seqno);
  if (j == it->second.jobs.end()) {
    a.state = DRM_KILN_JOB_PENDING;
    return;
  }
  a = j->second;
}

std::byte* FakeDriver::mmap(uint64_t offset, size_t size) {
  std::lock_guard g(mu_);
  check_inject("mmap");
  auto it = bos_.find(uint32_t(offset >> 32));
  if (it == bos_.end() || size > it->second.size || (it->second.flags & DRM_KILN_BO_NO_MMAP))
    throw_ioctl_error("mmap", EINVAL, "fake");
  return it->second.mem->bytes.data();
}
const std::byte* FakeDriver::mmap_readonly(uint64_t offset, size_t size) {
  std::lock_guard g(mu_);
  check_inject("mmap");
  auto it = ctxs_.find(uint32_t(offset >> 16));
  if (offset >= (uint64_t(1) << 32) || offset % (1u << 16) || it == ctxs_.end() || !it->second.ring ||
      size > it->second.ring->size() * sizeof(drm_kiln_job_record))
    throw_ioctl_error("mmap", EINVAL, "fake");
  mapped_rings_.push_back(it->second.ring);
  return reinterpret_cast<const std::byte*>(it->second.ring->data());
}
void FakeDriver::munmap(const std::byte*, size_t) noexcept {}

uint32_t FakeDriver::syncobj_create() {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_SYNCOBJ_CREATE");
  uint32_t h = next_sync_++;
  syncobjs_[h] = 0;
  return h;
}
void FakeDriver::syncobj_destroy(uint32_t h) noexcept {
  std::lock_guard g(mu_);
  syncobjs_.erase(h);
}
bool FakeDriver::syncobj_wait(std::span<const uint32_t> hs, std::span<const uint64_t> ps, int64_t abs) {
  std::unique_lock g(mu_);
  check_inject("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT");
  for (uint32_t h : hs)
    if (!syncobjs_.count(h)) throw_ioctl_error("DRM_IOCTL_SYNCOBJ_TIMELINE_WAIT", EINVAL, "fake");
  auto done = [&] {
    for (size_t i = 0; i < hs.size(); i++)
      if (syncobjs_[hs[i]] < ps[i]) return false;
    return true;
  };
  while (!done()) {
    int64_t now = monotonic_ns();
    if (now >= abs) return false;
    cv_.wait_for(g, std::chrono::nanoseconds(std::min<int64_t>(abs - now, 10'000'000)));
  }
  return true;
}
void FakeDriver::syncobj_signal(uint32_t h, uint64_t p) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL");
  if (!syncobjs_.count(h)) throw_ioctl_error("DRM_IOCTL_SYNCOBJ_TIMELINE_SIGNAL", EINVAL, "fake");
  syncobjs_[h] = std::max(syncobjs_[h], p);
  cv_.notify_all();
}
void FakeDriver::syncobj_transfer(uint32_t dst, uint64_t dp, uint32_t src, uint64_t sp) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_SYNCOBJ_TRANSFER");
  if (!syncobjs_.count(dst) || !syncobjs_.count(src)) throw_ioctl_error("DRM_IOCTL_SYNCOBJ_TRANSFER", EINVAL, "fake");
  if (syncobjs_[src] >= sp) syncobjs_[dst] = std::max(syncobjs_[dst], dp);
}
uint64_t FakeDriver::syncobj_query(uint32_t h) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_SYNCOBJ_QUERY");
  auto it = syncobjs_.find(h);
  if (it == syncobjs_.end()) throw_ioctl_error("DRM_IOCTL_SYNCOBJ_QUERY", EINVAL, "fake");
  return it->second;
}

int FakeDriver::prime_export(uint32_t handle) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_PRIME_HANDLE_TO_FD");
  auto it = bos_.find(handle);
  if (it == bos_.end()) throw_ioctl_error("DRM_IOCTL_PRIME_HANDLE_TO_FD", ENOENT, "fake");
  std::lock_guard g2(g_prime_mu);
  int fd = g_next_prime_fd++;
  g_prime[fd] = {std::shared_ptr<void>(it->second.mem), it->second.size, it->second.flags};
  return fd;
}
uint32_t FakeDriver::prime_import(int fd) {
  std::lock_guard g(mu_);
  check_inject("DRM_IOCTL_PRIME_FD_TO_HANDLE");
  std::lock_guard g2(g_prime_mu);
  auto it = g_prime.find(fd);
  if (it == g_prime.end()) throw_ioctl_error("DRM_IOCTL_PRIME_FD_TO_HANDLE", EBADF, "fake");
  auto mem = std::static_pointer_cast<Storage>(std::get<0>(it->second));
  // Same file: DRM returns the existing handle.
  for (auto& [h, b] : bos_)
    if (b.mem == mem) return h;
  FBo b;
  b.mem = mem;
  b.size = std::get<1>(it->second);
  b.flags = std::get<2>(it->second);
  b.va = next_va_;
  next_va_ += b.size + (64 << 10);
  uint32_t h = next_handle_++;
  bos_[h] = std::move(b);
  return h;
}

}  // namespace kiln::detail
