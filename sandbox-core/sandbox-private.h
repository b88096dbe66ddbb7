/*
 * sandbox-private.h: internals shared by the files of sandbox-core.  Never
 * included from outside this directory.
 */
#ifndef SANDBOX_PRIVATE_H
#define SANDBOX_PRIVATE_H

#include <limits.h>
#include <linux/filter.h>

#include "sandbox.h"
#include "seccomp-policy.h"

#define SBX_MAX_ETC 32	   /* host /etc entries exposed read-only */
#define SBX_MAX_TOPLINKS 8 /* /bin, /lib, ... as links or binds */
#define SBX_OPTS_LEN 128   /* a formatted tmpfs option string */

/* A top-level host entry such as /bin: a symlink to copy or a directory to bind. */
struct sbx_toplink {
	char path[16];	 /* "/bin"; path + 1 is where it goes in the new root */
	char target[64]; /* symlink target; empty: bind the directory */
};

/* One cgroup controller hierarchy (v1) or the unified hierarchy (v2). */
struct sbx_cg_dir {
	int dirfd;	     /* O_PATH directory of the sandboxd parent cgroup, or -1 */
	char path[PATH_MAX]; /* its absolute path, for messages and cleanup */
};

enum sbx_cg_kind { SBX_CG_MEMORY, SBX_CG_PIDS, SBX_CG_CPU, SBX_CG__MAX };

struct sbx_host {
	char state_dir[PATH_MAX];
	char root_dir[PATH_MAX]; /* <state>/root: where each sandbox builds its root */
	uid_t uid_base;
	uint32_t uid_slots;
	bool cg_v2;
	/* v2 uses cg[0] only; v1 uses one per controller. */
	struct sbx_cg_dir cg[SBX_CG__MAX];
	bool cg_memsw;			 /* v1: memory.memsw.* exists (swap accounting) */
	struct sock_fprog seccomp;	 /* the compiled filter, loaded by every program */
	int seccomp_fd;			 /* a sealed memfd holding it, handed to sandbox-agent */
	struct sock_fprog seccomp_agent; /* the filter a persistent sandbox's agent loads */
	int seccomp_agent_fd;
	int agent_fd; /* O_PATH fd of the sandbox-agent binary */
	struct sbx_toplink toplinks[SBX_MAX_TOPLINKS];
	unsigned n_toplinks;
	char etc[SBX_MAX_ETC][40]; /* host /etc entries bound read-only: "/etc/ssl" */
	bool etc_is_dir[SBX_MAX_ETC];
	unsigned n_etc;
	uint8_t *cg_made; /* per slot: its cgroup exists */
};

/* seccomp.c: builds the filter program; *ret owns a malloc'd filter array. */
int sbx_scmp_build(struct sock_fprog *ret, enum sbx_scmp_variant variant);
void sbx_scmp_free(struct sock_fprog *prog);

/* cgroup.c */
int sbx_cg_init(struct sbx_host *host, const char *cgroup_root);
void sbx_cg_fini(struct sbx_host *host);
int sbx_cg_create(struct sbx_host *host, uint32_t slot, const struct sbx_limits *lim);
/* The cgroup.procs files a sandbox of this slot joins, one per hierarchy ("" if none). */
int sbx_cg_procs_paths(struct sbx_host *host, uint32_t slot, char ret[SBX_CG__MAX][PATH_MAX]);
int sbx_cg_kill(struct sbx_host *host, uint32_t slot);
uint64_t sbx_cg_oom_count(struct sbx_host *host, uint32_t slot);
int sbx_cg_remove(struct sbx_host *host, uint32_t slot);

/* Formats the cgroup name of a slot into buf ("run-17"). */
void sbx_cg_name(uint32_t slot, char buf[static 24]);

#endif
