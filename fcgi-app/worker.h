/*
 * worker.h: a FastCGI worker: accepts requests from nginx on the shared
 * listen socket, one at a time, and asks the master for privileged work.
 */
#ifndef SANDBOXD_WORKER_H
#define SANDBOXD_WORKER_H

#include <sys/types.h>

#include "conf.h"
#include "sandbox-table.h"

/*
 * Drops to uid/gid, closes every inherited fd but listen_fd and master_sock,
 * and serves until SIGTERM or until the master goes away.  Returns the
 * process exit status.
 */
int worker_main(const struct conf *conf, struct sbx_table *table, int listen_fd, int master_sock,
		uid_t uid, gid_t gid);

#endif
