/*
 * main.c: sandboxd's entry point: options, configuration, then the master.
 *
 *   sandboxd [-c config_file] [-t]
 *
 * -t checks the configuration and exits.  Settings come from the file (default
 * /etc/sandboxd/sandboxd.conf if it exists) and SANDBOXD_* variables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "master.h"

#define DEFAULT_CONF "/etc/sandboxd/sandboxd.conf"

extern char **environ;

static void
usage(void)
{
	fprintf(stderr, "usage: sandboxd [-c config_file] [-t]\n");
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	struct conf conf;
	char err[512] = "";
	bool test_only = false;
	int opt, r;

	while ((opt = getopt(argc, argv, "c:th")) != -1) {
		switch (opt) {
		case 'c': path = optarg; break;
		case 't': test_only = true; break;
		default: usage(); return opt == 'h' ? 0 : 2;
		}
	}
	if (conf_defaults(&conf) < 0) {
		fprintf(stderr, "sandboxd: out of memory\n");
		return 1;
	}
	if (!path && access(DEFAULT_CONF, F_OK) == 0)
		path = DEFAULT_CONF;
	if ((path && conf_load_file(&conf, path, err, sizeof(err)) < 0) ||
	    conf_apply_env(&conf, environ, err, sizeof(err)) < 0 ||
	    conf_check(&conf, err, sizeof(err)) < 0) {
		fprintf(stderr, "sandboxd: configuration: %s\n", err);
		conf_free(&conf);
		return 1;
	}
	if (test_only) {
		printf("sandboxd: configuration ok\n");
		conf_free(&conf);
		return 0;
	}
	if (geteuid() != 0) {
		fprintf(stderr, "sandboxd: must start as root (workers drop to '%s')\n", conf.user);
		conf_free(&conf);
		return 1;
	}
	log_set_debug(conf.log_debug);
	r = master_run(&conf);
	conf_free(&conf);
	return r < 0 ? 1 : 0;
}
