/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: power management (runtime PM and system sleep).
 */
#ifndef KILN_PM_H
#define KILN_PM_H

#include <linux/pm.h>

struct kiln_device;

void kiln_pm_init(struct kiln_device *kdev);
void kiln_pm_fini(struct kiln_device *kdev);
int kiln_pm_get(struct kiln_device *kdev);
bool kiln_pm_get_if_active(struct kiln_device *kdev);
void kiln_pm_get_noresume(struct kiln_device *kdev);
void kiln_pm_put(struct kiln_device *kdev);

extern const struct dev_pm_ops kiln_pm_ops;

#endif /* KILN_PM_H */
