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
 * the child loads it with seccomp(2) and so never allocates between clone() and
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

/* personality(2) flags that weaken the next program: no ASLR, executable data,
 * a page at address zero, old address-space layouts. */
#define PERSONALITY_DANGEROUS                                                                      \
	(0x0040000u /* ADDR_NO_RANDOMIZE */ | 0x0100000u /* MMAP_PAGE_ZERO */ |                    \
	 0x0200000u /* ADDR_COMPAT_LAYOUT */ | 0x0400000u /* READ_IMPLIES_EXEC */ |                \
	 0x0800000u /* ADDR_LIMIT_32BIT */ | 0x8000000u /* ADDR_LIMIT_3GB */)

/* Any of these flags on clone() or unshare() would create a namespace. */
#define NS_FLAGS                                                                                   \
	(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS | \
	 CLONE_NEWCGROUP | CLONE_NEWTIME)

#define DENY(sys, e)                                                                               \
	{                                                                                          \
		sys, e, SBX_SCMP_ALWAYS, 0, 0, 0, 0                                                \
	}
/* Denied to programs, left to the agent of a persistent sandbox. */
#define DENY_BUT_AGENT(sys, e)                                                                     \
	{                                                                                          \
		sys, e, SBX_SCMP_ALWAYS, 0, 0, 0, 1                                                \
	}
#define DENY_EQ32(sys, e, arg, v)                                                                  \
	{                                                                                          \
		sys, e, SBX_SCMP_ARG_EQ32, arg, v, 0, 0                                            \
	}
#define DENY_SOCKTYPE(sys, e, arg, v)                                                              \
	{                                                                                          \
		sys, e, SBX_SCMP_ARG_TYPE_RAW, arg, v, 0, 0                                        \
	}
#define DENY_BITS(sys, e, arg, bits, guard, agent)                                                 \
	{                                                                                          \
		sys, e, SBX_SCMP_ARG_ANY_BITS, arg, bits, guard, agent                             \
	}

const struct sbx_scmp_rule sbx_scmp_policy[] = {
	/* Namespaces: clone3 passes its flags in memory that seccomp cannot read, so it
	 * answers ENOSYS and libc falls back to clone(), whose flags we can check. */
	DENY("clone3", ENOSYS),
	/* The agent gives each command a pid and a mount namespace of its own;
	 * without CAP_SYS_ADMIN, which only a user namespace could give back, the
	 * kernel refuses both to what the commands run. */
	DENY_BITS("clone", EPERM, 0, NS_FLAGS, 0, CLONE_NEWPID | CLONE_NEWNS),
	DENY_BITS("unshare", EPERM, 0, NS_FLAGS, 0, 0),
	DENY("setns", EPERM),
	/* Mounts, old and new API, and root changes. */
	DENY_BUT_AGENT("mount", EPERM), /* the agent: each command's /proc */
	DENY("umount2", EPERM),
	DENY("pivot_root", EPERM),
	DENY("chroot", EPERM),
	DENY("fsopen", EPERM),
	DENY("fsconfig", EPERM),
	DENY("fsmount", EPERM),
	DENY("fspick", EPERM),
	DENY("move_mount", EPERM),
	DENY("open_tree", EPERM),
	DENY("mount_setattr", EPERM),
	/* Other processes' memory. */
	DENY("ptrace", EPERM),
	DENY("process_vm_readv", EPERM),
	DENY("process_vm_writev", EPERM),
	DENY("kcmp", EPERM),
	DENY("pidfd_getfd", EPERM),
	/* Kernel keyrings. */
	DENY("keyctl", EPERM),
	DENY("add_key", EPERM),
	DENY("request_key", EPERM),
	/* Large kernel surfaces that user code does not need. */
	DENY("bpf", EPERM),
	DENY("userfaultfd", EPERM),
	DENY("io_uring_setup", EPERM),
	DENY("io_uring_enter", EPERM),
	DENY("io_uring_register", EPERM),
	DENY("perf_event_open", EPERM),
	DENY("fanotify_init", EPERM),
	DENY("lookup_dcookie", EPERM),
	/* Host-wide administration. */
	DENY("kexec_load", EPERM),
	DENY("kexec_file_load", EPERM),
	DENY("init_module", EPERM),
	DENY("finit_module", EPERM),
	DENY("delete_module", EPERM),
	DENY("open_by_handle_at", EPERM),
	DENY("name_to_handle_at", EPERM),
	DENY("syslog", EPERM),
	DENY("reboot", EPERM),
	DENY("acct", EPERM),
	DENY("swapon", EPERM),
	DENY("swapoff", EPERM),
	DENY("quotactl", EPERM),
	DENY("settimeofday", EPERM),
	DENY("clock_settime", EPERM),
	DENY("clock_adjtime", EPERM),
	DENY("adjtimex", EPERM),
	DENY("iopl", EPERM),
	DENY("ioperm", EPERM),
	DENY("vhangup", EPERM),
	DENY("uselib", EPERM),
	/* The LDT is x86 legacy with a history of kernel bugs (CVE-2015-5157 and others). */
	DENY("modify_ldt", EPERM),
	/* personality(): no turning off ASLR or making data executable for what runs
	 * next.  Real personalities never use bit 31, so the query value 0xffffffff
	 * is exempt through the guard bit. */
	DENY_BITS("personality", EPERM, 0, PERSONALITY_DANGEROUS, 0x80000000u, 0),
	/* Sockets: no packet, raw or vsock sockets.  The kernel reads int arguments as 32
	 * bits, so the comparisons mask to 32 bits and high garbage cannot slip past. */
	DENY_EQ32("socket", EPERM, 0, AF_PACKET),
	DENY_EQ32("socket", EPERM, 0, AF_VSOCK),
	DENY_SOCKTYPE("socket", EPERM, 1, SOCK_RAW),
	/* Terminal injection (CVE-2017-5226, CVE-2019-10063, CVE-2023-1523). */
	DENY_EQ32("ioctl", EPERM, 1, TIOCSTI),
	DENY_EQ32("ioctl", EPERM, 1, TIOCLINUX),
};

const size_t sbx_scmp_policy_len = sizeof(sbx_scmp_policy) / sizeof(sbx_scmp_policy[0]);

static int
add_rule(scmp_filter_ctx ctx, const struct sbx_scmp_rule *r, enum sbx_scmp_variant variant)
{
	int nr = seccomp_syscall_resolve_name(r->syscall);
	uint32_t action = SCMP_ACT_ERRNO((uint32_t)r->err);
	struct sbx_scmp_rule agent;

	if (variant == SBX_SCMP_AGENT && r->agent_allows) {
		if (r->match == SBX_SCMP_ALWAYS)
			return 0;
		agent = *r;
		agent.value &= ~r->agent_allows;
		agent.agent_allows = 0;
		return agent.value ? add_rule(ctx, &agent, SBX_SCMP_PROGRAM) : 0;
	}

	/* A syscall this libseccomp does not know cannot be reached by name either;
	 * the kernel's own number table is what matters, so refuse to build. */
	if (nr == __NR_SCMP_ERROR)
		return -ENOSYS;

	switch (r->match) {
	case SBX_SCMP_ALWAYS: return seccomp_rule_add(ctx, action, nr, 0);
	case SBX_SCMP_ARG_EQ32:
		return seccomp_rule_add(
			ctx, action, nr, 1,
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
			ret = seccomp_rule_add(
				ctx, action, nr, 1,
				SCMP_CMP64(r->arg, SCMP_CMP_MASKED_EQ, flag | r->guard, flag));
			if (ret < 0)
				return ret;
		}
		return 0;
	}
	return -EINVAL;
}

int
sbx_scmp_build(struct sock_fprog *ret, enum sbx_scmp_variant variant)
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
		r = add_rule(ctx, &sbx_scmp_policy[i], variant);
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
