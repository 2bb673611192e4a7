/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: packet decoding and validation.
 *
 * Every rule here is documented in docs/hardware.md ("Packets"): header
 * reserved bits and unknown flags, must-be-zero reserved fields, alignment,
 * size limits and privilege.
 */
#include <stddef.h>
#include <string.h>

#include "kiln_packet.h"

static inline uint32_t ld32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

static inline uint64_t ld64(const uint8_t *p)
{
    return (uint64_t)ld32(p) | (uint64_t)ld32(p + 4) << 32;
}

static inline void st32(uint8_t *p, uint32_t v)
{
    p[0] = v;
    p[1] = v >> 8;
    p[2] = v >> 16;
    p[3] = v >> 24;
}

static inline void st64(uint8_t *p, uint64_t v)
{
    st32(p, (uint32_t)v);
    st32(p + 4, (uint32_t)(v >> 32));
}

/*
 * Field layout per opcode: size (4 or 8) of each naturally aligned field in
 * order; all packet structs consist of such fields only.
 */
typedef struct Layout {
    uint8_t n;
    uint8_t size[16];
} Layout;

static void layout_of(uint32_t opcode, Layout *l)
{
    static const Layout dw16 = { 16, { 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4,
                                       4, 4, 4 } };
    switch (opcode) {
    case KILN_OP_INDIRECT:      /* hdr asid cmd_va size wd status job r r r */
        *l = (Layout){ 10, { 4, 4, 8, 4, 4, 8, 8, 8, 8, 8 } };
        break;
    case KILN_OP_DMA_COPY:
        *l = (Layout){ 9, { 4, 4, 8, 8, 8, 8, 8, 8, 8 } };
        break;
    case KILN_OP_DMA_FILL:
        *l = (Layout){ 9, { 4, 4, 8, 8, 8, 8, 8, 8, 8 } };
        break;
    case KILN_OP_LAUNCH:        /* hdr args_size entry args debug gx gy gz lm ds wd prof */
        *l = (Layout){ 12, { 4, 4, 8, 8, 8, 4, 4, 4, 4, 4, 4, 8 } };
        break;
    case KILN_OP_FENCE:
    case KILN_OP_TIMESTAMP:
    case KILN_OP_CTX_SETUP:
    case KILN_OP_TLB_INVAL:
    case KILN_OP_WAIT:
        *l = (Layout){ 2, { 4, 4 } };
        /* then 8-byte fields up to 64 bytes */
        while (l->n < 9) {
            l->size[l->n++] = 8;
        }
        break;
    default:
        *l = dw16;
        break;
    }
}

void kiln_packet_decode(const uint8_t raw[KILN_PACKET_SIZE], KilnPacket *pkt)
{
    uint8_t *out = (uint8_t *)pkt;
    Layout l;
    unsigned off = 0, i;

    layout_of(ld32(raw) & KILN_PKT_OPCODE_MASK, &l);
    for (i = 0; i < l.n; i++) {
        if (l.size[i] == 4) {
            uint32_t v = ld32(raw + off);
            memcpy(out + off, &v, 4);
        } else {
            uint64_t v = ld64(raw + off);
            memcpy(out + off, &v, 8);
        }
        off += l.size[i];
    }
}

void kiln_packet_encode(const KilnPacket *pkt, uint8_t raw[KILN_PACKET_SIZE])
{
    const uint8_t *in = (const uint8_t *)pkt;
    Layout l;
    unsigned off = 0, i;

    layout_of(pkt->header & KILN_PKT_OPCODE_MASK, &l);
    for (i = 0; i < l.n; i++) {
        if (l.size[i] == 4) {
            uint32_t v;
            memcpy(&v, in + off, 4);
            st32(raw + off, v);
        } else {
            uint64_t v;
            memcpy(&v, in + off, 8);
            st64(raw + off, v);
        }
        off += l.size[i];
    }
}

void kiln_job_status_encode(const struct kiln_job_status *st,
                            uint8_t raw[sizeof(struct kiln_job_status)])
{
    st32(raw + 0, st->status);
    st32(raw + 4, st->packet_index);
    st64(raw + 8, st->job_id);
    st64(raw + 16, st->fault_addr);
    st32(raw + 24, st->fault_access);
    st32(raw + 28, st->fault_reason);
    st32(raw + 32, st->pe);
    st32(raw + 36, st->flags);
    st64(raw + 40, st->pc);
    st64(raw + 48, st->cycles);
    st64(raw + 56, st->elapsed_ns);
    st64(raw + 64, st->energy_pj);
}

#define BAD(off) do { if (field) { *field = (off); } \
                      return KILN_STATUS_BAD_PACKET; } while (0)

/* All bytes of [from, 64) that are reserved must be zero. */
static bool mbz(const void *p, size_t from, size_t to)
{
    const uint8_t *b = p;
    size_t i;

    for (i = from; i < to; i++) {
        if (b[i]) {
            return false;
        }
    }
    return true;
}

#define CHECK_MBZ(type, member) \
    do { \
        if (!mbz(pkt, offsetof(type, member), \
                 offsetof(type, member) + sizeof(((type *)0)->member))) { \
            BAD(offsetof(type, member)); \
        } \
    } while (0)

uint32_t kiln_packet_validate(const KilnPacket *pkt, bool user,
                              uint32_t *field)
{
    uint32_t hdr = pkt->header;
    uint32_t op = KILN_PKT_OPCODE(hdr);
    uint32_t flags = KILN_PKT_FLAGS(hdr);
    uint32_t allowed_flags = 0;

    if (field) {
        *field = 0;
    }
    switch (op) {
    case KILN_OP_NOP:
    case KILN_OP_INDIRECT:
    case KILN_OP_DMA_COPY:
    case KILN_OP_DMA_FILL:
    case KILN_OP_WAIT:
    case KILN_OP_TIMESTAMP:
        break;
    case KILN_OP_LAUNCH:
        allowed_flags = KILN_LAUNCH_FLAG_COOPERATIVE;
        break;
    case KILN_OP_FENCE:
        allowed_flags = KILN_FENCE_FLAG_IRQ | KILN_FENCE_FLAG_64BIT;
        break;
    case KILN_OP_CTX_SETUP:
        allowed_flags = KILN_CTX_FLAG_VALID;
        break;
    case KILN_OP_TLB_INVAL:
        allowed_flags = KILN_TLB_FLAG_ALL;
        break;
    default:
        BAD(0);
    }
    if (user && KILN_OP_IS_PRIVILEGED(op)) {
        return KILN_STATUS_PRIVILEGED;
    }
    if (hdr & KILN_PKT_RESERVED_MASK) {
        BAD(0);
    }
    if (flags & ~allowed_flags) {
        BAD(1);
    }

    switch (op) {
    case KILN_OP_NOP:
        CHECK_MBZ(struct kiln_pkt_nop, reserved);
        break;
    case KILN_OP_INDIRECT: {
        const struct kiln_pkt_indirect *p = &pkt->indirect;

        CHECK_MBZ(struct kiln_pkt_indirect, reserved);
        if (p->asid == 0 || p->asid >= KILN_MAX_CONTEXTS) {
            if (field) {
                *field = offsetof(struct kiln_pkt_indirect, asid);
            }
            return KILN_STATUS_BAD_CONTEXT;
        }
        if (p->cmd_va & (KILN_PACKET_SIZE - 1)) {
            BAD(offsetof(struct kiln_pkt_indirect, cmd_va));
        }
        if (p->size == 0 || p->size % KILN_PACKET_SIZE ||
            p->size > KILN_INDIRECT_MAX_SIZE) {
            BAD(offsetof(struct kiln_pkt_indirect, size));
        }
        if (p->status_pa & 7) {
            BAD(offsetof(struct kiln_pkt_indirect, status_pa));
        }
        break;
    }
    case KILN_OP_DMA_COPY: {
        const struct kiln_pkt_dma_copy *p = &pkt->dma_copy;

        CHECK_MBZ(struct kiln_pkt_dma_copy, reserved0);
        CHECK_MBZ(struct kiln_pkt_dma_copy, reserved);
        if (p->size > KILN_DMA_MAX_SIZE) {
            BAD(offsetof(struct kiln_pkt_dma_copy, size));
        }
        if (p->src + p->size < p->src) {
            BAD(offsetof(struct kiln_pkt_dma_copy, src));
        }
        if (p->dst + p->size < p->dst) {
            BAD(offsetof(struct kiln_pkt_dma_copy, dst));
        }
        if (p->size && p->src < p->dst + p->size && p->dst < p->src + p->size) {
            BAD(offsetof(struct kiln_pkt_dma_copy, dst));
        }
        break;
    }
    case KILN_OP_DMA_FILL: {
        const struct kiln_pkt_dma_fill *p = &pkt->dma_fill;

        CHECK_MBZ(struct kiln_pkt_dma_fill, reserved);
        if (p->dst & 3) {
            BAD(offsetof(struct kiln_pkt_dma_fill, dst));
        }
        if (p->size & 3 || p->size > KILN_DMA_MAX_SIZE) {
            BAD(offsetof(struct kiln_pkt_dma_fill, size));
        }
        if (p->dst + p->size < p->dst) {
            BAD(offsetof(struct kiln_pkt_dma_fill, dst));
        }
        break;
    }
    case KILN_OP_LAUNCH: {
        const struct kiln_pkt_launch *p = &pkt->launch;

        if (p->args_size > KILN_LAUNCH_MAX_ARGS_SIZE) {
            BAD(offsetof(struct kiln_pkt_launch, args_size));
        }
        if (p->profile_va & 7) {
            BAD(offsetof(struct kiln_pkt_launch, profile_va));
        }
        /* Grid, entry and memory checks belong to the PE engine (BAD_LAUNCH). */
        break;
    }
    case KILN_OP_FENCE: {
        const struct kiln_pkt_fence *p = &pkt->fence;

        CHECK_MBZ(struct kiln_pkt_fence, reserved0);
        CHECK_MBZ(struct kiln_pkt_fence, reserved);
        if (flags & KILN_FENCE_FLAG_64BIT) {
            if (p->addr & 7) {
                BAD(offsetof(struct kiln_pkt_fence, addr));
            }
        } else {
            if (p->addr & 3) {
                BAD(offsetof(struct kiln_pkt_fence, addr));
            }
            if (p->value >> 32) {
                BAD(offsetof(struct kiln_pkt_fence, value));
            }
        }
        break;
    }
    case KILN_OP_WAIT: {
        const struct kiln_pkt_wait *p = &pkt->wait;

        CHECK_MBZ(struct kiln_pkt_wait, reserved);
        if (p->op > KILN_WAIT_NOT_EQUAL) {
            BAD(offsetof(struct kiln_pkt_wait, op));
        }
        if (p->addr & 7) {
            BAD(offsetof(struct kiln_pkt_wait, addr));
        }
        break;
    }
    case KILN_OP_TIMESTAMP: {
        const struct kiln_pkt_timestamp *p = &pkt->timestamp;

        CHECK_MBZ(struct kiln_pkt_timestamp, reserved0);
        CHECK_MBZ(struct kiln_pkt_timestamp, reserved);
        if (p->addr & 7) {
            BAD(offsetof(struct kiln_pkt_timestamp, addr));
        }
        break;
    }
    case KILN_OP_CTX_SETUP: {
        const struct kiln_pkt_ctx_setup *p = &pkt->ctx_setup;

        CHECK_MBZ(struct kiln_pkt_ctx_setup, reserved);
        if (p->asid == 0 || p->asid >= KILN_MAX_CONTEXTS) {
            if (field) {
                *field = offsetof(struct kiln_pkt_ctx_setup, asid);
            }
            return KILN_STATUS_BAD_CONTEXT;
        }
        if (flags & KILN_CTX_FLAG_VALID) {
            if (p->pt_root_pa & (KILN_PAGE_SIZE - 1)) {
                BAD(offsetof(struct kiln_pkt_ctx_setup, pt_root_pa));
            }
        } else if (p->pt_root_pa) {
            BAD(offsetof(struct kiln_pkt_ctx_setup, pt_root_pa));
        }
        break;
    }
    case KILN_OP_TLB_INVAL: {
        const struct kiln_pkt_tlb_inval *p = &pkt->tlb_inval;

        CHECK_MBZ(struct kiln_pkt_tlb_inval, reserved);
        /* ASID 0 with ALL: every context. */
        if (p->asid >= KILN_MAX_CONTEXTS ||
            (p->asid == 0 && !(flags & KILN_TLB_FLAG_ALL))) {
            if (field) {
                *field = offsetof(struct kiln_pkt_tlb_inval, asid);
            }
            return KILN_STATUS_BAD_CONTEXT;
        }
        if (flags & KILN_TLB_FLAG_ALL) {
            if (p->va || p->size) {
                BAD(offsetof(struct kiln_pkt_tlb_inval, va));
            }
        } else if (p->va + p->size < p->va) {
            BAD(offsetof(struct kiln_pkt_tlb_inval, size));
        }
        break;
    }
    }
    return KILN_STATUS_OK;
}

const char *kiln_opcode_name(uint32_t opcode)
{
    switch (opcode) {
    case KILN_OP_NOP: return "NOP";
    case KILN_OP_INDIRECT: return "INDIRECT";
    case KILN_OP_DMA_COPY: return "DMA_COPY";
    case KILN_OP_DMA_FILL: return "DMA_FILL";
    case KILN_OP_LAUNCH: return "LAUNCH";
    case KILN_OP_FENCE: return "FENCE";
    case KILN_OP_WAIT: return "WAIT";
    case KILN_OP_TIMESTAMP: return "TIMESTAMP";
    case KILN_OP_CTX_SETUP: return "CTX_SETUP";
    case KILN_OP_TLB_INVAL: return "TLB_INVAL";
    default: return "?";
    }
}

const char *kiln_status_name(uint32_t status)
{
    static const char *const names[] = {
        "OK", "BAD_PACKET", "PRIVILEGED", "BAD_ADDRESS", "MMU_FAULT",
        "DMA_ERROR", "ILLEGAL_INSTRUCTION", "MISALIGNED", "LOCAL_MEM_BOUNDS",
        "KERNEL_TRAP", "WATCHDOG", "BAD_LAUNCH", "ABORTED", "RING_OVERFLOW",
        "BAD_REGISTER", "FATAL", "BAD_CONTEXT", "INTERRUPTED",
    };

    _Static_assert(sizeof(names) / sizeof(names[0]) == KILN_STATUS_COUNT,
                   "a name for every status");
    return status < KILN_STATUS_COUNT ? names[status] : "?";
}
