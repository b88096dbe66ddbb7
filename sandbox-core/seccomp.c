/*
 * seccomp.c: the whole seccomp policy of a sandbox, in one table.
 *
 * The filter allows by default and denies the kernel surfaces that code in a
 * sandbox never needs and that past escapes went through: creating namespaces
 * (the door to mount, netfilter and fsconfig bugs such as CVE-2022-0185),
 * mounting, changing root, ptrace and cross-process memory access, keyrings
 * (a cross-run channel even with keyctl blocked: add_key + request_key), BPF,
 * userfaultfd (race amplifier), io_uring (a second syscall table), perf,
 * module and kexec loading, handle-based opens (the "shocker" escape), the
 * kernel log, reboot, raw, packet and vsock sockets, and TIOCSTI/TIOCLINUX.
 * Calls from any architecture other than the native one kill the process
 * (the 32-bit table would bypass every rule written for the native one).
 *
 * The filter is compiled once, in the parent, and exported as a BPF program:
 * the child loads it with prctl() and so never allocates between clone() and
 * execve().
 */
#include <errno.h>
#include <linux/sched.h>
#include <seccomp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sandbox-private.h"
#include "seccomp-policy.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif

/* Any of these flags on clone() or unshare() would create a namespace. */
#define NS_FLAGS                                                                             \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC |           \
	 CLONE_NEWUTS | CLONE_NEWCGROUP | CLONE_NEWTIME)

const struct sbx_scmp_rule sbx_scmp_policy[] = {
	/* Namespaces: clone3 passes its flags in memory that seccomp cannot read, so it
	 * answers ENOSYS and libc falls back to clone(), whose flags we can check. */
	{ "clone3", ENOSYS, SBX_SCMP_ALWAYS, 0, 0 },
	{ "clone", EPERM, SBX_SCMP_ARG_ANY_BITS, 0, NS_FLAGS },
	{ "unshare", EPERM, SBX_SCMP_ARG_ANY_BITS, 0, NS_FLAGS },
	{ "setns", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	/* Mounts, old and new API, and root changes. */
	{ "mount", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "umount2", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "pivot_root", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "chroot", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "fsopen", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "fsconfig", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "fsmount", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "fspick", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "move_mount", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "open_tree", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "mount_setattr", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	/* Other processes' memory. */
	{ "ptrace", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "process_vm_readv", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "process_vm_writev", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "kcmp", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "pidfd_getfd", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	/* Kernel keyrings. */
	{ "keyctl", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "add_key", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "request_key", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	/* Large kernel surfaces that user code does not need. */
	{ "bpf", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "userfaultfd", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "io_uring_setup", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "io_uring_enter", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "io_uring_register", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "perf_event_open", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "fanotify_init", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "lookup_dcookie", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	/* Host-wide administration. */
	{ "kexec_load", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "kexec_file_load", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "init_module", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "finit_module", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "delete_module", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "open_by_handle_at", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "name_to_handle_at", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "syslog", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "reboot", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "acct", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "swapon", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "swapoff", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "quotactl", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "settimeofday", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "clock_settime", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "clock_adjtime", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "adjtimex", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "iopl", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "ioperm", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "vhangup", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	{ "uselib", EPERM, SBX_SCMP_ALWAYS, 0, 0 },
	/* Sockets: no packet, raw or vsock sockets.  The kernel reads int arguments as 32
	 * bits, so the comparisons mask to 32 bits and high garbage cannot slip past. */
	{ "socket", EPERM, SBX_SCMP_ARG_EQ32, 0, AF_PACKET },
	{ "socket", EPERM, SBX_SCMP_ARG_EQ32, 0, AF_VSOCK },
	{ "socket", EPERM, SBX_SCMP_ARG_TYPE_RAW, 1, SOCK_RAW },
	/* Terminal injection (CVE-2017-5226, CVE-2019-10063, CVE-2023-1523). */
	{ "ioctl", EPERM, SBX_SCMP_ARG_EQ32, 1, TIOCSTI },
	{ "ioctl", EPERM, SBX_SCMP_ARG_EQ32, 1, TIOCLINUX },
};

const size_t sbx_scmp_policy_len = sizeof(sbx_scmp_policy) / sizeof(sbx_scmp_policy[0]);

static int
add_rule(scmp_filter_ctx ctx, const struct sbx_scmp_rule *r)
{
	int nr = seccomp_syscall_resolve_name(r->syscall);
	uint32_t action = SCMP_ACT_ERRNO((uint32_t)r->err);

	/* A syscall this libseccomp does not know cannot be reached by name either;
	 * the kernel's own number table is what matters, so refuse to build. */
	if (nr == __NR_SCMP_ERROR)
		return -ENOSYS;

	switch (r->match) {
	case SBX_SCMP_ALWAYS:
		return seccomp_rule_add(ctx, action, nr, 0);
	case SBX_SCMP_ARG_EQ32:
		return seccomp_rule_add(ctx, action, nr, 1,
					SCMP_CMP64(r->arg, SCMP_CMP_MASKED_EQ, 0xffffffffu, r->value));
	case SBX_SCMP_ARG_TYPE_RAW:
		/* The socket type carries SOCK_NONBLOCK/SOCK_CLOEXEC above the low nibble. */
		return seccomp_rule_add(ctx, action, nr, 1,
					SCMP_CMP64(r->arg, SCMP_CMP_MASKED_EQ, 0xfu, r->value));
	case SBX_SCMP_ARG_ANY_BITS:
		/* One rule per flag: libseccomp's comparisons test equality under a mask,
		 * so "any of these bits" is the OR of single-bit rules. */
		for (unsigned bit = 0; bit < 64; bit++) {
			uint64_t flag = 1ull << bit;
			int ret;

			if (!(r->value & flag))
				continue;
			ret = seccomp_rule_add(ctx, action, nr, 1,
					       SCMP_CMP64(r->arg, SCMP_CMP_MASKED_EQ, flag, flag));
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	return -EINVAL;
}

int
sbx_scmp_build(struct sock_fprog *ret)
{
	scmp_filter_ctx ctx;
	struct sock_filter *buf = NULL;
	off_t size;
	int fd = -1, r;

	ctx = seccomp_init(SCMP_ACT_ALLOW);
	if (!ctx)
		return -ENOMEM;
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (r < 0)
		goto out;
	/* The sandbox sets no_new_privs itself, just before loading the filter. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_NNP, 0);
	if (r < 0)
		goto out;
	for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
		r = add_rule(ctx, &sbx_scmp_policy[i]);
		if (r < 0)
			goto out;
	}

	fd = memfd_create("sbx-seccomp", MFD_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	r = seccomp_export_bpf(ctx, fd);
	if (r < 0)
		goto out;
	size = lseek(fd, 0, SEEK_END);
	if (size <= 0 || size % (off_t)sizeof(struct sock_filter) != 0 ||
	    size / (off_t)sizeof(struct sock_filter) > BPF_MAXINSNS) {
		r = -EINVAL;
		goto out;
	}
	buf = malloc((size_t)size);
	if (!buf) {
		r = -ENOMEM;
		goto out;
	}
	if (pread(fd, buf, (size_t)size, 0) != size) {
		r = -EIO;
		goto out;
	}
	ret->filter = buf;
	ret->len = (unsigned short)(size / (off_t)sizeof(struct sock_filter));
	buf = NULL;
	r = 0;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	seccomp_release(ctx);
	return r;
}

void
sbx_scmp_free(struct sock_fprog *prog)
{
	free(prog->filter);
	prog->filter = NULL;
	prog->len = 0;
}
