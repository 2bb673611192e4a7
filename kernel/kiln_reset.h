/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * Kiln: hang detection and recovery.
 */
#ifndef KILN_RESET_H
#define KILN_RESET_H

#include <linux/pci.h>

struct kiln_device;

int kiln_reset_init(struct kiln_device *kdev);
void kiln_reset_fini(struct kiln_device *kdev);
void kiln_watchdog_kick(struct kiln_device *kdev);
void kiln_watchdog_kick_now(struct kiln_device *kdev);
void kiln_reset_schedule(struct kiln_device *kdev, const char *reason);
void kiln_reset_flush(struct kiln_device *kdev);
void kiln_reset_quiesce_locked(struct kiln_device *kdev);
void kiln_reset_restore_locked(struct kiln_device *kdev);

extern const struct pci_error_handlers kiln_pci_err_handlers;

#endif /* KILN_RESET_H */
