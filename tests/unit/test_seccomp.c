/*
 * test_seccomp.c: unit tests of the seccomp policy of sandbox-core: the
 * table sbx_scmp_policy[] itself, and the BPF program sbx_scmp_build()
 * compiles from it.
 *
 * The filter is never loaded into this process.  Instead the program runs in
 * a small classic-BPF interpreter below, on hand-made struct seccomp_data
 * records, so that the tests see the verdict the kernel would give for a call
 * (including high bits in 32-bit arguments and calls from other ABIs).  The
 * probe that runs real denied calls inside a real sandbox is a security test,
 * not this one.
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/sched.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <termios.h>

#include <cmocka.h>

#include "sandbox-private.h"
#include "seccomp-policy.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
#ifndef SECCOMP_RET_KILL_PROCESS
#define SECCOMP_RET_KILL_PROCESS 0x80000000U
#endif
#ifndef SECCOMP_RET_ACTION_FULL
#define SECCOMP_RET_ACTION_FULL 0xffff0000U
#endif

#define RET_ERRNO(e) (SECCOMP_RET_ERRNO | ((uint32_t)(e)&SECCOMP_RET_DATA))

/* Every flag that creates a namespace, by name for the messages. */
static const struct {
	const char *name;
	uint64_t flag;
} ns_flags[] = {
	{ "CLONE_NEWUSER", CLONE_NEWUSER },	{ "CLONE_NEWNS", CLONE_NEWNS },
	{ "CLONE_NEWPID", CLONE_NEWPID },	{ "CLONE_NEWNET", CLONE_NEWNET },
	{ "CLONE_NEWIPC", CLONE_NEWIPC },	{ "CLONE_NEWUTS", CLONE_NEWUTS },
	{ "CLONE_NEWCGROUP", CLONE_NEWCGROUP }, { "CLONE_NEWTIME", CLONE_NEWTIME },
};

/* The calls the policy must deny outright (with EPERM); clone3 is apart, with ENOSYS. */
static const char *const always_denied[] = {
	"setns",
	"mount",
	"umount2",
	"pivot_root",
	"chroot",
	"fsopen",
	"fsconfig",
	"fsmount",
	"fspick",
	"move_mount",
	"open_tree",
	"ptrace",
	"process_vm_readv",
	"process_vm_writev",
	"keyctl",
	"add_key",
	"request_key",
	"bpf",
	"userfaultfd",
	"io_uring_setup",
	"io_uring_enter",
	"io_uring_register",
	"perf_event_open",
	"kexec_load",
	"kexec_file_load",
	"init_module",
	"finit_module",
	"delete_module",
	"open_by_handle_at",
	"syslog",
	"reboot",
};

/* The first rule for syscall with this match and argument, or NULL. */
static const struct sbx_scmp_rule *
find_rule(const char *syscall, enum sbx_scmp_match match, unsigned arg, uint64_t value,
	  bool any_value)
{
	for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
		const struct sbx_scmp_rule *r = &sbx_scmp_policy[i];

		if (strcmp(r->syscall, syscall) != 0 || r->match != match)
			continue;
		if (match == SBX_SCMP_ALWAYS)
			return r;
		if (r->arg == arg && (any_value || r->value == value))
			return r;
	}
	return NULL;
}

/* The table */

static void
policy_is_not_empty(void **state)
{
	(void)state;
	assert_true(sbx_scmp_policy_len >= sizeof(always_denied) / sizeof(always_denied[0]));
}

static void
every_syscall_name_resolves(void **state)
{
	(void)state;
	for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
		const char *name = sbx_scmp_policy[i].syscall;

		assert_non_null(name);
		if (seccomp_syscall_resolve_name(name) == __NR_SCMP_ERROR)
			fail_msg("rule %zu: libseccomp does not know the syscall \"%s\"", i, name);
	}
}

static void
every_rule_is_well_formed(void **state)
{
	(void)state;
	for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
		const struct sbx_scmp_rule *r = &sbx_scmp_policy[i];

		/* The errno lives in the 16-bit SECCOMP_RET_DATA; 0 would mean "success". */
		if (r->err <= 0 || r->err > 4095)
			fail_msg("rule %zu (%s): errno %d", i, r->syscall, r->err);
		switch (r->match) {
		case SBX_SCMP_ALWAYS: break;
		case SBX_SCMP_ARG_EQ32:
			assert_true(r->arg < 6);
			assert_true(r->value <= 0xffffffffu);
			break;
		case SBX_SCMP_ARG_ANY_BITS:
			assert_true(r->arg < 6);
			assert_true(r->value != 0);
			break;
		case SBX_SCMP_ARG_TYPE_RAW:
			assert_true(r->arg < 6);
			assert_true(r->value <= 0xf);
			break;
		default: fail_msg("rule %zu (%s): unknown match %d", i, r->syscall, (int)r->match);
		}
	}
}

static void
clone3_answers_enosys(void **state)
{
	const struct sbx_scmp_rule *r = find_rule("clone3", SBX_SCMP_ALWAYS, 0, 0, true);

	(void)state;
	/* ENOSYS, not EPERM: glibc then falls back to clone(), whose flags seccomp can see. */
	assert_non_null(r);
	assert_int_equal(r->err, ENOSYS);
}

static void
required_syscalls_are_always_denied(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(always_denied) / sizeof(always_denied[0]); i++) {
		const struct sbx_scmp_rule *r =
			find_rule(always_denied[i], SBX_SCMP_ALWAYS, 0, 0, true);

		if (!r)
			fail_msg("no rule denies %s outright", always_denied[i]);
		assert_int_equal(r->err, EPERM);
	}
}

/* Asserts that some ARG_ANY_BITS rule on arg 0 of syscall covers every namespace flag. */
static void
assert_covers_ns_flags(const char *syscall)
{
	for (size_t f = 0; f < sizeof(ns_flags) / sizeof(ns_flags[0]); f++) {
		bool found = false;

		for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
			const struct sbx_scmp_rule *r = &sbx_scmp_policy[i];

			if (strcmp(r->syscall, syscall) == 0 && r->match == SBX_SCMP_ARG_ANY_BITS &&
			    r->arg == 0 && (r->value & ns_flags[f].flag) && r->err == EPERM)
				found = true;
		}
		if (!found)
			fail_msg("%s with %s is not denied", syscall, ns_flags[f].name);
	}
}

static void
clone_denies_every_namespace_flag(void **state)
{
	(void)state;
	assert_covers_ns_flags("clone");
}

static void
unshare_denies_every_namespace_flag(void **state)
{
	(void)state;
	assert_covers_ns_flags("unshare");
}

static void
socket_families_and_raw_type_denied(void **state)
{
	const struct sbx_scmp_rule *r;

	(void)state;
	r = find_rule("socket", SBX_SCMP_ARG_EQ32, 0, AF_PACKET, false);
	assert_non_null(r);
	assert_int_equal(r->err, EPERM);
	r = find_rule("socket", SBX_SCMP_ARG_EQ32, 0, AF_VSOCK, false);
	assert_non_null(r);
	assert_int_equal(r->err, EPERM);
	r = find_rule("socket", SBX_SCMP_ARG_TYPE_RAW, 1, SOCK_RAW, false);
	assert_non_null(r);
	assert_int_equal(r->err, EPERM);
}

static void
ioctl_tiocsti_denied_masked_to_32_bits(void **state)
{
	const struct sbx_scmp_rule *r;

	(void)state;
	/* EQ32, not a 64-bit equality: the kernel reads the request as an unsigned int. */
	r = find_rule("ioctl", SBX_SCMP_ARG_EQ32, 1, TIOCSTI, false);
	assert_non_null(r);
	assert_int_equal(r->err, EPERM);
}

/* The compiled program */

static struct sock_fprog prog;

static int
build_setup(void **state)
{
	(void)state;
	return sbx_scmp_build(&prog, SBX_SCMP_PROGRAM) == 0 ? 0 : -1;
}

static int
build_teardown(void **state)
{
	(void)state;
	sbx_scmp_free(&prog);
	return 0;
}

struct bpf_run {
	uint32_t ret;
	bool ok;
	char why[128];
};

/*
 * Runs prog on d like the kernel's seccomp BPF would.  Knows the classic BPF
 * subset that seccomp accepts; anything else fails the run.
 */
static struct bpf_run
bpf_exec(const struct sock_fprog *p, const struct seccomp_data *d)
{
	struct bpf_run res = { 0, false, "" };
	uint32_t a = 0, x = 0, mem[BPF_MEMWORDS] = { 0 };
	const unsigned char *data = (const unsigned char *)d;

	for (unsigned pc = 0; pc < p->len; pc++) {
		const struct sock_filter *in = &p->filter[pc];
		uint32_t k = in->k, src;

		switch (BPF_CLASS(in->code)) {
		case BPF_LD:
			if (in->code == (BPF_LD | BPF_W | BPF_ABS)) {
				if (k % 4 || k + 4 > sizeof(*d)) {
					snprintf(res.why, sizeof(res.why), "pc %u: load at %u", pc,
						 k);
					return res;
				}
				memcpy(&a, data + k, 4);
			} else if (in->code == (BPF_LD | BPF_IMM)) {
				a = k;
			} else if (in->code == (BPF_LD | BPF_MEM) && k < BPF_MEMWORDS) {
				a = mem[k];
			} else {
				goto unknown;
			}
			break;
		case BPF_LDX:
			if (in->code == (BPF_LDX | BPF_IMM))
				x = k;
			else if (in->code == (BPF_LDX | BPF_MEM) && k < BPF_MEMWORDS)
				x = mem[k];
			else
				goto unknown;
			break;
		case BPF_ST:
			if (k >= BPF_MEMWORDS)
				goto unknown;
			mem[k] = a;
			break;
		case BPF_STX:
			if (k >= BPF_MEMWORDS)
				goto unknown;
			mem[k] = x;
			break;
		case BPF_ALU:
			src = BPF_SRC(in->code) == BPF_X ? x : k;
			switch (BPF_OP(in->code)) {
			case BPF_ADD: a += src; break;
			case BPF_SUB: a -= src; break;
			case BPF_AND: a &= src; break;
			case BPF_OR: a |= src; break;
			case BPF_XOR: a ^= src; break;
			case BPF_LSH: a = src < 32 ? a << src : 0; break;
			case BPF_RSH: a = src < 32 ? a >> src : 0; break;
			case BPF_NEG: a = -a; break;
			default: goto unknown;
			}
			break;
		case BPF_JMP: {
			bool t;

			src = BPF_SRC(in->code) == BPF_X ? x : k;
			switch (BPF_OP(in->code)) {
			case BPF_JA: pc += k; continue;
			case BPF_JEQ: t = a == src; break;
			case BPF_JGT: t = a > src; break;
			case BPF_JGE: t = a >= src; break;
			case BPF_JSET: t = (a & src) != 0; break;
			default: goto unknown;
			}
			pc += t ? in->jt : in->jf;
			break;
		}
		case BPF_RET:
			res.ret = BPF_RVAL(in->code) == BPF_A ? a : k;
			res.ok = true;
			return res;
		case BPF_MISC:
			if (BPF_MISCOP(in->code) == BPF_TAX)
				x = a;
			else if (BPF_MISCOP(in->code) == BPF_TXA)
				a = x;
			else
				goto unknown;
			break;
		default: goto unknown;
		}
		continue;
	unknown:
		snprintf(res.why, sizeof(res.why), "pc %u: instruction 0x%04x not emulated", pc,
			 in->code);
		return res;
	}
	snprintf(res.why, sizeof(res.why), "ran off the end of the program");
	return res;
}

/* The verdict for syscall name (native ABI) with the given arguments. */
static uint32_t
verdict_arch(uint32_t arch, int nr, uint64_t a0, uint64_t a1, uint64_t a2)
{
	struct seccomp_data d;
	struct bpf_run r;

	memset(&d, 0, sizeof(d));
	d.nr = nr;
	d.arch = arch;
	d.instruction_pointer = 0x400000;
	d.args[0] = a0;
	d.args[1] = a1;
	d.args[2] = a2;
	r = bpf_exec(&prog, &d);
	if (!r.ok)
		fail_msg("BPF program: %s", r.why);
	return r.ret;
}

static int
nr_of(const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR || nr < 0)
		fail_msg("no native syscall number for %s", name);
	return nr;
}

static uint32_t
verdict(const char *name, uint64_t a0, uint64_t a1, uint64_t a2)
{
	return verdict_arch(seccomp_arch_native(), nr_of(name), a0, a1, a2);
}

static void
assert_verdict(const char *what, uint32_t got, uint32_t want)
{
	if (got != want)
		fail_msg("%s: verdict 0x%08x, expected 0x%08x", what, got, want);
}

static void
build_produces_a_program(void **state)
{
	(void)state;
	assert_non_null(prog.filter);
	assert_true(prog.len > 0);
	assert_true(prog.len <= BPF_MAXINSNS);
	/* The first thing the program looks at is the architecture. */
	assert_int_equal(prog.filter[0].code, BPF_LD | BPF_W | BPF_ABS);
	assert_int_equal(prog.filter[0].k, offsetof(struct seccomp_data, arch));
}

static void
build_twice_and_free(void **state)
{
	struct sock_fprog p2 = { 0, NULL };

	(void)state;
	assert_int_equal(sbx_scmp_build(&p2, SBX_SCMP_PROGRAM), 0);
	assert_int_equal(p2.len, prog.len);
	assert_memory_equal(p2.filter, prog.filter, p2.len * sizeof(*p2.filter));
	sbx_scmp_free(&p2);
	assert_null(p2.filter);
	assert_int_equal(p2.len, 0);
}

static void
filter_allows_ordinary_calls(void **state)
{
	(void)state;
	assert_verdict("read", verdict("read", 0, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("write", verdict("write", 1, 0, 5), SECCOMP_RET_ALLOW);
	assert_verdict("openat", verdict("openat", (uint64_t)-100, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("execve", verdict("execve", 0, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("exit_group", verdict("exit_group", 0, 0, 0), SECCOMP_RET_ALLOW);
	/* fork() and pthread_create() through clone(), no namespace flags. */
	assert_verdict("clone fork", verdict("clone", SIGCHLD, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("clone thread",
		       verdict("clone",
			       CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
				       CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
				       CLONE_CHILD_CLEARTID,
			       0, 0),
		       SECCOMP_RET_ALLOW);
	assert_verdict("unshare files", verdict("unshare", CLONE_FILES, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("socket inet stream",
		       verdict("socket", AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0),
		       SECCOMP_RET_ALLOW);
	assert_verdict("socket inet6 dgram", verdict("socket", AF_INET6, SOCK_DGRAM, 0),
		       SECCOMP_RET_ALLOW);
	assert_verdict("socket unix", verdict("socket", AF_UNIX, SOCK_STREAM, 0),
		       SECCOMP_RET_ALLOW);
	assert_verdict("ioctl TCGETS", verdict("ioctl", 0, TCGETS, 0), SECCOMP_RET_ALLOW);
}

static void
filter_denies_every_always_rule(void **state)
{
	(void)state;
	for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
		const struct sbx_scmp_rule *r = &sbx_scmp_policy[i];
		char what[96];

		if (r->match != SBX_SCMP_ALWAYS)
			continue;
		snprintf(what, sizeof(what), "%s()", r->syscall);
		assert_verdict(what, verdict(r->syscall, 0, 0, 0), RET_ERRNO(r->err));
		assert_verdict(what, verdict(r->syscall, ~0ull, 0x1234, ~0ull), RET_ERRNO(r->err));
	}
	assert_verdict("clone3", verdict("clone3", 0, 88, 0), RET_ERRNO(ENOSYS));
	assert_verdict("mount", verdict("mount", 0, 0, 0), RET_ERRNO(EPERM));
}

static void
filter_denies_namespace_flags(void **state)
{
	(void)state;
	for (size_t f = 0; f < sizeof(ns_flags) / sizeof(ns_flags[0]); f++) {
		char what[64];

		snprintf(what, sizeof(what), "clone(%s)", ns_flags[f].name);
		assert_verdict(what, verdict("clone", ns_flags[f].flag, 0, 0), RET_ERRNO(EPERM));
		assert_verdict(what, verdict("clone", ns_flags[f].flag | SIGCHLD | CLONE_VM, 0, 0),
			       RET_ERRNO(EPERM));
		snprintf(what, sizeof(what), "unshare(%s)", ns_flags[f].name);
		assert_verdict(what, verdict("unshare", ns_flags[f].flag, 0, 0), RET_ERRNO(EPERM));
		assert_verdict(what, verdict("unshare", ns_flags[f].flag | CLONE_FILES, 0, 0),
			       RET_ERRNO(EPERM));
	}
}

static void
filter_denies_sockets(void **state)
{
	(void)state;
	assert_verdict("AF_PACKET", verdict("socket", AF_PACKET, SOCK_RAW, 0), RET_ERRNO(EPERM));
	assert_verdict("AF_PACKET dgram", verdict("socket", AF_PACKET, SOCK_DGRAM, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("AF_VSOCK", verdict("socket", AF_VSOCK, SOCK_STREAM, 0), RET_ERRNO(EPERM));
	assert_verdict("AF_INET SOCK_RAW", verdict("socket", AF_INET, SOCK_RAW, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("AF_INET6 SOCK_RAW|flags",
		       verdict("socket", AF_INET6, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("AF_NETLINK SOCK_RAW", verdict("socket", AF_NETLINK, SOCK_RAW, 0),
		       RET_ERRNO(EPERM));
}

static void
filter_masks_32_bit_arguments(void **state)
{
	(void)state;
	/* The kernel truncates int arguments: garbage in the high half must not help. */
	assert_verdict("AF_PACKET high bits",
		       verdict("socket", 0xdead000000000000ull | AF_PACKET, SOCK_DGRAM, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("AF_VSOCK high bits",
		       verdict("socket", 0x100000000ull | AF_VSOCK, SOCK_STREAM, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("TIOCSTI", verdict("ioctl", 0, TIOCSTI, 0), RET_ERRNO(EPERM));
	assert_verdict("TIOCSTI high bits", verdict("ioctl", 0, 0xffffffff00000000ull | TIOCSTI, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("TIOCSTI bit 32", verdict("ioctl", 5, 0x100000000ull | TIOCSTI, 0),
		       RET_ERRNO(EPERM));
	assert_verdict("TIOCLINUX", verdict("ioctl", 0, TIOCLINUX, 0), RET_ERRNO(EPERM));
}

static void
filter_kills_foreign_architectures(void **state)
{
	uint32_t native = seccomp_arch_native();
	uint32_t foreign = native == SCMP_ARCH_X86 ? SCMP_ARCH_X86_64 : SCMP_ARCH_X86;

	(void)state;
	/* Syscall numbers differ per ABI: a 32-bit call would dodge every rule. */
	assert_verdict("foreign arch", verdict_arch(foreign, nr_of("read"), 0, 0, 0),
		       SECCOMP_RET_KILL_PROCESS);
	assert_verdict("foreign arch", verdict_arch(foreign, 21, 0, 0, 0),
		       SECCOMP_RET_KILL_PROCESS);
}

static void
filter_refuses_x32_syscalls(void **state)
{
	(void)state;
#ifdef __x86_64__
	/* x32 calls come with the x86_64 arch and bit 30 set in the number; where the
	 * kernel has x32 they reach the same code, so they must not be allowed. */
	uint32_t v = verdict_arch(SCMP_ARCH_X86_64, nr_of("mount") | 0x40000000, 0, 0, 0);

	if (v == SECCOMP_RET_ALLOW)
		fail_msg("x32 mount() is allowed");
	v = verdict_arch(SCMP_ARCH_X86_64, nr_of("unshare") | 0x40000000, CLONE_NEWUSER, 0, 0);
	if (v == SECCOMP_RET_ALLOW)
		fail_msg("x32 unshare(CLONE_NEWUSER) is allowed");
#else
	assert_true(seccomp_arch_native() != SCMP_ARCH_X86_64);
#endif
}

/* The agent's variant: what a persistent sandbox's agent loads for itself and
 * every command it starts. */

static int
build_agent_setup(void **state)
{
	(void)state;
	return sbx_scmp_build(&prog, SBX_SCMP_AGENT) == 0 ? 0 : -1;
}

static void
agent_exemptions_are_only_mount_and_two_clone_flags(void **state)
{
	(void)state;
	for (size_t i = 0; i < sbx_scmp_policy_len; i++) {
		const struct sbx_scmp_rule *r = &sbx_scmp_policy[i];

		if (!r->agent_allows)
			continue;
		if (strcmp(r->syscall, "mount") == 0 && r->match == SBX_SCMP_ALWAYS)
			continue;
		if (strcmp(r->syscall, "clone") == 0 && r->match == SBX_SCMP_ARG_ANY_BITS &&
		    r->agent_allows == (CLONE_NEWPID | CLONE_NEWNS))
			continue;
		fail_msg("rule %zu (%s) is left to the agent", i, r->syscall);
	}
}

static void
agent_filter_allows_what_the_agent_needs(void **state)
{
	(void)state;
	assert_verdict("mount", verdict("mount", 0, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("clone newpid|newns",
		       verdict("clone", CLONE_NEWPID | CLONE_NEWNS | SIGCHLD, 0, 0),
		       SECCOMP_RET_ALLOW);
	assert_verdict("clone fork", verdict("clone", SIGCHLD, 0, 0), SECCOMP_RET_ALLOW);
	assert_verdict("read", verdict("read", 0, 0, 0), SECCOMP_RET_ALLOW);
}

static void
agent_filter_denies_the_rest(void **state)
{
	static const uint64_t other_ns[] = { CLONE_NEWUSER, CLONE_NEWNET,    CLONE_NEWIPC,
					     CLONE_NEWUTS,  CLONE_NEWCGROUP, CLONE_NEWTIME };
	const uint32_t eperm = SECCOMP_RET_ERRNO | EPERM;

	(void)state;
	/* A user namespace is what would give the commands capabilities back:
	 * never, with or without the flags the agent may use. */
	for (size_t i = 0; i < sizeof(other_ns) / sizeof(other_ns[0]); i++) {
		assert_verdict("clone other ns", verdict("clone", other_ns[i] | SIGCHLD, 0, 0),
			       eperm);
		assert_verdict("clone newpid + other ns",
			       verdict("clone", CLONE_NEWPID | CLONE_NEWNS | other_ns[i], 0, 0),
			       eperm);
	}
	assert_verdict("unshare newns", verdict("unshare", CLONE_NEWNS, 0, 0), eperm);
	assert_verdict("unshare newpid", verdict("unshare", CLONE_NEWPID, 0, 0), eperm);
	assert_verdict("clone3", verdict("clone3", 0, 0, 0), SECCOMP_RET_ERRNO | ENOSYS);
	/* Every other always-denied call stays denied. */
	for (size_t i = 0; i < sizeof(always_denied) / sizeof(always_denied[0]); i++)
		if (strcmp(always_denied[i], "mount") != 0)
			assert_verdict(always_denied[i], verdict(always_denied[i], 0, 0, 0), eperm);
}

#define B(name) cmocka_unit_test_setup_teardown(name, build_setup, build_teardown)
#define BA(name) cmocka_unit_test_setup_teardown(name, build_agent_setup, build_teardown)

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(policy_is_not_empty),
		cmocka_unit_test(every_syscall_name_resolves),
		cmocka_unit_test(every_rule_is_well_formed),
		cmocka_unit_test(clone3_answers_enosys),
		cmocka_unit_test(required_syscalls_are_always_denied),
		cmocka_unit_test(clone_denies_every_namespace_flag),
		cmocka_unit_test(unshare_denies_every_namespace_flag),
		cmocka_unit_test(socket_families_and_raw_type_denied),
		cmocka_unit_test(ioctl_tiocsti_denied_masked_to_32_bits),
		B(build_produces_a_program),
		B(build_twice_and_free),
		B(filter_allows_ordinary_calls),
		B(filter_denies_every_always_rule),
		B(filter_denies_namespace_flags),
		B(filter_denies_sockets),
		B(filter_masks_32_bit_arguments),
		B(filter_kills_foreign_architectures),
		B(filter_refuses_x32_syscalls),
		cmocka_unit_test(agent_exemptions_are_only_mount_and_two_clone_flags),
		BA(agent_filter_allows_what_the_agent_needs),
		BA(agent_filter_denies_the_rest),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
