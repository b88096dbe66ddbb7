/*
 * master.h: sandboxd's master process: it owns the FastCGI listen socket and
 * the sandboxes, supervises the workers, and does the privileged work they
 * ask for.
 */
#ifndef SANDBOXD_MASTER_H
#define SANDBOXD_MASTER_H

#include "conf.h"

/*
 * Serves until SIGTERM or SIGINT, then stops the workers, kills every
 * sandbox and returns 0.  Returns a negative errno if start-up fails (the
 * reason is logged).  Runs as root; never returns while serving.
 */
int master_run(const struct conf *conf);

#endif
