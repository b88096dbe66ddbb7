/*
 * agent.h: what the parts of sandbox-agent share.  Private to agent/.
 */
#ifndef SANDBOX_AGENT_H
#define SANDBOX_AGENT_H

#include <stdbool.h>
#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "../agent-proto.h"

#define PROGRAM_EXTRA_MAX 2

/* A program to run: argv and envp point into a message buffer. */
struct program {
	const char *argv[SBX_ARGS_MAX + 5];
	const char *envp[2 * SBX_ARGS_MAX + 1];
	char code_path[sizeof(((struct go_hdr *)0)->code_path)];
	char cwd[EXEC_CWD_MAX];
	bool cwd_fallback; /* a session's cwd that may be gone: then /workspace */
	const char *path;  /* what to execute, when not argv[0] */
	int stdin_fd, stdout_fd, stderr_fd, code_fd;
	/* Fds the program gets at other numbers than 0-2: extra_fd[i] becomes
	 * extra_to[i] (a session's state fd, a driver's protocol pipes).  No
	 * extra_fd may sit where another extra_to (or report_fd) goes. */
	int extra_fd[PROGRAM_EXTRA_MAX], extra_to[PROGRAM_EXTRA_MAX];
	int n_extra;
	bool forward_sigint; /* its init passes SIGINT on (and keeps CAP_KILL for it) */
};

/* Where fail() reports: the sandbox's report pipe, or a command's own pipe. */
extern int report_fd;

/* Writes a report of the failed step (with errno) to report_fd and exits. */
_Noreturn void fail(enum sbx_step step);

/*
 * The last steps before the sandbox's user runs anything: rlimits, no
 * capabilities, uid and gid 1000, no_new_privs, the seccomp filter.
 * Returns SBX_STEP_NONE, or the step that failed (errno set).
 */
enum sbx_step become_user(void);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

/* Mounts a command's own /proc (it is pid 1 of a new pid namespace). */
int command_proc(void);

/*
 * Forks the program and stays as its init: reaps everything its pid
 * namespace hands it until the program ends, writes the program's status to
 * report_fd and exits (and the kernel kills what is left in the namespace).
 */
_Noreturn void run_as_init(struct program *p);

/* ---- context.c ---- */

/* Takes a connection whose request is about contexts (CTX_MAGIC): it is
 * context.c's from now on, answered now or later. */
void ctx_accept(int conn);

/* Adds what the contexts wait for to pfd (room for CTX_POLL_MAX) and lowers
 * *next (CLOCK_MONOTONIC ns) to their next deadline.  The number added. */
#define CTX_POLL_MAX 160
int ctx_fill(struct pollfd *pfd, uint64_t now, uint64_t *next);

/* Acts on the poll results of what ctx_fill() added, and on deadlines. */
void ctx_handle(const struct pollfd *pfd, int n, uint64_t now);

/* A child of the agent was reaped: if it was a context's init, its pid is
 * never signalled again. */
void ctx_reaped(pid_t pid);

/* ---- session.c ---- */

#define SESSION_ENV_MAX 65536 /* bytes of a session's environment */

/* Finds the session called name.  Its index, or -1. */
int session_find(const char *name);

/* Finds or creates the session called name.  Its index, or -1 (EUSERS). */
int session_get(const char *name);

/* Creates a session with a starting cwd ("" for /workspace) and environment.
 * Its index, or -1 with errno EEXIST, EUSERS, EINVAL or E2BIG. */
int session_create(const char *name, const char *cwd, const char *const *env, uint32_t envc);

/* Forgets a session.  The command it runs is the caller's to kill. */
void session_delete(int idx);

/* A number that changes each time the slot idx is taken: a command that
 * outlives its session must not touch the next one in the slot. */
uint32_t session_generation(int idx);

/* The index of the command running in the session, or -1. */
int session_running(int idx);
void session_set_running(int idx, int cmd);

/* The session's cwd, "" when it has none yet. */
const char *session_cwd(int idx);

/*
 * Readies a command in the session: takes base (the environment the session
 * starts with, if it has none yet), and fills envp (room for max pointers,
 * NULL-terminated) with the session's environment overridden by ov
 * (NAME=value sets, a bare NAME unsets), which it keeps to undo when the
 * command ends.  A command run in a cwd of its own (own_cwd) leaves the
 * session's cwd as it was.  Without hold, only envp is filled: a command
 * that starts from the session's state but leaves it alone.  0, or -1
 * (E2BIG, EINVAL).
 */
int session_begin(int idx, const char *const *base, uint32_t basec, const char *const *ov,
		  uint32_t ovc, bool own_cwd, bool hold, const char **envp, uint32_t max);

/*
 * Takes the state the session's shell left in fd (its cwd and exported
 * environment, see session_wrapper), checked as untrusted input; the
 * per-command overrides are undone.  A missing or malformed state (the
 * command was killed, or replaced the shell) leaves the session as it was.
 */
void session_end(int idx, int fd);

/* Applies NAME=value (set) and NAME (unset) strings to every session.
 * 0, or -1 (EINVAL) when one of them is malformed. */
int session_setenv(const char *const *vars, uint32_t n);

/* Fills info with up to max sessions.  Their number. */
uint32_t session_list(struct sess_info *info, uint32_t max);

/* The bash script that runs a session's command ($1) in the shell itself,
 * then writes the shell's cwd and exported environment to AGENT_STATE_FD. */
extern const char session_wrapper[];

/* ---- files.c ---- */

/* Does one file operation as the sandbox's user (in a child of the agent,
 * after become_user()), writes a struct file_done to report_fd, and exits. */
_Noreturn void files_run(const struct file_req *r, int fd);

#endif
