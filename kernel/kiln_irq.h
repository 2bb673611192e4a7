/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: MSI-X vectors.
 */
#ifndef KILN_IRQ_H
#define KILN_IRQ_H

struct kiln_device;
struct kiln_queue;

int kiln_irq_init(struct kiln_device *kdev);
void kiln_irq_fini(struct kiln_device *kdev);
void kiln_irq_follow(struct kiln_queue *q);

#endif /* KILN_IRQ_H */
