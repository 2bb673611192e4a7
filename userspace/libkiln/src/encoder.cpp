// SPDX-License-Identifier: MIT
// libkiln: the command-buffer encoder (encoder.hpp).
//
// Layout of one command buffer:
//   [TIMESTAMP start] [commands...] [TIMESTAMP end]   packets, 64 bytes each
//   [2 x struct kiln_timestamp]                        (timestamps only)
//   [argument blocks, debug buffers] [staging for host copies] [launch profiles]
#include "encoder.hpp"

#include <kiln/hw/kiln_isa.h>
#include <kiln/hw/kiln_packets.h>
#include <kiln/hw/kiln_profile.h>

#include <algorithm>
#include <cstring>
#include <map>

#include "internal.hpp"

namespace kiln::detail {
namespace {

uint64_t align_up(uint64_t v, uint64_t a) {
  return (v + a - 1) & ~(a - 1);
}

}  // namespace

Encoder::Encoder(const Recording& rec, const EncodeOptions& opt)
    : rec_(rec), opt_(opt), data_off_(rec.cmds.size()), debug_off_(rec.cmds.size()), prof_off_(rec.cmds.size()) {
  uint64_t packets = opt.timestamps ? 2 : 0;
  for (const auto& c : rec.cmds) packets += c.kind == Cmd::barrier ? 0 : 1;
  // A job of barriers only still needs one packet: the driver takes no empty buffer.
  cmd_size_ = std::max<uint64_t>(1, packets) * KILN_PACKET_SIZE;
  if (opt.max_cmd_size && cmd_size_ > opt.max_cmd_size)
    fail(Errc::invalid_argument,
         "command list of {} commands needs {} bytes of packets, more than the driver's {} (split it)",
         rec.cmds.size(), cmd_size_, opt.max_cmd_size);
  ts_off_ = cmd_size_;
  uint64_t off = opt.timestamps ? ts_off_ + 64 : cmd_size_;
  for (size_t i = 0; i < rec.cmds.size(); i++) {
    const auto& c = rec.cmds[i];
    if (c.kind == Cmd::launch) {
      off = align_up(off, std::max<uint64_t>(64, c.args_align));
      data_off_[i] = off;
      off += c.args.size();
      if (opt.debug_bytes) {
        off = align_up(off, 64);
        debug_off_[i] = off;
        off += opt.debug_bytes;
      }
    } else if (c.kind == Cmd::write || c.kind == Cmd::read) {
      off = align_up(off, 64);
      data_off_[i] = off;
      off += c.size;
    }
  }
  // Profile buffers: the header and a record per PE, and with pe-tracks
  // room for each PE's timeline (what does not fit is counted as dropped).
  const uint64_t pes = std::max<uint32_t>(1, opt.pes);
  prof_size_ = sizeof(kiln_profile_header) + pes * sizeof(kiln_profile_pe) +
               (opt.pe_tracks ? pes * 1024 * sizeof(kiln_profile_segment) : 0);
  if (opt.profiling)
    for (size_t i = 0; i < rec.cmds.size(); i++)
      if (rec.cmds[i].kind == Cmd::launch) {
        off = align_up(off, 64);
        prof_off_[i] = off;
        off += prof_size_;
      }
  size_ = off;
}

Encoded Encoder::encode(std::span<std::byte> buf, uint64_t va, const std::shared_ptr<Bo>& self) const {
  if (buf.size() < size_) fail(Errc::invalid_argument, "command buffer of {} bytes, {} needed", buf.size(), size_);
  std::byte* base = buf.data();
  Encoded e;
  e.cmd_size = cmd_size_;
  std::map<uint32_t, uint32_t> bo_flags;  // handle -> DRM_KILN_BO_REF_*, sorted
  auto ref = [&](const std::shared_ptr<Bo>& bo, bool write) {
    bo_flags[bo->handle] |= write ? DRM_KILN_BO_REF_WRITE : 0;
    e.residency.push_back(bo);
  };
  ref(self, true);
  uint32_t pi = 0;
  auto put = [&](const auto& pkt) {
    static_assert(sizeof(pkt) == KILN_PACKET_SIZE);
    std::memcpy(base + uint64_t(pi++) * KILN_PACKET_SIZE, &pkt, sizeof pkt);
  };
  auto timestamp = [&](uint64_t addr) {
    kiln_pkt_timestamp t{};
    t.header = KILN_PKT_HEADER(KILN_OP_TIMESTAMP, 0);
    t.addr = addr;
    put(t);
  };
  auto copy = [&](uint64_t src, uint64_t dst, uint64_t size) {
    kiln_pkt_dma_copy p{};
    p.header = KILN_PKT_HEADER(KILN_OP_DMA_COPY, 0);
    p.src = src, p.dst = dst, p.size = size;
    put(p);
  };
  if (opt_.timestamps) {
    e.ts_offset = ts_off_;
    std::memset(base + ts_off_, 0, 2 * sizeof(kiln_timestamp));
    timestamp(va + ts_off_);
  }
  for (size_t i = 0; i < rec_.cmds.size(); i++) {
    const auto& c = rec_.cmds[i];
    e.packet_map.emplace_back(pi, c.label);
    if (!e.summary.empty()) e.summary += "; ";
    e.summary += c.label;
    switch (c.kind) {
      case Cmd::copy:
        ref(c.src, false), ref(c.dst, true);
        copy(c.src->va + c.src_off, c.dst->va + c.dst_off, c.size);
        break;
      case Cmd::fill: {
        ref(c.dst, true);
        kiln_pkt_dma_fill p{};
        p.header = KILN_PKT_HEADER(KILN_OP_DMA_FILL, 0);
        p.pattern = c.pattern, p.dst = c.dst->va + c.dst_off, p.size = c.size;
        put(p);
        break;
      }
      case Cmd::write:
        ref(c.dst, true);
        std::memcpy(base + data_off_[i], c.host_src.data(), c.size);  // staged now: caller may reuse its memory
        copy(va + data_off_[i], c.dst->va + c.dst_off, c.size);
        break;
      case Cmd::read:
        ref(c.src, false);
        copy(c.src->va + c.src_off, va + data_off_[i], c.size);
        e.readbacks.push_back({data_off_[i], c.host_dst});
        break;
      case Cmd::launch: {
        ref(c.module->code, false);
        for (const auto& [bo, w] : c.refs) ref(bo, w);
        std::memcpy(base + data_off_[i], c.args.data(), c.args.size());
        kiln_pkt_launch p{};
        p.header = KILN_PKT_HEADER(KILN_OP_LAUNCH, c.cooperative ? KILN_LAUNCH_FLAG_COOPERATIVE : 0);
        p.args_size = uint32_t(c.args.size());
        p.entry_va = c.entry_va;
        p.args_va = c.args.empty() ? 0 : va + data_off_[i];
        p.grid_x = c.grid[0], p.grid_y = c.grid[1], p.grid_z = c.grid[2];
        p.local_mem = c.local_mem;
        p.watchdog_mcycles = c.watchdog;
        Encoded::Launch l;
        l.command = uint32_t(i);
        l.kernel = c.kernel;
        l.module = c.module->name;
        l.module_base = c.module->base;
        l.module_size = c.module->code->size;
        l.grid = c.grid;
        if (prof_off_[i]) {
          kiln_profile_header h{};
          h.size = uint32_t(prof_size_);
          std::memcpy(base + prof_off_[i], &h, sizeof h);
          p.profile_va = va + prof_off_[i];
          l.profile_offset = prof_off_[i], l.profile_size = prof_size_;
        }
        if (opt_.debug_bytes) {
          std::memset(base + debug_off_[i], 0, sizeof(kiln_debug_header));  // the device appends after `used`
          p.debug_va = va + debug_off_[i];
          p.debug_size = opt_.debug_bytes;
          l.debug_offset = debug_off_[i];
          l.debug_size = opt_.debug_bytes;
        }
        e.launches.push_back(std::move(l));
        put(p);
        break;
      }
      case Cmd::barrier:
        break;
    }
  }
  if (opt_.timestamps) timestamp(va + ts_off_ + sizeof(kiln_timestamp));
  if (pi == 0) {
    kiln_pkt_generic nop{};
    nop.header = KILN_PKT_HEADER(KILN_OP_NOP, 0);
    put(nop);
  }
  for (auto [h, f] : bo_flags) e.bos.push_back({h, f});
  if (opt_.max_submit_bos && e.bos.size() > opt_.max_submit_bos)
    fail(Errc::invalid_argument, "submission references {} buffers, more than the driver's {}", e.bos.size(),
         opt_.max_submit_bos);
  return e;
}

}  // namespace kiln::detail
