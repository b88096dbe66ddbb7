/*
 * sandbox-exec.h: running commands in a persistent sandbox, by talking to
 * its agent directly (a FastCGI worker does this, not the master).
 *
 * A persistent sandbox's agent listens on a unix socket (SOCK_SEQPACKET)
 * that the master bound on the host.  One connection carries one command:
 * the request, with the fds of the command's stdio, then one answer when
 * the command's whole process tree has ended.  Closing the connection early
 * kills the command.
 */
#ifndef SANDBOX_EXEC_H
#define SANDBOX_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox.h"

struct sbx_exec_req {
	const char *const *argv; /* argv[0] absolute, inside the sandbox */
	const char *const *envp; /* the whole environment */
	const char *cwd;	 /* absolute, < 256 bytes; NULL: /workspace */
	uint32_t timeout_ms;	 /* 0: no limit */
	int stdin_fd;		 /* -1: /dev/null */
	int stdout_fd;		 /* required */
	int stderr_fd;		 /* required */
};

struct sbx_exec_result {
	int exit_code;	      /* the exit status, or 128 + signal */
	int signal;	      /* the signal that ended it, 0 if it exited */
	bool timed_out;	      /* killed, with its whole tree, at timeout_ms */
	uint64_t wall_us;     /* as the agent measured it */
	struct sbx_err setup; /* step != SBX_STEP_NONE: the command never ran */
};

/* Connects to an agent's socket.  Returns the fd (CLOEXEC) or a negative errno. */
int sbx_exec_connect(const char *socket_path);

/*
 * Sends one command on conn.  The caller keeps its fds.  Returns 0, -E2BIG
 * when argv or envp pass the SBX_* bounds, -EINVAL for a bad cwd, or the
 * send's negative errno.
 */
int sbx_exec_send(int conn, const struct sbx_exec_req *req);

/*
 * Reads the answer to the command sent on conn.  Returns 0, -EPIPE if the
 * agent went away without answering, -EBADMSG for a malformed answer.
 */
int sbx_exec_recv(int conn, struct sbx_exec_result *ret);

#endif
