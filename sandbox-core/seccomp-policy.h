/*
 * seccomp-policy.h: the shape of the seccomp policy table in seccomp.c,
 * exposed so that the unit tests can check the table itself.
 */
#ifndef SANDBOX_SECCOMP_POLICY_H
#define SANDBOX_SECCOMP_POLICY_H

#include <stddef.h>
#include <stdint.h>

enum sbx_scmp_match {
	SBX_SCMP_ALWAYS,       /* deny every call */
	SBX_SCMP_ARG_EQ32,     /* deny when the low 32 bits of arg equal value */
	SBX_SCMP_ARG_ANY_BITS, /* deny when arg has any bit of value set and no bit of guard */
	SBX_SCMP_ARG_TYPE_RAW, /* deny when (arg & 0xf) == value: a socket type */
};

struct sbx_scmp_rule {
	const char *syscall; /* libseccomp's name of the syscall */
	int err;	     /* the errno the call fails with */
	enum sbx_scmp_match match;
	unsigned arg; /* argument index for the ARG_* matches */
	uint64_t value;
	uint64_t guard; /* ARG_ANY_BITS: a bit here set in arg exempts the call */
	/* What the agent's own filter (SBX_SCMP_AGENT) leaves out: for ALWAYS,
	 * nonzero drops the rule; for ARG_ANY_BITS, these bits of value. */
	uint64_t agent_allows;
};

enum sbx_scmp_variant {
	SBX_SCMP_PROGRAM, /* every rule: what a one-shot sandbox's program loads */
	/* What a persistent sandbox's agent loads for itself once, and every
	 * command inherits: the same, but for the calls the agent needs to give
	 * each command its namespaces (mount(), clone() with CLONE_NEWPID and
	 * CLONE_NEWNS), which without capabilities fail all the same. */
	SBX_SCMP_AGENT,
};

extern const struct sbx_scmp_rule sbx_scmp_policy[];
extern const size_t sbx_scmp_policy_len;

#endif
