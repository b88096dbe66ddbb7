/*
 * conf.h: sandboxd's configuration, from a file of "key = value" lines and
 * SANDBOXD_* environment variables (the environment wins).  See
 * docs/CONFIGURATION.md for every key.
 */
#ifndef SANDBOXD_CONF_H
#define SANDBOXD_CONF_H

#include <stddef.h>
#include <stdint.h>

#define CONF_MAX_API_KEYS 64

struct conf {
	char *socket;			   /* FastCGI listen socket path */
	char *socket_group;		   /* group that may connect (nginx's), default www-data */
	char *user;			   /* unprivileged user the workers run as */
	char *agent;			   /* the sandbox-agent binary */
	char *drivers_dir;		   /* the code interpreter's drivers (python/, javascript/) */
	char *state_dir;		   /* sandboxd's state directory */
	char *cgroup_root;		   /* NULL: "sandboxd-<hash of state_dir>" beside our own */
	uint32_t workers;		   /* FastCGI worker processes, 1..256 */
	uint32_t uid_base;		   /* first host uid given to sandboxes */
	uint32_t uid_slots;		   /* concurrent sandboxes, 1..16384 */
	uint32_t warm_pool;		   /* sandboxes kept built and waiting for a program */
	uint32_t warm_sandboxes;	   /* persistent sandboxes kept built for new IDs */
	char *api_keys[CONF_MAX_API_KEYS]; /* bearer keys; none: loopback clients only */
	uint32_t n_api_keys;
	uint64_t max_body_bytes;      /* largest request body */
	uint64_t output_max_bytes;    /* stdout and stderr kept per call, each */
	uint32_t exec_timeout_ms;     /* default timeout of a run */
	uint32_t exec_timeout_max_ms; /* largest timeout a caller may ask for */
	uint64_t memory_mb;	      /* per sandbox, no swap */
	uint32_t pids;		      /* per sandbox, processes and threads */
	uint32_t cpu_millis;	      /* per sandbox, thousandths of a CPU */
	uint64_t tmp_mb;	      /* /tmp size */
	uint64_t workspace_mb;	      /* /workspace size */
	uint32_t context_idle_s;      /* a code context unused this long is stopped; 0 never */
	uint64_t cell_output_max_bytes; /* what one cell may send: output, results, errors */
	uint32_t log_debug;	      /* 1: debug logging */
};

/* Fills *c with the built-in defaults; -ENOMEM if their strings cannot be copied. */
int conf_defaults(struct conf *c);

/*
 * Applies the settings in the text buf (len bytes, the contents of a config
 * file) to *c.  Returns 0, or -EINVAL with a message naming the line in
 * errbuf.
 */
int conf_parse(struct conf *c, const char *buf, size_t len, char *errbuf, size_t errlen);

/* Reads the file at path and applies it with conf_parse(). */
int conf_load_file(struct conf *c, const char *path, char *errbuf, size_t errlen);

/*
 * Applies SANDBOXD_<KEY> variables from envp (NULL-terminated) to *c; the key is
 * the config key in upper case ("SANDBOXD_WORKERS=4").  SANDBOXD_API_KEYS is a
 * comma-separated list.  Same return contract as conf_parse().
 */
int conf_apply_env(struct conf *c, char *const *envp, char *errbuf, size_t errlen);

/* Checks cross-field rules after all sources are applied. */
int conf_check(const struct conf *c, char *errbuf, size_t errlen);

/* Frees the strings of *c. */
void conf_free(struct conf *c);

#endif
