/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: sysfs attributes and hwmon sensors (ABI in kernel/ABI/sysfs-driver-kiln).
 */
#ifndef KILN_SYSFS_H
#define KILN_SYSFS_H

struct attribute_group;
struct kiln_device;

extern const struct attribute_group *kiln_dev_groups[];

int kiln_hwmon_init(struct kiln_device *kdev);

#endif /* KILN_SYSFS_H */
