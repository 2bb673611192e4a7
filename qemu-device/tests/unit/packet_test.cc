// SPDX-License-Identifier: GPL-2.0-or-later
// Unit tests: packet decoding and validation.
#include <gtest/gtest.h>

#include <cstring>

extern "C" {
#include "kiln_packet.h"
}

namespace {

KilnPacket pkt(uint32_t op, uint32_t flags = 0) {
    KilnPacket p;
    memset(&p, 0, sizeof(p));
    p.header = KILN_PKT_HEADER(op, flags);
    return p;
}

uint32_t v(const KilnPacket &p, bool user = false) {
    return kiln_packet_validate(&p, user, nullptr);
}

TEST(Packet, DecodeEncodeRoundTrip) {
    uint8_t raw[64] = {};
    KilnPacket p = pkt(KILN_OP_INDIRECT);
    p.indirect.asid = 7;
    p.indirect.cmd_va = 0x123456789ac0ull;
    p.indirect.size = 128;
    p.indirect.status_pa = 0x8000000001000ull;
    p.indirect.job_id = 0xfeedfacecafebeefull;
    kiln_packet_encode(&p, raw);
    EXPECT_EQ(raw[0], KILN_OP_INDIRECT);
    EXPECT_EQ(raw[4], 7);
    EXPECT_EQ(raw[8], 0xc0);
    EXPECT_EQ(raw[32], 0xef);
    KilnPacket q;
    kiln_packet_decode(raw, &q);
    EXPECT_EQ(memcmp(&p, &q, 64), 0);
    EXPECT_STREQ(kiln_opcode_name(KILN_OP_WAIT), "WAIT");
    EXPECT_STREQ(kiln_status_name(KILN_STATUS_MMU_FAULT), "MMU_FAULT");
    EXPECT_STREQ(kiln_status_name(999), "?");
}

TEST(Packet, HeaderRules) {
    EXPECT_EQ(v(pkt(KILN_OP_NOP)), (uint32_t)KILN_STATUS_OK);
    EXPECT_EQ(v(pkt(0x08)), (uint32_t)KILN_STATUS_BAD_PACKET);
    EXPECT_EQ(v(pkt(0xff)), (uint32_t)KILN_STATUS_BAD_PACKET);
    KilnPacket p = pkt(KILN_OP_NOP);
    p.header |= 0x10000;
    EXPECT_EQ(v(p), (uint32_t)KILN_STATUS_BAD_PACKET);
    EXPECT_EQ(v(pkt(KILN_OP_NOP, 1)), (uint32_t)KILN_STATUS_BAD_PACKET);
    EXPECT_EQ(v(pkt(KILN_OP_FENCE, 4)), (uint32_t)KILN_STATUS_BAD_PACKET);
    for (int i = 1; i < 16; i++) {
        KilnPacket n = pkt(KILN_OP_NOP);
        n.generic.dw[i - 1] = 1;
        uint32_t field = 0;
        EXPECT_EQ(kiln_packet_validate(&n, false, &field), (uint32_t)KILN_STATUS_BAD_PACKET);
        EXPECT_EQ(field, 4u);
    }
}

TEST(Packet, Privilege) {
    KilnPacket c = pkt(KILN_OP_CTX_SETUP, KILN_CTX_FLAG_VALID);
    c.ctx_setup.asid = 1;
    c.ctx_setup.pt_root_pa = 0x1000;
    EXPECT_EQ(v(c), (uint32_t)KILN_STATUS_OK);
    EXPECT_EQ(v(c, true), (uint32_t)KILN_STATUS_PRIVILEGED);
    KilnPacket t = pkt(KILN_OP_TLB_INVAL, KILN_TLB_FLAG_ALL);
    EXPECT_EQ(v(t), (uint32_t)KILN_STATUS_OK);
    EXPECT_EQ(v(t, true), (uint32_t)KILN_STATUS_PRIVILEGED);
    KilnPacket i = pkt(KILN_OP_INDIRECT);
    EXPECT_EQ(v(i, true), (uint32_t)KILN_STATUS_PRIVILEGED);
    EXPECT_EQ(v(pkt(KILN_OP_NOP), true), (uint32_t)KILN_STATUS_OK);
}

TEST(Packet, Indirect) {
    KilnPacket p = pkt(KILN_OP_INDIRECT);
    p.indirect.asid = 1;
    p.indirect.cmd_va = 0x1000;
    p.indirect.size = 64;
    p.indirect.status_pa = 0x2000;
    EXPECT_EQ(v(p), (uint32_t)KILN_STATUS_OK);
    KilnPacket q = p; q.indirect.asid = 0;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_CONTEXT);
    q = p; q.indirect.asid = 256;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_CONTEXT);
    q = p; q.indirect.cmd_va = 0x1020;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = p; q.indirect.size = 0;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = p; q.indirect.size = 100;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = p; q.indirect.size = KILN_INDIRECT_MAX_SIZE + 64;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = p; q.indirect.status_pa = 0x2004;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = p; q.indirect.max_watchdog_mcycles = 1;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_OK);
    q = p; q.indirect.reserved[2] = 1;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
}

TEST(Packet, Dma) {
    KilnPacket c = pkt(KILN_OP_DMA_COPY);
    c.dma_copy.src = 0x1000;
    c.dma_copy.dst = 0x2000;
    c.dma_copy.size = 0x1000;
    EXPECT_EQ(v(c), (uint32_t)KILN_STATUS_OK);
    KilnPacket q = c; q.dma_copy.dst = 0x1800;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);  // overlap
    q = c; q.dma_copy.dst = 0x800;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);  // overlap
    q = c; q.dma_copy.size = KILN_DMA_MAX_SIZE + 1;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = c; q.dma_copy.src = ~0ull - 10;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);  // wraps
    q = c; q.dma_copy.size = 0;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_OK);
    q = c; q.dma_copy.reserved[3] = 1;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    KilnPacket f = pkt(KILN_OP_DMA_FILL);
    f.dma_fill.dst = 0x1004;
    f.dma_fill.size = 8;
    f.dma_fill.pattern = 0xffffffff;
    EXPECT_EQ(v(f), (uint32_t)KILN_STATUS_OK);
    q = f; q.dma_fill.dst = 0x1002;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = f; q.dma_fill.size = 6;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
}

TEST(Packet, FenceWaitTimestamp) {
    KilnPacket f = pkt(KILN_OP_FENCE, KILN_FENCE_FLAG_IRQ);
    f.fence.addr = 0x1004;
    f.fence.value = 0xffffffff;
    EXPECT_EQ(v(f), (uint32_t)KILN_STATUS_OK);
    KilnPacket q = f; q.fence.value = 1ull << 32;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = f; q.header = KILN_PKT_HEADER(KILN_OP_FENCE, KILN_FENCE_FLAG_64BIT);
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);  // 4-aligned only
    q.fence.addr = 0x1008;
    q.fence.value = ~0ull;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_OK);
    q = f; q.fence.addr = 0x1002;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    KilnPacket w = pkt(KILN_OP_WAIT);
    w.wait.addr = 0x1000;
    w.wait.op = KILN_WAIT_NOT_EQUAL;
    EXPECT_EQ(v(w), (uint32_t)KILN_STATUS_OK);
    q = w; q.wait.op = 3;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = w; q.wait.addr = 0x1004;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    KilnPacket t = pkt(KILN_OP_TIMESTAMP);
    t.timestamp.addr = 0x1008;
    EXPECT_EQ(v(t), (uint32_t)KILN_STATUS_OK);
    t.timestamp.addr = 0x1004;
    EXPECT_EQ(v(t), (uint32_t)KILN_STATUS_BAD_PACKET);
}

TEST(Packet, ContextAndTlb) {
    KilnPacket c = pkt(KILN_OP_CTX_SETUP, KILN_CTX_FLAG_VALID);
    c.ctx_setup.asid = 255;
    c.ctx_setup.pt_root_pa = 0x3000;
    EXPECT_EQ(v(c), (uint32_t)KILN_STATUS_OK);
    KilnPacket q = c; q.ctx_setup.pt_root_pa = 0x3008;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = c; q.ctx_setup.asid = 0;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_CONTEXT);
    q = c; q.header = KILN_PKT_HEADER(KILN_OP_CTX_SETUP, 0);
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);  // unbind with a root
    q.ctx_setup.pt_root_pa = 0;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_OK);
    KilnPacket t = pkt(KILN_OP_TLB_INVAL);
    t.tlb_inval.asid = 0;
    EXPECT_EQ(v(t), (uint32_t)KILN_STATUS_BAD_CONTEXT);
    t.tlb_inval.asid = 3;
    t.tlb_inval.va = 0x1000;
    t.tlb_inval.size = 0x2000;
    EXPECT_EQ(v(t), (uint32_t)KILN_STATUS_OK);
    q = t; q.header = KILN_PKT_HEADER(KILN_OP_TLB_INVAL, KILN_TLB_FLAG_ALL);
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);  // ALL with a range
    q.tlb_inval.va = q.tlb_inval.size = 0;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_OK);
}

TEST(Packet, Launch) {
    KilnPacket l = pkt(KILN_OP_LAUNCH, KILN_LAUNCH_FLAG_COOPERATIVE);
    l.launch.grid_x = 1;
    EXPECT_EQ(v(l), (uint32_t)KILN_STATUS_OK);
    KilnPacket q = l; q.launch.args_size = KILN_LAUNCH_MAX_ARGS_SIZE + 1;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = l; q.launch.profile_va = 0x1000;
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_OK);
    q = l; q.launch.profile_va = 0x1004;  // must be 8-byte aligned
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
    q = l; q.header = KILN_PKT_HEADER(KILN_OP_LAUNCH, 2);
    EXPECT_EQ(v(q), (uint32_t)KILN_STATUS_BAD_PACKET);
}

TEST(JobStatus, Encode) {
    struct kiln_job_status s = {};
    s.status = KILN_STATUS_MMU_FAULT;
    s.job_id = 0x1122334455667788ull;
    s.elapsed_ns = 5;
    s.energy_pj = 0x0102;
    uint8_t raw[sizeof(s)];
    kiln_job_status_encode(&s, raw);
    EXPECT_EQ(raw[0], KILN_STATUS_MMU_FAULT);
    EXPECT_EQ(raw[8], 0x88);
    EXPECT_EQ(raw[56], 5);
    EXPECT_EQ(raw[64], 0x02);
    EXPECT_EQ(raw[65], 0x01);
}

}  // namespace
