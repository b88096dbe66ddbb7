/*
 * agent-proto.h: what libsandbox and sandbox-agent say to each other.
 * Private to sandbox-core (contain.c and agent/agent.c).
 *
 * contain() builds the sandbox, then execs sandbox-agent as the sandbox's
 * init (pid 1), so that nothing of the parent's memory (sandboxd's
 * configuration, its API keys) stays inside the sandbox.  The agent finds:
 *   fd 3  its end of the program socketpair (SOCK_SEQPACKET)
 *   fd 4  the write end of the report pipe
 *   fd 5  a sealed memfd with the seccomp program (struct sock_filter[])
 * and argv: sandbox-agent MODE NOFILE FSIZE_BYTES PIDS, where MODE is
 *   once   run the one program that arrives on fd 3, then exit with it;
 *   serve  a persistent sandbox: accept connections on the listening socket
 *          at fd 6, one request per connection (a command, struct
 *          exec_hdr, each in its own pid namespace; a question about
 *          sessions, struct sess_req; a file operation, struct file_req),
 *          until killed.
 */
#ifndef SANDBOX_AGENT_PROTO_H
#define SANDBOX_AGENT_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sandbox-exec.h"
#include "sandbox.h"

#define AGENT_FD_CTL 3
#define AGENT_FD_REPORT 4
#define AGENT_FD_SECCOMP 5
#define AGENT_FD_LISTEN 6 /* serve mode only */

#define REPORT_MAGIC 0x53425831u /* "SBX1" */

/* What the sandbox's init tells the parent, once: a failed step, or the
 * program's wait status. */
struct report {
	uint32_t magic;
	int32_t step;	     /* enum sbx_step; SBX_STEP_NONE when the program ran */
	int32_t err;	     /* errno of the failed step */
	int32_t have_status; /* wstatus is the program's */
	int32_t wstatus;
};

#define GO_MAGIC 0x53425847u /* "SBXG" */
#define GO_HAS_STDIN 1u
#define GO_HAS_CODE 2u

/* The program, as sbx_exec() sends it: this header, then argc + envc
 * NUL-terminated strings, with stdout, stderr, [stdin], [code] as fds. */
struct go_hdr {
	uint32_t magic;
	uint32_t flags;	    /* GO_HAS_* */
	uint32_t argc;	    /* 1..SBX_ARGS_MAX */
	uint32_t envc;	    /* 0..SBX_ARGS_MAX */
	char code_path[64]; /* "/tmp/NAME", NUL-terminated, when GO_HAS_CODE */
};

#define GO_MAX (sizeof(struct go_hdr) + SBX_STRINGS_MAX)

#define HOST_MAGIC 0x53425848u /* "SBXH" */
#define AGENT_READY 'R'	       /* serve mode, to the parent on fd 3: built and serving */

/* Serve mode, from the parent on fd 3: the sandbox's hostname, for a sandbox
 * built before its ID was known. */
struct host_msg {
	uint32_t magic; /* HOST_MAGIC */
	char name[64];	/* NUL-terminated DNS label */
};

#define EXEC_MAGIC 0x53425845u /* "SBXE" */
#define EXEC_CWD_MAX 256
#define EXEC_SESSION 4u	 /* a shell command in a session (see below) */
#define EXEC_DETACHED 8u /* with EXEC_SESSION: from the session's state, apart */

#define AGENT_SESSION_MAX 64  /* bytes of a session's name, with its NUL */
#define AGENT_SESSIONS_MAX 32 /* sessions per sandbox */
#define AGENT_STATE_FD 990    /* where a session's shell leaves its state */

/*
 * A command for a persistent sandbox, on a connection to its agent: this
 * header, then argc + envc + ovc NUL-terminated strings, with stdout, stderr
 * and [stdin] as fds.
 *
 * Without EXEC_SESSION, argv and the environment are the program's own (ovc
 * is 0).  With it, argc is 1 and argv[0] is a shell command run in session
 * `session` (created on first use) by bash, so that cd and export persist:
 * the env strings are the environment of a session that has none yet, the
 * ovc NAME=value strings override it for this command only (a bare NAME
 * unsets), and an empty cwd means the session's own.  With EXEC_DETACHED the
 * command starts from the session's state at once, without waiting for the
 * session or changing it (a stream).
 */
struct exec_hdr {
	uint32_t magic;		/* EXEC_MAGIC */
	uint32_t flags;		/* GO_HAS_STDIN, EXEC_SESSION */
	uint32_t argc;		/* 1..SBX_ARGS_MAX */
	uint32_t envc;		/* 0..SBX_ARGS_MAX */
	uint32_t timeout_ms;	/* 0: none */
	uint32_t ovc;		/* 0..SBX_ARGS_MAX */
	char cwd[EXEC_CWD_MAX]; /* absolute, NUL-terminated; "" with EXEC_SESSION */
	char session[AGENT_SESSION_MAX];
};

#define EXEC_MAX (sizeof(struct exec_hdr) + SBX_STRINGS_MAX)

/* The agent's answer, once the command's whole process tree is gone. */
struct exec_done {
	uint32_t magic;	     /* EXEC_MAGIC */
	int32_t step;	     /* enum sbx_step that failed before the program ran, or 0 */
	int32_t err;	     /* its errno (EUSERS: no room for another session) */
	int32_t have_status; /* wstatus is the program's */
	int32_t wstatus;
	uint32_t timed_out; /* the agent killed it at timeout_ms */
	uint64_t wall_us;   /* from the request to the end of the tree */
};

/* ---- sessions ---- */

#define SESS_MAGIC 0x53425853u /* "SBXS" */

enum sess_op {
	SESS_CREATE = 1, /* name, cwd, envc NAME=value strings: the session's start */
	SESS_LIST,
	SESS_DELETE, /* kills the command it runs */
	SESS_SETENV, /* envc strings, NAME=value to set or NAME to unset, in every session */
};

/* A request about sessions, answered at once: this header, then envc strings. */
struct sess_req {
	uint32_t magic; /* SESS_MAGIC */
	uint32_t op;	/* enum sess_op */
	uint32_t envc;	/* 0..SBX_ARGS_MAX */
	char name[AGENT_SESSION_MAX];
	char cwd[EXEC_CWD_MAX];
};

struct sess_info {
	char name[AGENT_SESSION_MAX];
	char cwd[EXEC_CWD_MAX]; /* "" until its first command or a cwd at creation */
	uint32_t busy;		/* a command is running in it */
};

/* The answer: this, then count struct sess_info (SESS_LIST). */
struct sess_reply {
	uint32_t magic; /* SESS_MAGIC */
	int32_t err;	/* 0, EEXIST, ENOENT, EUSERS, EINVAL */
	uint32_t count;
};

/* ---- files (the ops, flags and records are in sandbox-exec.h) ---- */

#define FILE_MAGIC 0x53425846u /* "SBXF" */

/*
 * A file operation, done by a child of the agent with the credentials and
 * seccomp filter of the sandbox's user, in the sandbox's own filesystem: so
 * that paths resolve inside the sandbox only, whatever symlinks its code
 * planted.  This header, with one fd for READ, WRITE and LIST.
 */
struct file_req {
	uint32_t magic; /* FILE_MAGIC */
	uint32_t op;	/* enum sbx_file_op */
	uint32_t flags; /* SBX_FILE_RECURSIVE, SBX_FILE_HIDDEN */
	uint32_t pad;
	uint64_t size;		       /* WRITE: the bytes that will come; READ: the most to send */
	char path[SBX_FILE_PATH_MAX];  /* absolute, NUL-terminated */
	char path2[SBX_FILE_PATH_MAX]; /* RENAME's target */
};

/* The answer, once the operation's child has ended. */
struct file_done {
	uint32_t magic; /* FILE_MAGIC */
	int32_t err;	/* errno, or 0 */
	struct sbx_file_info info;
	uint64_t count; /* READ: bytes sent; WRITE: bytes written; LIST: entries sent */
};

/* ---- code-interpreter contexts ---- */

#define CTX_MAGIC 0x53425843u /* "SBXC" */
#define CTX_LANGUAGE_MAX 16

enum ctx_op {
	CTX_CREATE = 1, /* id, language, cwd, argc + envc strings and the driver's
			 * source as a sealed memfd (one NUL-terminated string,
			 * the driver's last argument): answered once the driver
			 * says it is ready, or failed */
	CTX_EXEC,	/* id, timeout_ms, and the start of the cell's request line:
			 * answered with the driver's pipes once the context is
			 * free (see below) */
	CTX_DELETE,	/* id: kills the driver and what it runs */
	CTX_LIST,
};

/* A request about contexts: this header, then argc + envc strings (CREATE)
 * or the cell's request line (EXEC: when the context is free at once, the
 * agent writes it to the driver before it answers, so that the driver starts
 * while the answer travels; written says how much). */
struct ctx_req {
	uint32_t magic; /* CTX_MAGIC */
	uint32_t op;	/* enum ctx_op */
	uint32_t argc;	/* CREATE: 1..8, the driver's argv before its source */
	uint32_t envc;	/* CREATE: 0..SBX_ARGS_MAX */
	uint32_t timeout_ms; /* CREATE: ready by then; EXEC: the cell's, 0 none */
	uint32_t idle_s;     /* CREATE: stopped after this long unused, 0 never */
	char id[SBX_CONTEXT_ID_MAX + 1];
	char language[CTX_LANGUAGE_MAX];
	char cwd[EXEC_CWD_MAX]; /* CREATE: absolute */
};

#define CTX_DETAIL_MAX SBX_CONTEXT_DETAIL_MAX

/*
 * The answer.  For EXEC with err 0 it carries four fds, the context's until
 * the cell ends: the read ends of the driver's stdout, stderr and events
 * pipes and the write end of its requests pipe; the worker writes the
 * request, reads until the driver's "end" event, then sends CTX_DONE (one
 * byte) and closes.  A hang-up without CTX_DONE interrupts the cell.  While
 * the cell runs, the agent may send struct ctx_note on the connection.
 * For LIST, count struct sbx_context_info follow.
 */
struct ctx_reply {
	uint32_t magic; /* CTX_MAGIC */
	int32_t err;	/* 0, EEXIST, ENOENT, EUSERS, EINVAL, ETIMEDOUT, ENOEXEC, EBADMSG */
	uint32_t count;
	uint32_t restarted; /* EXEC: enum sbx_context_down, why the driver was started
			     * anew since the context was last used, or 0 */
	int32_t wstatus;    /* with SBX_CONTEXT_DIED: how the old driver ended */
	uint32_t idle_s;    /* with SBX_CONTEXT_REAPED: after how long */
	uint32_t written;   /* EXEC: bytes of the request line the agent wrote */
	uint32_t pad;
	char detail[CTX_DETAIL_MAX]; /* ENOEXEC: what the driver said, or the step that failed */
};

#define CTX_DONE 'D'

struct ctx_note {
	uint32_t magic; /* CTX_MAGIC */
	uint32_t kind;	/* enum sbx_cell_note_kind */
	int32_t wstatus;
	uint32_t pad;
};

/*
 * Closes every fd from 3 up but the n in keep (entries below 3, -1 for
 * none, are ignored), with one close_range() per gap: what contain() keeps
 * for the agent, and what the agent keeps for a command's init.
 */
static inline void
agent_close_except(int *keep, int n)
{
	unsigned lo = 3;

	/* Insertion sort: a handful of entries. */
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];

			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	for (int i = 0; i < n; i++) {
		if (keep[i] < (int)lo)
			continue;
		if ((unsigned)keep[i] > lo)
			syscall(SYS_close_range, lo, (unsigned)keep[i] - 1, 0);
		lo = (unsigned)keep[i] + 1;
	}
	syscall(SYS_close_range, lo, ~0u, 0);
}

/* A code file goes straight into /tmp under a plain name. */
static inline bool
agent_valid_code_path(const char *p)
{
	return strncmp(p, "/tmp/", 5) == 0 && p[5] && !strchr(p + 5, '/') && strcmp(p + 5, ".") &&
	       strcmp(p + 5, "..");
}

#endif
