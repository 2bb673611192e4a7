/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: sysfs attributes and hwmon sensors (ABI in docs/driver.md).
 */
#ifndef KILN_SYSFS_H
#define KILN_SYSFS_H

struct kiln_device;

int kiln_sysfs_init(struct kiln_device *kdev);
void kiln_sysfs_fini(struct kiln_device *kdev);

#endif /* KILN_SYSFS_H */
