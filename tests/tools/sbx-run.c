/*
 * sbx-run: runs one command in a fresh sandbox, straight through
 * libsandbox, with the caller's stdout and stderr.  For debugging and for the
 * benchmarks that compare the engine alone with bubblewrap.
 *
 *   sbx-run [-t timeout_ms] [-s state_dir] [-n runs] -- /usr/bin/python3 -c 'print(1)'
 *
 * With -n, runs the command n times in one host and prints each run's wall
 * time in microseconds to stderr, one per line.
 *
 * With -P, builds one persistent sandbox (its agent in serve mode, /workspace
 * bound from STATE/workspace) and runs the command n times in it through
 * the agent's socket, as a FastCGI worker would.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <limits.h>
#include <unistd.h>

#include "sandbox-exec.h"
#include "sandbox.h"

static int
run_persistent(struct sbx_host *host, struct sbx_spec *spec, const char *state,
	       const char *const *argv, const char *const *envp, unsigned long runs,
	       uint32_t timeout, int out, int errfd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct sbx_proc proc;
	struct sbx_err err = { 0 };
	struct sbx_result res;
	char ws[PATH_MAX];
	int lfd, r = 0, st;

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/agent.sock", state);
	snprintf(ws, sizeof(ws), "%s/workspace", state);
	if (mkdir(ws, 0755) < 0 && errno != EEXIST)
		return -errno;
	if (chown(ws, 3000000000u + spec->slot * SBX_UID_SPAN + SBX_USER_UID,
		  3000000000u + spec->slot * SBX_UID_SPAN + SBX_USER_GID) < 0)
		return -errno;
	unlink(sa.sun_path);
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 64) < 0)
		return -errno;
	spec->listen_fd = lfd;
	spec->workspace_dir = ws;
	r = sbx_spawn(host, spec, &proc, &err);
	if (r < 0) {
		fprintf(stderr, "sbx-run: %s: %s\n", sbx_step_name(err.step), strerror(-r));
		return r;
	}
	for (unsigned long i = 0; i < runs && r == 0; i++) {
		struct sbx_exec_req req = { .argv = argv,
					    .envp = envp,
					    .timeout_ms = timeout,
					    .stdin_fd = -1,
					    .stdout_fd = out,
					    .stderr_fd = errfd };
		struct sbx_exec_result er;
		int conn = sbx_exec_connect(sa.sun_path);

		if (conn < 0) {
			r = conn;
			break;
		}
		r = sbx_exec_send(conn, &req);
		if (r == 0)
			r = sbx_exec_recv(conn, &er);
		close(conn);
		if (r == 0 && er.setup.step != SBX_STEP_NONE) {
			fprintf(stderr, "sbx-run: command failed at %s: %s\n",
				sbx_step_name(er.setup.step), strerror(er.setup.err));
			r = -EIO;
		} else if (r == 0 && runs > 1) {
			fprintf(stderr, "%llu\n", (unsigned long long)er.wall_us);
		} else if (r == 0) {
			r = er.exit_code;
		}
	}
	sbx_kill(host, &proc);
	waitpid(proc.pid, &st, __WALL);
	sbx_reap(host, &proc, st, &res);
	close(lfd);
	unlink(sa.sun_path);
	return r;
}

int
main(int argc, char **argv)
{
	const char *state = "/tmp/sbx-run-state";
	static const char *const envp[] = { "PATH=/usr/local/bin:/usr/bin:/bin", "HOME=/workspace",
					    "LANG=C.UTF-8", NULL };
	struct sbx_host_config cfg = { .uid_base = 3000000000u, .uid_slots = 16 };
	struct sbx_host *host;
	struct sbx_spec spec = { 0 };
	struct sbx_prog prog = { 0 };
	struct sbx_result res;
	struct sbx_err err = { 0 };
	unsigned long timeout = 0, runs = 1;
	bool persistent = false;
	int opt, r, out, errfd;

	while ((opt = getopt(argc, argv, "t:s:n:P")) != -1) {
		if (opt == 't')
			timeout = strtoul(optarg, NULL, 10);
		else if (opt == 'n')
			runs = strtoul(optarg, NULL, 10);
		else if (opt == 'P')
			persistent = true;
		else if (opt == 's')
			state = optarg;
		else
			return 2;
	}
	if (optind >= argc) {
		fprintf(stderr, "usage: sbx-run [-t ms] [-s state_dir] -- /abs/program args...\n");
		return 2;
	}
	if (mkdir(state, 0711) < 0 && errno != EEXIST) {
		perror(state);
		return 1;
	}
	cfg.state_dir = state;
	cfg.agent_path = getenv("SBX_AGENT") ? getenv("SBX_AGENT") : SBX_AGENT_BUILD_PATH;
	r = sbx_host_new(&cfg, &host, &err);
	if (r < 0) {
		fprintf(stderr, "sbx-run: host: %s: %s\n", sbx_step_name(err.step), strerror(-r));
		return 1;
	}
	out = fcntl(1, F_DUPFD_CLOEXEC, 3);
	errfd = fcntl(2, F_DUPFD_CLOEXEC, 3);
	prog.argv = (const char *const *)&argv[optind];
	prog.envp = envp;
	prog.code_fd = -1;
	prog.stdin_fd = -1;
	prog.stdout_fd = out;
	prog.stderr_fd = errfd;
	spec.hostname = "sbx-run";
	spec.listen_fd = -1;
	spec.slot = (uint32_t)getpid() % cfg.uid_slots;
	if (persistent) {
		r = run_persistent(host, &spec, state, prog.argv, envp, runs, (uint32_t)timeout,
				   out, errfd);
		sbx_host_free(host);
		if (r < 0)
			fprintf(stderr, "sbx-run: %s\n", strerror(-r));
		return r < 0 ? 1 : r;
	}
	for (unsigned long i = 0; i < runs; i++) {
		r = sbx_run(host, &spec, &prog, (uint32_t)timeout, &res, &err);
		if (r < 0 || res.setup.step != SBX_STEP_NONE)
			break;
		if (runs > 1)
			fprintf(stderr, "%llu\n", (unsigned long long)res.wall_us);
	}
	sbx_host_free(host);
	if (r < 0) {
		fprintf(stderr, "sbx-run: %s: %s\n", sbx_step_name(err.step), strerror(-r));
		return 1;
	}
	if (res.setup.step != SBX_STEP_NONE) {
		fprintf(stderr, "sbx-run: sandbox setup failed at %s: %s\n",
			sbx_step_name(res.setup.step), strerror(res.setup.err));
		return 125;
	}
	if (getenv("SBX_RUN_VERBOSE"))
		fprintf(stderr, "exit=%d signal=%d oom=%d killed=%d wall_us=%llu\n", res.exit_code,
			res.signal, res.oom_killed, res.killed, (unsigned long long)res.wall_us);
	return res.exit_code;
}
