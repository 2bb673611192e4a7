/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Kiln K1 engine: packet decoding and validation (pure functions).
 */
#ifndef KILN_PACKET_H
#define KILN_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#include "kiln/hw/kiln_mmu.h"
#include "kiln/hw/kiln_packets.h"
#include "kiln/hw/kiln_regs.h"
#include "kiln/hw/kiln_status.h"

/* A decoded packet; the member matching KILN_PKT_OPCODE(header) is valid. */
typedef union KilnPacket {
    uint32_t header;
    struct kiln_pkt_generic generic;
    struct kiln_pkt_nop nop;
    struct kiln_pkt_indirect indirect;
    struct kiln_pkt_dma_copy dma_copy;
    struct kiln_pkt_dma_fill dma_fill;
    struct kiln_pkt_launch launch;
    struct kiln_pkt_fence fence;
    struct kiln_pkt_wait wait;
    struct kiln_pkt_timestamp timestamp;
    struct kiln_pkt_ctx_setup ctx_setup;
    struct kiln_pkt_tlb_inval tlb_inval;
} KilnPacket;

/* Decode 64 little-endian bytes into host-endian fields. */
void kiln_packet_decode(const uint8_t raw[KILN_PACKET_SIZE], KilnPacket *pkt);
/* Encode back to 64 little-endian bytes (tests, tools). */
void kiln_packet_encode(const KilnPacket *pkt, uint8_t raw[KILN_PACKET_SIZE]);

/*
 * Validate a decoded packet. @user is true inside an INDIRECT command buffer
 * (privileged opcodes are rejected with KILN_STATUS_PRIVILEGED). Returns
 * KILN_STATUS_OK or KILN_STATUS_BAD_PACKET / KILN_STATUS_PRIVILEGED /
 * KILN_STATUS_BAD_CONTEXT; *@field, if non-NULL, receives the byte offset of
 * the offending field inside the packet.
 */
uint32_t kiln_packet_validate(const KilnPacket *pkt, bool user,
                              uint32_t *field);

/* Human-readable opcode and status names ("?" if unknown). */
const char *kiln_opcode_name(uint32_t opcode);
const char *kiln_status_name(uint32_t status);

/* Encode a job status record as 64 little-endian bytes. */
void kiln_job_status_encode(const struct kiln_job_status *st,
                            uint8_t raw[sizeof(struct kiln_job_status)]);

#endif /* KILN_PACKET_H */
