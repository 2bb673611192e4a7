/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: MSI-X vectors.
 */
#ifndef KILN_IRQ_H
#define KILN_IRQ_H

struct kiln_device;

int kiln_irq_init(struct kiln_device *kdev);
void kiln_irq_fini(struct kiln_device *kdev);

#endif /* KILN_IRQ_H */
