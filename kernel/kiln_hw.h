/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: device identification, start, stop and reset.
 */
#ifndef KILN_HW_H
#define KILN_HW_H

struct kiln_device;

int kiln_hw_probe(struct kiln_device *kdev);
int kiln_hw_soft_reset(struct kiln_device *kdev);
int kiln_hw_start(struct kiln_device *kdev);
void kiln_hw_stop(struct kiln_device *kdev);
bool kiln_hw_fatal(struct kiln_device *kdev);

#endif /* KILN_HW_H */
