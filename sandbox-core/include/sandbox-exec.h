/*
 * sandbox-exec.h: running commands in a persistent sandbox, by talking to
 * its agent directly (a FastCGI worker does this, not the master).
 *
 * A persistent sandbox's agent listens on a unix socket (SOCK_SEQPACKET)
 * that the master bound on the host.  One connection carries one request
 * and its answer: a command (with the fds of its stdio; the answer comes
 * when its whole process tree has ended), a question about sessions, or a
 * file operation.  Closing the connection early kills what it started.
 */
#ifndef SANDBOX_EXEC_H
#define SANDBOX_EXEC_H

#include <stdbool.h>
#include <stdint.h>

#include "sandbox.h"

#define SBX_SESSION_NAME_MAX 63 /* bytes of a session's name */
#define SBX_SESSIONS_MAX 32	/* sessions per sandbox */

struct sbx_exec_req {
	/* Without a session: argv[0] absolute, inside the sandbox, and envp the
	 * whole environment.  In a session: argv[0] a shell command (argv[1]
	 * NULL), run by bash in the session's cwd and environment, so that cd and
	 * export persist; envp is the environment a new session starts with, and
	 * overlay adds to it for this command only. */
	const char *const *argv;
	const char *const *envp;
	const char *const *overlay; /* NAME=value; NULL: none */
	const char *session;	    /* NULL: none; else 1..SBX_SESSION_NAME_MAX bytes */
	bool detached;		    /* from the session's state, neither waiting for
				     * the session nor changing it */
	const char *cwd;	    /* absolute, < 256 bytes; NULL: /workspace, or the session's */
	uint32_t timeout_ms;	    /* 0: no limit */
	int stdin_fd;		    /* -1: /dev/null */
	int stdout_fd;		    /* required */
	int stderr_fd;		    /* required */
};

struct sbx_exec_result {
	int exit_code;	      /* the exit status, or 128 + signal */
	int signal;	      /* the signal that ended it, 0 if it exited */
	bool timed_out;	      /* killed, with its whole tree, at timeout_ms */
	uint64_t wall_us;     /* as the agent measured it */
	struct sbx_err setup; /* step != SBX_STEP_NONE: the command never ran
			       * (SBX_STEP_PROGRAM with EUSERS: no room for
			       * its session; ESRCH: its session was deleted
			       * while it waited) */
};

/* Connects to an agent's socket.  Returns the fd (CLOEXEC, blocking) or a
 * negative errno (-EAGAIN when the agent's backlog is full). */
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

/* ---- sessions ---- */

enum sbx_session_op {
	SBX_SESSION_CREATE = 1, /* name, cwd (NULL: /workspace), env: its start */
	SBX_SESSION_LIST,	/* into ret, up to max */
	SBX_SESSION_DELETE,	/* name; kills the command it runs */
	SBX_SESSION_SETENV,	/* env: NAME=value sets, NAME unsets, in every session */
};

struct sbx_session {
	char name[SBX_SESSION_NAME_MAX + 1];
	char cwd[256]; /* "" while it has none of its own (/workspace) */
	bool busy;     /* a command runs in it */
};

/*
 * One request about sessions on a fresh connection (which it closes).
 * Returns 0 (and, for LIST, the number of sessions in *ret_count), or
 * -EEXIST, -ENOENT, -EUSERS (no room), -EINVAL, -E2BIG, or a transport
 * error (-EPIPE, -EBADMSG).
 */
int sbx_session(int conn, enum sbx_session_op op, const char *name, const char *cwd,
		const char *const *env, struct sbx_session *ret, unsigned max, unsigned *ret_count);

/* ---- files ---- */

#define SBX_FILE_PATH_MAX 4096 /* bytes of a path, with its NUL */

enum sbx_file_op {
	SBX_FILE_STAT = 1, /* lstat(): the answer's info */
	SBX_FILE_READ,	   /* to fd: struct sbx_file_meta, then the bytes when err is 0 */
	SBX_FILE_WRITE,	   /* size bytes from fd replace the file, atomically */
	SBX_FILE_MKDIR,
	SBX_FILE_DELETE,
	SBX_FILE_RENAME, /* path to path2 */
	SBX_FILE_LIST,	 /* to fd: struct sbx_file_info and namelen bytes, per entry */
};

#define SBX_FILE_RECURSIVE 1u /* mkdir -p, rm -r, a listing of subdirectories */
#define SBX_FILE_HIDDEN 2u    /* a listing with dot entries */

enum sbx_file_type { SBX_FILE_NONE, SBX_FILE_REG, SBX_FILE_DIR, SBX_FILE_LNK, SBX_FILE_OTHER };

#define SBX_FILE_PERM_R 4u /* for the sandbox's user */
#define SBX_FILE_PERM_W 2u
#define SBX_FILE_PERM_X 1u

/* A file, as the agent describes it (also a record on the wire). */
struct sbx_file_info {
	uint32_t type;	  /* enum sbx_file_type */
	uint32_t mode;	  /* st_mode & 07777 */
	uint32_t perms;	  /* SBX_FILE_PERM_* */
	uint32_t namelen; /* LIST: bytes of the name (relative to the listed path) that follow */
	uint64_t size;
	int64_t mtime_ms;
};

/* READ: what comes first on the fd. */
struct sbx_file_meta {
	uint32_t magic;
	int32_t err; /* errno: nothing follows */
	struct sbx_file_info info;
};

struct sbx_file_req {
	enum sbx_file_op op;
	uint32_t flags;	   /* SBX_FILE_RECURSIVE, SBX_FILE_HIDDEN */
	const char *path;  /* absolute, < SBX_FILE_PATH_MAX bytes */
	const char *path2; /* RENAME */
	uint64_t size;	   /* WRITE: the bytes fd will carry; READ: the most to send */
	int fd;		   /* READ, LIST: where to write; WRITE: where to read; else -1 */
};

struct sbx_file_result {
	int err; /* errno of the operation, or 0 */
	struct sbx_file_info info;
	uint64_t count; /* READ: bytes sent; WRITE: written; LIST: entries */
};

/* Sends a file operation on conn (the caller keeps fd).  0 or a negative errno. */
int sbx_file_send(int conn, const struct sbx_file_req *req);

/* Reads its answer.  0, -EPIPE if the agent went away, -EBADMSG. */
int sbx_file_recv(int conn, struct sbx_file_result *ret);

/* Checks the meta record a READ sends first.  0, or -EBADMSG. */
int sbx_file_meta_check(const struct sbx_file_meta *m);

/* ---- code-interpreter contexts ---- */

#define SBX_CONTEXT_ID_MAX 63	   /* bytes of a context's ID */
#define SBX_CONTEXTS_MAX 16	   /* contexts per sandbox */
#define SBX_CONTEXT_DETAIL_MAX 512 /* bytes of what went wrong, with the NUL */

/* A context: one long-lived driver process that runs cells, started by the
 * agent under an init of its own, as a command is. */
struct sbx_context_spec {
	const char *id;		   /* 1..SBX_CONTEXT_ID_MAX of [A-Za-z0-9._-], not first . or - */
	const char *language;	   /* a name, kept for listings (< 16 bytes) */
	const char *cwd;	   /* absolute; NULL: /workspace */
	const char *const *argv;   /* the driver's argv, argv[0] absolute, before its source */
	const char *const *envp;   /* the driver's environment */
	int source_fd;		   /* a sealed memfd: the source, NUL-terminated */
	uint32_t start_timeout_ms; /* ready by then, or killed */
	uint32_t idle_s;	   /* stopped after this long unused; 0: never */
};

/* Why a context's driver was started anew (it keeps its ID; state is lost). */
enum sbx_context_down {
	SBX_CONTEXT_UP = 0,
	SBX_CONTEXT_REAPED,    /* stopped after idle_s unused */
	SBX_CONTEXT_DIED,      /* its driver ended on its own (wstatus) */
	SBX_CONTEXT_TIMED_OUT, /* killed: a cell ran past its timeout and the interrupt */
	SBX_CONTEXT_CLOSED,    /* killed: it had closed its stdout or stderr */
};

enum sbx_context_state {
	SBX_CONTEXT_STARTING = 1,
	SBX_CONTEXT_IDLE,
	SBX_CONTEXT_BUSY,    /* a cell runs */
	SBX_CONTEXT_STOPPED, /* no driver: started again at its next cell */
};

struct sbx_context_info {
	char id[SBX_CONTEXT_ID_MAX + 1];
	char language[16];
	char cwd[256];
	uint32_t state; /* enum sbx_context_state */
	uint32_t executions;
	int64_t created_ms; /* CLOCK_REALTIME */
	int64_t last_used_ms;
};

/*
 * Creates a context on a fresh connection (which it closes) and waits until
 * its driver is ready.  0, -EEXIST, -EUSERS (no room), -EINVAL, -E2BIG,
 * -ETIMEDOUT (not ready in time), -ENOTDIR (it cannot run in cwd), -ENOEXEC
 * (the driver failed to start), or a transport error; detail says why.
 */
int sbx_context_create(int conn, const struct sbx_context_spec *s, char *detail,
		       size_t detail_size);

/* Deletes context id (killing the cell it runs).  0, -ENOENT, or a transport error. */
int sbx_context_delete(int conn, const char *id);

/* Lists up to max contexts into ret.  0 with *ret_count, or a negative errno. */
int sbx_context_list(int conn, struct sbx_context_info *ret, unsigned max, unsigned *ret_count);

/*
 * A cell: sbx_cell_send() asks for context id; the answer comes once the
 * context is free (its previous cell ended, its driver started again), read
 * by sbx_cell_recv() when conn is readable.  The cell then owns the
 * driver's pipes: it writes one request line to requests (what the agent
 * has not written of it), reads stdout,
 * stderr and events (all non-blocking) until the driver's "end" event, and
 * calls sbx_cell_done().  Closing conn without it interrupts the cell.
 * Meanwhile the agent may say things on conn (sbx_cell_note()).
 */
struct sbx_cell {
	int out, err, events, requests;
	uint32_t restarted; /* enum sbx_context_down: since its last cell */
	int wstatus;	    /* SBX_CONTEXT_DIED: how the old driver ended */
	uint32_t idle_s;    /* SBX_CONTEXT_REAPED: after how long */
	uint32_t written;   /* bytes of the request the agent wrote already */
};

/* With the cell's request line (len bytes; more than SBX_CELL_INLINE_MAX
 * are not sent): the agent writes it when the context is free at once. */
#define SBX_CELL_INLINE_MAX 49152
int sbx_cell_send(int conn, const char *id, uint32_t timeout_ms, const void *request, size_t len);

/* 0 (the four fds are the caller's to close), -ENOENT, -ECANCELED (the
 * context was deleted while the cell waited), -ENOEXEC (the driver could not
 * be started again: detail), -EAGAIN (too many calls), -EPIPE, -EBADMSG. */
int sbx_cell_recv(int conn, struct sbx_cell *ret, char *detail, size_t detail_size);

enum sbx_cell_note_kind {
	SBX_CELL_INTERRUPTED = 1, /* the timeout passed: SIGINT sent to the driver */
	SBX_CELL_DIED,		  /* the driver ended (wstatus); the context restarts */
	SBX_CELL_KILLED,	  /* killed after the interrupt did not end the cell */
	SBX_CELL_DELETED,	  /* the context was deleted */
};

/* Reads one note (conn readable).  0 with *kind and *wstatus, -EPIPE when
 * the agent hung up, -EBADMSG. */
int sbx_cell_note(int conn, uint32_t *kind, int *wstatus);

/* Says the cell is over (its "end" event was read).  0 or a negative errno. */
int sbx_cell_done(int conn);

#endif
