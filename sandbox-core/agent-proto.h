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
 *          at fd 6 and run one command per connection (struct exec_hdr),
 *          each in its own pid namespace, until killed.
 */
#ifndef SANDBOX_AGENT_PROTO_H
#define SANDBOX_AGENT_PROTO_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

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

/* A command for a persistent sandbox, on a connection to its agent: this
 * header, then argc + envc NUL-terminated strings, with stdout, stderr and
 * [stdin] as fds. */
struct exec_hdr {
	uint32_t magic;		/* EXEC_MAGIC */
	uint32_t flags;		/* GO_HAS_STDIN */
	uint32_t argc;		/* 1..SBX_ARGS_MAX */
	uint32_t envc;		/* 0..SBX_ARGS_MAX */
	uint32_t timeout_ms;	/* 0: none */
	char cwd[EXEC_CWD_MAX]; /* absolute, NUL-terminated */
};

#define EXEC_MAX (sizeof(struct exec_hdr) + SBX_STRINGS_MAX)

/* The agent's answer, once the command's whole process tree is gone. */
struct exec_done {
	uint32_t magic;	     /* EXEC_MAGIC */
	int32_t step;	     /* enum sbx_step that failed before the program ran, or 0 */
	int32_t err;	     /* its errno */
	int32_t have_status; /* wstatus is the program's */
	int32_t wstatus;
	uint32_t timed_out; /* the agent killed it at timeout_ms */
	uint64_t wall_us;   /* from the request to the end of the tree */
};

/* A code file goes straight into /tmp under a plain name. */
static inline bool
agent_valid_code_path(const char *p)
{
	return strncmp(p, "/tmp/", 5) == 0 && p[5] && !strchr(p + 5, '/') && strcmp(p + 5, ".") &&
	       strcmp(p + 5, "..");
}

#endif
