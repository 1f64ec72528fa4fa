// SPDX-License-Identifier: GPL-2.0
/*
 * dmt_warn: test-only module that triggers one kernel WARNING when loaded
 * and then loads fine.  tests/host/vm-run.t uses it to prove that vm/run
 * fails on a guest kernel warning even when the command exits 0.
 */
#include <linux/bug.h>
#include <linux/module.h>

static int __init dmt_warn_init(void)
{
	WARN(1, "dmt_warn: deliberate warning for the vm/run self-test\n");
	return 0;
}

static void __exit dmt_warn_exit(void)
{
}

module_init(dmt_warn_init);
module_exit(dmt_warn_exit);

MODULE_DESCRIPTION("Test-only: WARN on load");
MODULE_LICENSE("GPL");
