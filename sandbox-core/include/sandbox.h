/*
 * sandbox.h: the public interface of libsandbox, sandboxd's isolation engine.
 *
 * A sandbox is a process tree in new user, pid, mount, net, ipc, uts and cgroup
 * namespaces, pivot_root'ed into a root made of read-only binds of the host's
 * /usr, a synthetic /etc and size-limited tmpfs mounts, confined by a cgroup,
 * rlimits and a seccomp filter.  The caller (sandboxd's master, which runs as
 * root) prepares a struct sbx_host once, then spawns sandboxes from it.
 *
 * The library never logs and never exits the caller.  Functions that can fail
 * return >= 0 on success and a negative errno on failure; where a struct
 * sbx_err is offered, it names the step that failed.
 */
#ifndef SANDBOX_H
#define SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Inside every sandbox, user code runs as this uid/gid (named "user"). */
#define SBX_USER_UID 1000
#define SBX_USER_GID 1000
/* Each sandbox owns this many consecutive host uids (and gids), mapped to 0..N-1. */
#define SBX_UID_SPAN 65536u

/* The steps of building a sandbox; a failure report names one of them. */
enum sbx_step {
	SBX_STEP_NONE = 0,
	SBX_STEP_PIPE,
	SBX_STEP_CLONE,
	SBX_STEP_CGROUP,
	SBX_STEP_UIDMAP,
	SBX_STEP_SYNC,
	SBX_STEP_CREDS,
	SBX_STEP_CGROUPNS,
	SBX_STEP_MOUNT_PRIVATE,
	SBX_STEP_MOUNT_ROOT,
	SBX_STEP_MOUNT_USR,
	SBX_STEP_MOUNT_ETC,
	SBX_STEP_MOUNT_TMP,
	SBX_STEP_MOUNT_WORKSPACE,
	SBX_STEP_MOUNT_DEV,
	SBX_STEP_MOUNT_PROC,
	SBX_STEP_PROGRAM,
	SBX_STEP_CODE,
	SBX_STEP_PIVOT,
	SBX_STEP_HOSTNAME,
	SBX_STEP_LOOPBACK,
	SBX_STEP_FORK,
	SBX_STEP_STDIO,
	SBX_STEP_CWD,
	SBX_STEP_RLIMIT,
	SBX_STEP_CAPS,
	SBX_STEP_NO_NEW_PRIVS,
	SBX_STEP_SECCOMP,
	SBX_STEP_EXEC,
	SBX_STEP__MAX,
};

struct sbx_err {
	enum sbx_step step; /* the step that failed */
	int err;	    /* positive errno of that step */
};

/* Returns a short, static, human-readable name for a step ("mount /proc"). */
const char *sbx_step_name(enum sbx_step step);

/* Resource limits of one sandbox.  Zero means "use the built-in default". */
struct sbx_limits {
	uint64_t memory_bytes;	  /* cgroup memory limit; swap is never allowed */
	uint32_t pids;		  /* cgroup pids.max: processes plus threads */
	uint32_t cpu_millis;	  /* CPU bandwidth, in thousandths of one CPU */
	uint64_t tmp_bytes;	  /* size of /tmp; /dev/shm gets a quarter of it */
	uint64_t workspace_bytes; /* size of a tmpfs /workspace (one-shot runs) */
	uint64_t fsize_bytes;	  /* RLIMIT_FSIZE: the largest file one write may grow */
	uint32_t nofile;	  /* RLIMIT_NOFILE */
};

/* Fills in built-in defaults for every zero field of *lim. */
void sbx_limits_fill(struct sbx_limits *lim);

/* How the host side is laid out.  Strings are copied by sbx_host_new(). */
struct sbx_host_config {
	const char *agent_path;	 /* the sandbox-agent binary (static), on the host */
	const char *state_dir;	 /* sandboxd's state directory; must exist, root-owned, mode 0711 */
	const char *cgroup_root; /* NULL: "sandboxd-<hash of state_dir>" beside ours */
	uid_t uid_base;		 /* first host uid handed to sandboxes */
	uint32_t uid_slots;	 /* number of SBX_UID_SPAN ranges above uid_base */
};

struct sbx_host;

/*
 * Prepares everything a sandbox needs that does not change between sandboxes:
 * the cgroup parent (v2 or v1, created and emptied of leftovers from an earlier
 * run), the compiled seccomp program, the list of host /etc entries to expose
 * and the mount point of sandbox roots.  Must run as root.  On success *ret
 * owns the new host; free it with sbx_host_free().
 */
int sbx_host_new(const struct sbx_host_config *cfg, struct sbx_host **ret, struct sbx_err *reterr);

/* Removes the cgroup parent if it is empty and frees the host.  NULL is fine. */
void sbx_host_free(struct sbx_host *host);

/* Returns "v2" or "v1": which cgroup hierarchy the host uses. */
const char *sbx_host_cgroup_version(const struct sbx_host *host);

/* A sandbox to build. */
struct sbx_spec {
	const char *hostname; /* the sandbox's hostname (a DNS label) */
	/* NULL: a tmpfs /workspace that goes with the sandbox (one-shot runs).  Else
	 * this host directory, owned by the sandbox's uid 1000, is bound there. */
	const char *workspace_dir;
	/* -1: the sandbox runs one program, sent with sbx_exec().  >= 0: a persistent
	 * sandbox; its agent serves commands on this listening SOCK_SEQPACKET
	 * socket (see sandbox-exec.h) until killed. */
	int listen_fd;
	uint32_t slot; /* uid slot, < uid_slots, unique among live sandboxes */
	struct sbx_limits limits;
};

/* Bounds of what one program may be given. */
#define SBX_ARGS_MAX 256      /* argv entries, and envp entries, each */
#define SBX_STRINGS_MAX 60000 /* bytes of argv and envp strings together */

/* The program a sandbox runs. */
struct sbx_prog {
	const char *const *argv; /* argv[0] is an absolute path inside the sandbox */
	const char *const *envp; /* the whole environment of the program */
	int code_fd;		 /* >= 0: its contents become the file code_path */
	const char *code_path;	 /* "/tmp/NAME", with code_fd */
	int stdin_fd;		 /* -1: /dev/null */
	int stdout_fd;		 /* required */
	int stderr_fd;		 /* required */
};

/* A sandbox that has been spawned and not yet reaped. */
struct sbx_proc {
	pid_t pid;	   /* the sandbox's init, a child of the caller */
	int report_fd;	   /* read end of the child's report pipe */
	int ctl_fd;	   /* where the program is sent; -1 once sent */
	uint32_t slot;	   /* uid slot */
	uint64_t start_ns; /* CLOCK_MONOTONIC at sbx_exec() (at spawn until then) */
	bool killed;	   /* sbx_kill() was called */
	bool ready;	   /* a persistent sandbox's agent said it serves (sbx_ready()) */
	uint64_t oom_base; /* the cgroup's OOM-kill count at spawn */
};

/* The outcome of a sandboxed program: data, not an error. */
struct sbx_result {
	int exit_code;	      /* the program's exit status, or 128 + signal */
	int signal;	      /* the signal that ended the program, 0 if it exited */
	bool oom_killed;      /* the kernel's OOM killer ran in the sandbox's cgroup */
	bool killed;	      /* sandboxd killed the tree (timeout or shutdown) */
	bool ran;	      /* a program was started */
	uint64_t wall_us;     /* from sbx_exec() to reap */
	struct sbx_err setup; /* step != SBX_STEP_NONE: the sandbox never ran the program */
};

/*
 * Builds a sandbox and returns at once.  The sandbox sets itself up in the
 * background (namespaces, cgroup, root filesystem, network) and then waits
 * for its program, which sbx_exec() sends; a warm pool is sandboxes spawned
 * ahead of need.  The caller must later waitpid() ret->pid (for example on
 * SIGCHLD) and pass the status to sbx_reap().  The caller must not have
 * threads.
 */
int sbx_spawn(struct sbx_host *host, const struct sbx_spec *spec, struct sbx_proc *ret,
	      struct sbx_err *reterr);

/*
 * Sends the program to a spawned sandbox, once.  The sandbox copies the code
 * file in, then runs the program under the last containment steps.  The
 * caller keeps ownership of the fds in *prog.  Returns -E2BIG if argv or envp
 * pass the SBX_* bounds, -EPIPE if the sandbox is gone.
 */
int sbx_exec(struct sbx_host *host, struct sbx_proc *proc, const struct sbx_prog *prog);

/*
 * Sets the hostname of a persistent sandbox (its agent in serve mode), for
 * one built before its ID was known.  name is a DNS label.  0 or a negative
 * errno (-EPIPE if the agent is gone).
 */
int sbx_set_hostname(struct sbx_proc *proc, const char *name);

/*
 * True once a persistent sandbox is built and its agent serves: every mount is
 * in place, so its workspace directory may change name on the host.  Never
 * blocks.
 */
bool sbx_ready(struct sbx_proc *proc);

/* How many processes of the sandbox the kernel's OOM killer has ended since
 * it was spawned (its cgroup's oom_kill counter). */
uint64_t sbx_oom_kills(struct sbx_host *host, const struct sbx_proc *proc);

/* Kills every process of the sandbox (its cgroup, then its init).  Idempotent. */
int sbx_kill(struct sbx_host *host, struct sbx_proc *proc);

/*
 * Collects the result of a sandbox whose init the caller has waited for with
 * status wstatus, and makes sure nothing of it still runs.  Always fills *ret
 * and closes proc->report_fd.  The slot's cgroup is kept for the next sandbox
 * of the same slot and removed by sbx_host_free().
 */
void sbx_reap(struct sbx_host *host, struct sbx_proc *proc, int wstatus, struct sbx_result *ret);

/*
 * Runs prog in a new sandbox to completion, waiting at most timeout_ms (0: no
 * limit), and fills *ret.  A blocking convenience over sbx_spawn(),
 * sbx_exec() and sbx_reap() for tools and tests.
 */
int sbx_run(struct sbx_host *host, const struct sbx_spec *spec, const struct sbx_prog *prog,
	    uint32_t timeout_ms, struct sbx_result *ret, struct sbx_err *reterr);

#endif
