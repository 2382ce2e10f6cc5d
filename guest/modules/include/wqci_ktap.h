/* SPDX-License-Identifier: GPL-2.0 */
/*
 * KTAP output for wqci's stress modules: one document per module load,
 * diagnostics printed before the result they explain, metrics as
 * "# metric: key=value ..." diagnostics (parsed by pipeline/suites/ktap.py).
 */
#ifndef WQCI_KTAP_H
#define WQCI_KTAP_H

#include <linux/fs.h>
#include <linux/printk.h>

#define ktap_header(n)		do { pr_info("KTAP version 1\n"); pr_info("1..%d\n", (n)); } while (0)
#define ktap_diag(fmt, ...)	pr_info("# " fmt "\n", ##__VA_ARGS__)
#define ktap_ok(n, name)	pr_info("ok %d %s\n", (n), (name))
#define ktap_not_ok(n, name)	pr_info("not ok %d %s\n", (n), (name))
#define ktap_skip(n, name, why)	pr_info("ok %d %s # SKIP %s\n", (n), (name), (why))

static inline void ktap_result(int n, const char *name, bool ok)
{
	if (ok)
		ktap_ok(n, name);
	else
		ktap_not_ok(n, name);
}

/* Write a string to a sysfs attribute (e.g. a WQ_SYSFS workqueue's affinity_scope). */
static inline int wqci_sysfs_write(const char *path, const char *value)
{
	struct file *f = filp_open(path, O_WRONLY, 0);
	loff_t pos = 0;
	ssize_t done;

	if (IS_ERR(f))
		return PTR_ERR(f);
	done = kernel_write(f, value, strlen(value), &pos);
	filp_close(f, NULL);
	return done < 0 ? done : 0;
}

/* Read a small sysfs file into @buf (NUL-terminated): its length, or -errno when absent. */
static inline ssize_t wqci_sysfs_read(const char *path, char *buf, size_t size)
{
	struct file *f = filp_open(path, O_RDONLY, 0);
	loff_t pos = 0;
	ssize_t n;

	if (IS_ERR(f))
		return PTR_ERR(f);
	n = kernel_read(f, buf, size - 1, &pos);
	filp_close(f, NULL);
	buf[n < 0 ? 0 : n] = 0;
	return n;
}

/* Read an unsigned number from a sysfs file; -errno when absent. */
static inline long long wqci_sysfs_read_ull(const char *path)
{
	char buf[32];
	unsigned long long v;
	ssize_t n = wqci_sysfs_read(path, buf, sizeof(buf));

	if (n < 0)
		return n;
	return kstrtoull(strim(buf), 10, &v) ? -EINVAL : (long long)v;
}

#endif
