/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Seeded fuzzer for the Kiln K1 device (hw/misc/kiln).
 *
 * Drives random register writes, doorbells, ring contents, packets (mostly
 * well-formed with random fields, some garbage), DMA addresses across all
 * regions, fault-injection properties, soft resets and FLRs, and checks
 * that QEMU stays alive and that the registers stay consistent.
 *
 *   KILN_FUZZ_OPS   number of operations (default 100000)
 *   KILN_FUZZ_SEED  seed (default 1; printed so failures can be replayed)
 */
#include "qemu/osdep.h"
#include "qemu/bswap.h"
#include "qemu/host-utils.h"
#include "libqtest.h"
#include "qobject/qdict.h"
#include "libqos/pci.h"
#include "libqos/pci-pc.h"
#include "libqos/libqos-malloc.h"
#include "libqos/malloc-pc.h"
#include "hw/pci/pci_regs.h"
#include "kiln/hw/kiln_regs.h"
#include "kiln/hw/kiln_packets.h"
#include "kiln/hw/kiln_mmu.h"
#include "kiln/hw/kiln_status.h"

#define DRAM_SIZE (16ull << 20)
#define RING_ENTRIES 64
#define NQ 4
#define HOSTMEM_SIZE (256 * 1024)

static uint64_t rng_state;

static uint64_t rnd(void)
{
    uint64_t x = rng_state;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545f4914f6cdd1dull;
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

typedef struct Fuzz {
    QTestState *qts;
    QPCIBus *bus;
    QPCIDevice *dev;
    QPCIBar bar0, bar2;
    QGuestAllocator alloc;
    uint64_t hostmem;       /* guest buffer used for DMA and rings */
    uint64_t ring[NQ];
    uint32_t tail[NQ];
} Fuzz;

static uint64_t rnd_addr(Fuzz *f, uint64_t len)
{
    switch (rnd_below(8)) {
    case 0:
    case 1:
    case 2:
        return KILN_PA_HOST_BASE + f->hostmem +
               (rnd_below(HOSTMEM_SIZE - MIN(len, HOSTMEM_SIZE)) & ~7ull);
    case 3:
    case 4:
        return rnd_below(DRAM_SIZE) & ~7ull;
    case 5:
        return KILN_PA_SRAM_BASE + (rnd_below(KILN_SRAM_SIZE) & ~7ull);
    case 6:
        return rnd() & ~3ull;                   /* anything */
    default:
        return KILN_PA_HOST_BASE + (rnd() & 0x3fffffff);  /* unmapped host */
    }
}

static void rnd_packet(Fuzz *f, uint8_t *raw)
{
    static const uint8_t ops[] = {
        KILN_OP_NOP, KILN_OP_INDIRECT, KILN_OP_DMA_COPY, KILN_OP_DMA_FILL,
        KILN_OP_FENCE, KILN_OP_WAIT, KILN_OP_TIMESTAMP, KILN_OP_CTX_SETUP,
        KILN_OP_TLB_INVAL, KILN_OP_LAUNCH,
    };
    uint32_t op = ops[rnd_below(ARRAY_SIZE(ops))];
    int i;

    memset(raw, 0, KILN_PACKET_SIZE);
    if (rnd_below(16) == 0) {
        for (i = 0; i < KILN_PACKET_SIZE; i++) {
            raw[i] = rnd();
        }
        return;
    }
    switch (op) {
    case KILN_OP_DMA_COPY: {
        struct kiln_pkt_dma_copy *p = (void *)raw;
        p->size = rnd_below(4) ? rnd_below(16384) : rnd_below(4 << 20);
        p->src = rnd_addr(f, p->size);
        p->dst = rnd_addr(f, p->size);
        break;
    }
    case KILN_OP_DMA_FILL: {
        struct kiln_pkt_dma_fill *p = (void *)raw;
        p->size = (rnd_below(4) ? rnd_below(16384) : rnd_below(4 << 20)) & ~3;
        p->dst = rnd_addr(f, p->size);
        p->pattern = rnd();
        break;
    }
    case KILN_OP_FENCE: {
        struct kiln_pkt_fence *p = (void *)raw;
        p->addr = rnd_addr(f, 8);
        p->value = rnd() & 0xffffffff;
        op |= (rnd_below(4) << 8);
        break;
    }
    case KILN_OP_WAIT: {
        struct kiln_pkt_wait *p = (void *)raw;
        p->addr = rnd_addr(f, 8);
        p->op = rnd_below(3);
        p->mask = rnd_below(2) ? 0 : rnd();     /* mask 0: EQUAL 0 passes */
        p->value = 0;
        break;
    }
    case KILN_OP_TIMESTAMP: {
        struct kiln_pkt_timestamp *p = (void *)raw;
        p->addr = rnd_addr(f, 16);
        break;
    }
    case KILN_OP_INDIRECT: {
        struct kiln_pkt_indirect *p = (void *)raw;
        p->asid = rnd_below(KILN_MAX_CONTEXTS + 2);
        p->cmd_va = rnd_below(2) ? rnd_addr(f, 4096) & ~63ull :
                    rnd_below(1 << 24) & ~63ull;
        p->size = (rnd_below(8) + 1) * KILN_PACKET_SIZE;
        p->status_pa = rnd_addr(f, 64) & ~7ull;
        p->job_id = rnd();
        break;
    }
    case KILN_OP_CTX_SETUP: {
        struct kiln_pkt_ctx_setup *p = (void *)raw;
        p->asid = rnd_below(KILN_MAX_CONTEXTS + 2);
        p->pt_root_pa = rnd_addr(f, 4096) & ~0xfffull;
        op |= rnd_below(2) << 8;
        break;
    }
    case KILN_OP_TLB_INVAL: {
        struct kiln_pkt_tlb_inval *p = (void *)raw;
        p->asid = rnd_below(KILN_MAX_CONTEXTS);
        if (rnd_below(2)) {
            op |= KILN_TLB_FLAG_ALL << 8;
        } else {
            p->va = rnd() & (KILN_VA_MAX - 1);
            p->size = rnd_below(1 << 30);
        }
        break;
    }
    case KILN_OP_LAUNCH: {
        struct kiln_pkt_launch *p = (void *)raw;
        p->entry_va = rnd_addr(f, 64) & ~3ull;
        p->args_va = rnd_addr(f, 64);
        p->grid_x = rnd_below(3);
        p->grid_y = 1;
        p->grid_z = 1;
        p->watchdog_mcycles = 1;
        break;
    }
    default:
        break;
    }
    memcpy(raw, &op, 4);
    if (rnd_below(32) == 0) {
        raw[rnd_below(KILN_PACKET_SIZE)] ^= 1 << rnd_below(8);
    }
}

static void qom_set(Fuzz *f, const char *prop, int64_t v)
{
    QDict *r = qtest_qmp(f->qts, "{'execute':'qom-set','arguments':"
                         "{'path':'k0','property':%s,'value':%" PRId64 "}}",
                         prop, v);
    qobject_unref(r);
}

static void setup_queue(Fuzz *f, int q)
{
    qpci_io_writeq(f->dev, f->bar0, KILN_REG_QUEUE(q) + KILN_QREG_BASE,
                   KILN_PA_HOST_BASE + f->ring[q]);
    qpci_io_writel(f->dev, f->bar0, KILN_REG_QUEUE(q) + KILN_QREG_SIZE,
                   RING_ENTRIES);
    qpci_io_writel(f->dev, f->bar0, KILN_REG_QUEUE(q) + KILN_QREG_PRIORITY,
                   rnd_below(KILN_NUM_PRIORITIES));
    qpci_io_writel(f->dev, f->bar0, KILN_REG_QUEUE(q) + KILN_QREG_CONTROL,
                   KILN_QCTRL_ENABLE);
    f->tail[q] = qpci_io_readl(f->dev, f->bar0,
                               KILN_REG_QUEUE(q) + KILN_QREG_TAIL);
}

static void check_consistent(Fuzz *f)
{
    int q;

    g_assert_cmphex(qpci_io_readl(f->dev, f->bar0, KILN_REG_CHIP_ID), ==,
                    KILN_CHIP_ID);
    g_assert(qpci_io_readl(f->dev, f->bar0, KILN_REG_STATUS) &
             KILN_STATUS_REG_READY);
    for (q = 0; q < KILN_NUM_QUEUES; q++) {
        uint64_t b = KILN_REG_QUEUE(q);
        uint32_t size = qpci_io_readl(f->dev, f->bar0, b + KILN_QREG_SIZE);
        uint32_t head = qpci_io_readl(f->dev, f->bar0, b + KILN_QREG_HEAD);
        uint32_t tail = qpci_io_readl(f->dev, f->bar0, b + KILN_QREG_TAIL);
        uint32_t st = qpci_io_readl(f->dev, f->bar0, b + KILN_QREG_STATUS);
        uint32_t prio = qpci_io_readl(f->dev, f->bar0, b + KILN_QREG_PRIORITY);

        g_assert(size == 0 || (is_power_of_2(size) &&
                               size >= KILN_QUEUE_MIN_ENTRIES &&
                               size <= KILN_QUEUE_MAX_ENTRIES));
        if (size) {
            g_assert_cmpuint(head, <, size);
            g_assert_cmpuint(tail, <, size);
        }
        g_assert_cmpuint(prio, <, KILN_NUM_PRIORITIES);
        g_assert_cmphex(st & ~0x3fu, ==, 0);
        g_assert_cmpuint(qpci_io_readl(f->dev, f->bar0, b + KILN_QREG_ERROR),
                         <, KILN_STATUS_COUNT);
    }
    g_assert_cmpuint(qpci_io_readl(f->dev, f->bar0, KILN_REG_ERROR_CODE), <,
                     KILN_STATUS_COUNT);
}

static void test_fuzz(void)
{
    const char *ops_env = getenv("KILN_FUZZ_OPS");
    const char *seed_env = getenv("KILN_FUZZ_SEED");
    uint64_t nops = ops_env ? g_ascii_strtoull(ops_env, NULL, 0) : 100000;
    uint64_t seed = seed_env ? g_ascii_strtoull(seed_env, NULL, 0) : 1;
    Fuzz f = { 0 };
    uint64_t i;
    int q;

    g_test_message("kiln fuzz: seed %" PRIu64 ", %" PRIu64 " operations",
                   seed, nops);
    rng_state = seed * 0x9e3779b97f4a7c15ull + 1;
    f.qts = qtest_init("-M q35 -nodefaults -device kiln,addr=04.0,id=k0,pe-grid=2x2,"
                       "dram-size=16M,workers=2");
    f.bus = qpci_new_pc(f.qts, NULL);
    f.dev = qpci_device_find(f.bus, QPCI_DEVFN(4, 0));
    g_assert(f.dev);
    qpci_device_enable(f.dev);
    f.bar0 = qpci_iomap(f.dev, KILN_BAR_REGS, NULL);
    f.bar2 = qpci_iomap(f.dev, KILN_BAR_DRAM, NULL);
    qpci_msix_enable(f.dev);
    pc_alloc_init(&f.alloc, f.qts, 0);
    f.hostmem = guest_alloc(&f.alloc, HOSTMEM_SIZE);
    for (q = 0; q < NQ; q++) {
        f.ring[q] = guest_alloc(&f.alloc, RING_ENTRIES * KILN_PACKET_SIZE);
    }
    qpci_io_writel(f.dev, f.bar0, KILN_REG_CONTROL, KILN_CONTROL_ENABLE);
    for (q = 0; q < NQ; q++) {
        setup_queue(&f, q);
    }

    for (i = 0; i < nops; i++) {
        uint32_t kind = rnd_below(100);
        q = rnd_below(NQ);

        if (kind < 45) {
            /* one packet into the ring, doorbell */
            uint8_t raw[KILN_PACKET_SIZE];
            rnd_packet(&f, raw);
            qtest_memwrite(f.qts, f.ring[q] + f.tail[q] * KILN_PACKET_SIZE,
                           raw, sizeof(raw));
            f.tail[q] = (f.tail[q] + 1) % RING_ENTRIES;
            qpci_io_writel(f.dev, f.bar0, KILN_DOORBELL(q), f.tail[q]);
        } else if (kind < 55) {
            /* random host memory contents (command buffers, semaphores) */
            uint64_t v = rnd();
            qtest_memwrite(f.qts, f.hostmem + (rnd_below(HOSTMEM_SIZE) & ~7),
                           &v, 8);
        } else if (kind < 65) {
            /* random register write */
            uint64_t off = rnd_below(2) ?
                KILN_REG_QUEUE(rnd_below(KILN_NUM_QUEUES)) +
                (rnd_below(KILN_REG_QUEUE_STRIDE) & ~3) :
                rnd_below(0x100) & ~3;
            uint32_t v = rnd_below(4) ? rnd_below(70000) : rnd();
            if (off == KILN_REG_CONTROL) {
                v &= rnd_below(50) ? ~(uint32_t)KILN_CONTROL_SOFT_RESET : ~0u;
            }
            if (rnd_below(4) == 0) {
                qpci_io_writeq(f.dev, f.bar0, off & ~7, rnd());
            } else {
                qpci_io_writel(f.dev, f.bar0, off, v);
            }
        } else if (kind < 72) {
            /* random doorbell, possibly out of range or another queue */
            int dq = rnd_below(KILN_NUM_QUEUES);
            qpci_io_writel(f.dev, f.bar0, KILN_DOORBELL(dq) +
                           (rnd_below(8) ? 0 : rnd_below(4096) & ~3),
                           rnd_below(8) ? rnd_below(RING_ENTRIES) : rnd());
        } else if (kind < 82) {
            /* register reads */
            uint64_t off = rnd_below(2) ? rnd_below(0x100) & ~3 :
                KILN_REG_TELEMETRY_BASE + (rnd_below(0x30) & ~3);
            qpci_io_readl(f.dev, f.bar0, off);
            qpci_io_readq(f.dev, f.bar0, KILN_REG_QUEUE(q) & ~7);
        } else if (kind < 88) {
            /* re-arm a queue: resume, or disable/reset/enable */
            if (rnd_below(2)) {
                qpci_io_writel(f.dev, f.bar0,
                               KILN_REG_QUEUE(q) + KILN_QREG_CONTROL,
                               KILN_QCTRL_ENABLE | KILN_QCTRL_RESUME);
            } else {
                qpci_io_writel(f.dev, f.bar0,
                               KILN_REG_QUEUE(q) + KILN_QREG_CONTROL, 0);
                qpci_io_writel(f.dev, f.bar0,
                               KILN_REG_QUEUE(q) + KILN_QREG_CONTROL,
                               KILN_QCTRL_RESET);
                setup_queue(&f, q);
            }
            qpci_io_writel(f.dev, f.bar0, KILN_REG_CONTROL,
                           KILN_CONTROL_ENABLE);
        } else if (kind < 92) {
            /* BAR2 traffic (page tables, code) */
            qpci_io_writeq(f.dev, f.bar2, rnd_below(DRAM_SIZE) & ~7, rnd());
        } else if (kind < 94) {
            static const char *const props[] = {
                "x-fault-dma-error", "x-fault-lost-irq", "x-fault-mmu",
                "x-fault-late-irq-ms", "x-fault-hang-queue", "x-fault-rate",
            };
            int p = rnd_below(ARRAY_SIZE(props));
            int64_t v = p == 4 ? (int64_t)rnd_below(KILN_NUM_QUEUES + 1) - 1 :
                        p == 5 ? rnd_below(50000) : rnd_below(4);
            qom_set(&f, props[p], v);
        } else if (kind < 95) {
            if (rnd_below(40) == 0) {
                qom_set(&f, "x-fault-fatal", 1);
            }
            qtest_clock_step(f.qts, rnd_below(10000000));
        } else if (kind < 96) {
            if (rnd_below(10) == 0) {
                /* soft reset, then bring the queues back */
                qpci_io_writel(f.dev, f.bar0, KILN_REG_CONTROL,
                               KILN_CONTROL_SOFT_RESET);
                qpci_io_writel(f.dev, f.bar0, KILN_REG_CONTROL,
                               KILN_CONTROL_ENABLE);
                for (q = 0; q < NQ; q++) {
                    setup_queue(&f, q);
                }
            }
        } else if (kind < 97) {
            if (rnd_below(50) == 0) {
                uint8_t cap = qpci_find_capability(f.dev, PCI_CAP_ID_EXP, 0);
                uint8_t mx = qpci_find_capability(f.dev, PCI_CAP_ID_MSIX, 0);
                uint16_t dc = qpci_config_readw(f.dev, cap + PCI_EXP_DEVCTL);
                uint16_t mxf = qpci_config_readw(f.dev, mx + PCI_MSIX_FLAGS);
                uint32_t bars[6];
                int b;

                for (b = 0; b < 6; b++) {
                    bars[b] = qpci_config_readl(f.dev, PCI_BASE_ADDRESS_0 + 4 * b);
                }
                qpci_config_writew(f.dev, cap + PCI_EXP_DEVCTL,
                                   dc | PCI_EXP_DEVCTL_BCR_FLR);
                for (b = 0; b < 6; b++) {
                    qpci_config_writel(f.dev, PCI_BASE_ADDRESS_0 + 4 * b,
                                       bars[b]);
                }
                qpci_config_writew(f.dev, PCI_COMMAND, PCI_COMMAND_MEMORY |
                                   PCI_COMMAND_MASTER);
                qpci_config_writew(f.dev, mx + PCI_MSIX_FLAGS, mxf);
                qpci_io_writel(f.dev, f.bar0, KILN_REG_CONTROL,
                               KILN_CONTROL_ENABLE);
                for (q = 0; q < NQ; q++) {
                    setup_queue(&f, q);
                }
            }
        } else {
            /* bus mastering off for a moment */
            if (rnd_below(20) == 0) {
                qpci_config_writew(f.dev, PCI_COMMAND, PCI_COMMAND_MEMORY);
                qpci_io_writel(f.dev, f.bar0, KILN_DOORBELL(q), f.tail[q]);
                qpci_device_enable(f.dev);
            }
        }
        if (i % 2000 == 0) {
            check_consistent(&f);
        }
    }
    check_consistent(&f);
    g_free(f.dev);
    alloc_destroy(&f.alloc);
    qpci_free_pc(f.bus);
    qtest_quit(f.qts);
}

int main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    qtest_add_func("/kiln/fuzz", test_fuzz);
    return g_test_run();
}
