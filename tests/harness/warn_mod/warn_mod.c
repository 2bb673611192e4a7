// SPDX-License-Identifier: GPL-2.0
/*
 * kiln_harness_warn — a module that WARN()s when loaded.
 *
 * Used by the harness self-test (tests/harness/selftest.py) to prove that
 * scripts/kiln-vm fails a run when the guest kernel prints a WARNING, even
 * though the command itself succeeds.
 */
#include <linux/module.h>
#include <linux/bug.h>

static int __init kiln_harness_warn_init(void)
{
	WARN(1, "kiln harness self-test: deliberate warning\n");
	return 0;
}

static void __exit kiln_harness_warn_exit(void)
{
}

module_init(kiln_harness_warn_init);
module_exit(kiln_harness_warn_exit);
MODULE_DESCRIPTION("Kiln VM harness self-test: WARN on load");
MODULE_LICENSE("GPL");
