/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: debugfs (/sys/kernel/debug/accel/<pci address>/).
 */
#ifndef KILN_DEBUGFS_H
#define KILN_DEBUGFS_H

struct kiln_device;

#if IS_ENABLED(CONFIG_DEBUG_FS)
void kiln_debugfs_init(struct kiln_device *kdev);
#else
static inline void kiln_debugfs_init(struct kiln_device *kdev) {}
#endif

#endif /* KILN_DEBUGFS_H */
