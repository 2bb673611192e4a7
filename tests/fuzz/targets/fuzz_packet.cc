// SPDX-License-Identifier: GPL-2.0-or-later
// libFuzzer target: the device's packet decoder and validator
// (qemu-device/engine/kiln_packet.c), which sees every 64-byte packet a guest
// writes to a ring or an INDIRECT command buffer.
//
// Input: any number of 64-byte packets (a short tail is zero-padded, as a
// command buffer's last packet would be read from zeroed memory).
//
// Beyond memory safety, each packet is checked against what docs/hardware.md
// promises, so a validator that lets a malformed packet through fails here:
//  - decode/encode are lossless for every opcode (layouts cover all 64 bytes);
//  - the status is one of OK / BAD_PACKET / PRIVILEGED / BAD_CONTEXT and the
//    offending field lies inside the packet;
//  - user mode (inside INDIRECT) rejects exactly the privileged opcodes and
//    otherwise agrees with ring mode;
//  - an accepted packet has no reserved header bits or unknown flags, and the
//    ranges the executor will touch neither wrap nor exceed their limits.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

extern "C" {
#include "kiln_packet.h"
}

namespace {

[[noreturn]] void fail(const char *what, uint32_t op)
{
    fprintf(stderr, "fuzz_packet: opcode %#x: %s\n", op, what);
    abort();
}

// What an accepted packet must satisfy, restated from docs/hardware.md rather
// than from the validator's code.
void check_accepted(const KilnPacket &p)
{
    uint32_t op = KILN_PKT_OPCODE(p.header);
    uint32_t flags = KILN_PKT_FLAGS(p.header);

    if (p.header & KILN_PKT_RESERVED_MASK) fail("accepted reserved header bits", op);
    switch (op) {
    case KILN_OP_NOP:
        for (uint32_t w : p.nop.reserved)
            if (w) fail("accepted NOP with non-zero reserved words", op);
        if (flags) fail("accepted NOP flags", op);
        break;
    case KILN_OP_INDIRECT:
        if (!p.indirect.asid || p.indirect.asid >= KILN_MAX_CONTEXTS) fail("accepted ASID", op);
        if (p.indirect.cmd_va % KILN_PACKET_SIZE || !p.indirect.size ||
            p.indirect.size % KILN_PACKET_SIZE || p.indirect.size > KILN_INDIRECT_MAX_SIZE)
            fail("accepted command buffer geometry", op);
        if (p.indirect.status_pa % 8) fail("accepted misaligned status_pa", op);
        break;
    case KILN_OP_DMA_COPY: {
        const auto &c = p.dma_copy;
        if (c.size > KILN_DMA_MAX_SIZE || c.src + c.size < c.src || c.dst + c.size < c.dst)
            fail("accepted DMA_COPY range that wraps or is too large", op);
        if (c.size && c.src < c.dst + c.size && c.dst < c.src + c.size)
            fail("accepted overlapping DMA_COPY", op);
        break;
    }
    case KILN_OP_DMA_FILL: {
        const auto &f = p.dma_fill;
        if (f.dst % 4 || f.size % 4 || f.size > KILN_DMA_MAX_SIZE || f.dst + f.size < f.dst)
            fail("accepted DMA_FILL geometry", op);
        break;
    }
    case KILN_OP_LAUNCH:
        if (p.launch.args_size > KILN_LAUNCH_MAX_ARGS_SIZE || p.launch.profile_va % 8)
            fail("accepted LAUNCH args_size/profile_va", op);
        if (flags & ~KILN_LAUNCH_FLAG_COOPERATIVE) fail("accepted LAUNCH flags", op);
        break;
    case KILN_OP_FENCE:
        if (p.fence.addr % ((flags & KILN_FENCE_FLAG_64BIT) ? 8 : 4)) fail("accepted misaligned FENCE", op);
        if (!(flags & KILN_FENCE_FLAG_64BIT) && p.fence.value >> 32) fail("accepted 64-bit value in 32-bit FENCE", op);
        break;
    case KILN_OP_WAIT:
        if (p.wait.addr % 8 || p.wait.op > KILN_WAIT_NOT_EQUAL) fail("accepted WAIT", op);
        break;
    case KILN_OP_TIMESTAMP:
        if (p.timestamp.addr % 8) fail("accepted misaligned TIMESTAMP", op);
        break;
    case KILN_OP_CTX_SETUP:
        if (!p.ctx_setup.asid || p.ctx_setup.asid >= KILN_MAX_CONTEXTS) fail("accepted ASID", op);
        if ((flags & KILN_CTX_FLAG_VALID) ? p.ctx_setup.pt_root_pa % KILN_PAGE_SIZE : p.ctx_setup.pt_root_pa)
            fail("accepted page-table root", op);
        break;
    case KILN_OP_TLB_INVAL:
        if (p.tlb_inval.asid >= KILN_MAX_CONTEXTS) fail("accepted ASID", op);
        if (!(flags & KILN_TLB_FLAG_ALL) && p.tlb_inval.va + p.tlb_inval.size < p.tlb_inval.va)
            fail("accepted wrapping TLB_INVAL range", op);
        break;
    default:
        fail("accepted an unknown opcode", op);
    }
}

void one_packet(const uint8_t raw[KILN_PACKET_SIZE])
{
    KilnPacket p, again;
    uint8_t back[KILN_PACKET_SIZE];
    uint32_t field = ~0u, ufield = ~0u;

    memset(&p, 0xa5, sizeof(p));   // decode must write every byte
    kiln_packet_decode(raw, &p);
    kiln_packet_encode(&p, back);
    uint32_t op = KILN_PKT_OPCODE(p.header);
    if (memcmp(raw, back, KILN_PACKET_SIZE)) fail("encode(decode(raw)) != raw", op);
    memset(&again, 0x5a, sizeof(again));
    kiln_packet_decode(back, &again);
    if (memcmp(&p, &again, sizeof(p))) fail("decode is not deterministic", op);

    uint32_t st = kiln_packet_validate(&p, false, &field);
    uint32_t ust = kiln_packet_validate(&p, true, &ufield);
    if (st != KILN_STATUS_OK && st != KILN_STATUS_BAD_PACKET && st != KILN_STATUS_BAD_CONTEXT)
        fail("ring-mode status outside OK/BAD_PACKET/BAD_CONTEXT", op);
    if (field >= KILN_PACKET_SIZE) fail("offending field outside the packet", op);
    if (kiln_packet_validate(&p, false, nullptr) != st) fail("result depends on the field pointer", op);
    bool known = strcmp(kiln_opcode_name(op), "?") != 0;
    if (known && KILN_OP_IS_PRIVILEGED(op)) {
        if (ust != KILN_STATUS_PRIVILEGED) fail("user mode ran a privileged opcode", op);
    } else if (ust != st || (st != KILN_STATUS_OK && ufield != field)) {
        fail("user mode disagrees with ring mode on an unprivileged packet", op);
    }
    if (st == KILN_STATUS_OK) check_accepted(p);
    if (!strcmp(kiln_status_name(st), "?")) fail("a status without a name", op);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    for (size_t off = 0; off < size; off += KILN_PACKET_SIZE) {
        uint8_t raw[KILN_PACKET_SIZE] = {};
        memcpy(raw, data + off, size - off < KILN_PACKET_SIZE ? size - off : KILN_PACKET_SIZE);
        one_packet(raw);
    }
    return 0;
}
