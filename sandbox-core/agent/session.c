/*
 * session.c: the agent's sessions.  A session is a name, a cwd and an
 * exported environment; its commands run one at a time, each in a fresh
 * bash that starts in that cwd with that environment and, on its way out,
 * writes its cwd and exported environment back (session_wrapper), so that
 * cd and export persist.  Shell variables that are not exported, functions
 * and aliases do not.
 *
 * What the shell writes back comes from the sandbox's code and is checked
 * as untrusted input.  Static storage only: a session's pages are touched
 * when it is used.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"

struct session {
	char name[AGENT_SESSION_MAX]; /* "": free */
	char cwd[EXEC_CWD_MAX];	      /* "": none yet */
	uint32_t generation;
	int running; /* the command's index, or -1 */
	bool has_env;
	bool keep_cwd; /* the running command was given a cwd of its own */
	uint32_t envc;
	size_t envlen;
	char env[SESSION_ENV_MAX]; /* envc NAME=value strings, NUL-terminated */
	/* The running command's overrides, undone when it ends. */
	uint32_t ovc;
	size_t ovlen;
	char ov[SBX_STRINGS_MAX];
};

static struct session sessions[AGENT_SESSIONS_MAX];
static bool initialized;

/* The dump, and the environment being rebuilt from it. */
static char dump[SESSION_ENV_MAX + EXEC_CWD_MAX + 16];
static char scratch[SESSION_ENV_MAX];

#define DUMP_MAGIC "SBXS1"

const char session_wrapper[] =
	"__sbx_save() {\n"
	"\tlocal __sbx_n IFS=$' \\t\\n'\n"
	"\tset +eu\n"
	"\t{\n"
	"\t\tprintf '" DUMP_MAGIC "\\0%s\\0' \"$PWD\"\n"
	"\t\tfor __sbx_n in ${!A@} ${!B@} ${!C@} ${!D@} ${!E@} ${!F@} ${!G@} ${!H@} ${!I@} "
	"${!J@} ${!K@} ${!L@} ${!M@} ${!N@} ${!O@} ${!P@} ${!Q@} ${!R@} ${!S@} ${!T@} ${!U@} "
	"${!V@} ${!W@} ${!X@} ${!Y@} ${!Z@} ${!a@} ${!b@} ${!c@} ${!d@} ${!e@} ${!f@} ${!g@} "
	"${!h@} ${!i@} ${!j@} ${!k@} ${!l@} ${!m@} ${!n@} ${!o@} ${!p@} ${!q@} ${!r@} ${!s@} "
	"${!t@} ${!u@} ${!v@} ${!w@} ${!x@} ${!y@} ${!z@} ${!_@}; do\n"
	"\t\t\t[[ ${!__sbx_n@a} == *x* ]] && printf '%s=%s\\0' \"$__sbx_n\" \"${!__sbx_n}\"\n"
	"\t\tdone\n"
	"\t} >&990 2>/dev/null\n"
	"}\n"
	"trap __sbx_save EXIT\n"
	"eval \"set --\n$1\"\n";

static void
init(void)
{
	if (initialized)
		return;
	for (int i = 0; i < AGENT_SESSIONS_MAX; i++)
		sessions[i].running = -1;
	initialized = true;
}

int
session_find(const char *name)
{
	init();
	for (int i = 0; i < AGENT_SESSIONS_MAX; i++)
		if (sessions[i].name[0] && strcmp(sessions[i].name, name) == 0)
			return i;
	return -1;
}

static int
take_slot(const char *name)
{
	for (int i = 0; i < AGENT_SESSIONS_MAX; i++) {
		struct session *s = &sessions[i];

		if (s->name[0])
			continue;
		memcpy(s->name, name, strlen(name) + 1);
		s->cwd[0] = '\0';
		s->generation++;
		s->running = -1;
		s->has_env = false;
		s->envc = 0;
		s->envlen = 0;
		s->ovc = 0;
		s->ovlen = 0;
		return i;
	}
	errno = EUSERS;
	return -1;
}

int
session_get(const char *name)
{
	int idx = session_find(name);

	return idx >= 0 ? idx : take_slot(name);
}

/* Length of the name part of a NAME=value (or NAME) string. */
static size_t
name_len(const char *kv)
{
	return strcspn(kv, "=");
}

static bool
valid_name(const char *s, size_t len)
{
	if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* Copies n strings into buf (room for max bytes).  Their total length, or -1. */
static ssize_t
pack(char *buf, size_t max, const char *const *v, uint32_t n)
{
	size_t off = 0;

	for (uint32_t i = 0; i < n; i++) {
		size_t len = strlen(v[i]) + 1;

		if (len > max - off)
			return -1;
		memcpy(buf + off, v[i], len);
		off += len;
	}
	return (ssize_t)off;
}

/* NAME=value, or NAME alone when bare is allowed. */
static bool
valid_kv(const char *kv, bool bare)
{
	size_t len = name_len(kv);

	return valid_name(kv, len) && (kv[len] == '=' || (bare && kv[len] == '\0'));
}

static int
set_env(struct session *s, const char *const *env, uint32_t envc)
{
	ssize_t len;

	for (uint32_t i = 0; i < envc; i++)
		if (!valid_kv(env[i], false)) {
			errno = EINVAL;
			return -1;
		}
	if (envc > SBX_ARGS_MAX || (len = pack(s->env, sizeof(s->env), env, envc)) < 0) {
		errno = E2BIG;
		return -1;
	}
	s->envc = envc;
	s->envlen = (size_t)len;
	s->has_env = true;
	return 0;
}

int
session_create(const char *name, const char *cwd, const char *const *env, uint32_t envc)
{
	int idx;

	if (session_find(name) >= 0) {
		errno = EEXIST;
		return -1;
	}
	idx = take_slot(name);
	if (idx < 0)
		return -1;
	if (set_env(&sessions[idx], env, envc) < 0) {
		sessions[idx].name[0] = '\0';
		return -1;
	}
	memcpy(sessions[idx].cwd, cwd, strlen(cwd) + 1);
	return idx;
}

void
session_delete(int idx)
{
	sessions[idx].name[0] = '\0';
	sessions[idx].running = -1;
	sessions[idx].generation++; /* its commands no longer belong to it */
}

uint32_t
session_generation(int idx)
{
	return sessions[idx].generation;
}

int
session_running(int idx)
{
	return sessions[idx].running;
}

void
session_set_running(int idx, int cmd)
{
	sessions[idx].running = cmd;
}

const char *
session_cwd(int idx)
{
	return sessions[idx].cwd;
}

/* The string of name (len bytes) among n packed strings in buf, or NULL. */
static const char *
lookup(const char *buf, uint32_t n, const char *name, size_t len)
{
	const char *p = buf;

	for (uint32_t i = 0; i < n; i++, p += strlen(p) + 1)
		if (name_len(p) == len && memcmp(p, name, len) == 0)
			return p;
	return NULL;
}

int
session_begin(int idx, const char *const *base, uint32_t basec, const char *const *ov, uint32_t ovc,
	      bool own_cwd, bool hold, const char **envp, uint32_t max)
{
	struct session *s = &sessions[idx];
	const char *p = s->env;
	uint32_t n = 0;

	if (!s->has_env && set_env(s, base, basec) < 0)
		return -1;
	for (uint32_t i = 0; i < ovc; i++)
		if (!valid_kv(ov[i], true)) {
			errno = EINVAL;
			return -1;
		}
	for (uint32_t i = 0; i < s->envc; i++, p += strlen(p) + 1) {
		bool named = false;

		for (uint32_t k = 0; k < ovc && !named; k++)
			named = name_len(ov[k]) == name_len(p) &&
				memcmp(ov[k], p, name_len(p)) == 0;
		if (!named)
			envp[n++] = p;
	}
	if (n + ovc >= max) {
		errno = E2BIG;
		return -1;
	}
	for (uint32_t i = 0; i < ovc; i++)
		if (ov[i][name_len(ov[i])] == '=')
			envp[n++] = ov[i]; /* a bare NAME unsets it for this command */
	envp[n] = NULL;
	if (hold) {
		ssize_t len = pack(s->ov, sizeof(s->ov), ov, ovc);

		if (len < 0) {
			errno = E2BIG;
			return -1;
		}
		s->ovc = ovc;
		s->ovlen = (size_t)len;
		s->keep_cwd = own_cwd;
	}
	return 0;
}

/* Appends kv to scratch.  0, or -1 when it does not fit. */
static int
append(size_t *off, uint32_t *n, const char *kv)
{
	size_t len = strlen(kv) + 1;

	if (len > sizeof(scratch) - *off || *n == SBX_ARGS_MAX)
		return -1;
	memcpy(scratch + *off, kv, len);
	*off += len;
	(*n)++;
	return 0;
}

void
session_end(int idx, int fd)
{
	struct session *s = &sessions[idx];
	struct stat st;
	ssize_t got;
	size_t off, out = 0;
	uint32_t n = 0;
	const char *cwd;

	s->running = -1;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (size_t)st.st_size > sizeof(dump))
		goto done;
	got = pread(fd, dump, (size_t)st.st_size, 0);
	if (got != st.st_size || dump[got - 1] != '\0')
		goto done;
	if (memcmp(dump, DUMP_MAGIC, sizeof(DUMP_MAGIC)) != 0)
		goto done;
	off = sizeof(DUMP_MAGIC);
	cwd = dump + off;
	if (off >= (size_t)got || cwd[0] != '/' || strlen(cwd) >= sizeof(s->cwd))
		goto done;
	off += strlen(cwd) + 1;
	while (off < (size_t)got) {
		const char *kv = dump + off, *ovkv, *old;
		size_t len = name_len(kv);

		off += strlen(kv) + 1;
		if (kv[len] != '=' || !valid_name(kv, len))
			goto done;
		/* bash's own: its cwd is ours to give, its nesting level its own. */
		if ((len == 3 && memcmp(kv, "PWD", 3) == 0) ||
		    (len == 5 && memcmp(kv, "SHLVL", 5) == 0))
			continue;
		/* A per-command override the command left alone is undone. */
		ovkv = lookup(s->ov, s->ovc, kv, len);
		if (ovkv && strcmp(ovkv, kv) == 0) {
			old = lookup(s->env, s->envc, kv, len);
			if (old && append(&out, &n, old) < 0)
				goto done;
			continue;
		}
		if (append(&out, &n, kv) < 0)
			goto done;
	}
	/* And a per-command unset: the session's value comes back. */
	for (uint32_t i = 0, k = 0; i < s->ovc; i++) {
		const char *ovkv = s->ov + k, *old;
		size_t len = name_len(ovkv);

		k += strlen(ovkv) + 1;
		if (ovkv[len] == '\0' && !lookup(scratch, n, ovkv, len) &&
		    (old = lookup(s->env, s->envc, ovkv, len)) && append(&out, &n, old) < 0)
			goto done;
	}
	memcpy(s->env, scratch, out);
	s->envlen = out;
	s->envc = n;
	if (!s->keep_cwd)
		memcpy(s->cwd, cwd, strlen(cwd) + 1);
done:
	s->ovc = 0;
	s->ovlen = 0;
}

int
session_setenv(const char *const *vars, uint32_t nvars)
{
	init();
	for (uint32_t j = 0; j < nvars; j++)
		if (!valid_kv(vars[j], true)) {
			errno = EINVAL;
			return -1;
		}
	for (int i = 0; i < AGENT_SESSIONS_MAX; i++) {
		struct session *s = &sessions[i];
		const char *p = s->env;
		size_t out = 0;
		uint32_t n = 0;
		bool fits = true;

		if (!s->name[0] || !s->has_env)
			continue;
		/* Kept variables first, then the new values. */
		for (uint32_t k = 0; k < s->envc; k++, p += strlen(p) + 1) {
			bool named = false;

			for (uint32_t j = 0; j < nvars; j++)
				named |= name_len(vars[j]) == name_len(p) &&
					 memcmp(vars[j], p, name_len(p)) == 0;
			if (!named)
				fits &= append(&out, &n, p) == 0;
		}
		for (uint32_t j = 0; j < nvars; j++)
			if (vars[j][name_len(vars[j])] == '=')
				fits &= append(&out, &n, vars[j]) == 0;
		if (!fits)
			continue; /* the session keeps what it had */
		memcpy(s->env, scratch, out);
		s->envlen = out;
		s->envc = n;
	}
	return 0;
}

uint32_t
session_list(struct sess_info *info, uint32_t max)
{
	uint32_t n = 0;

	init();
	for (int i = 0; i < AGENT_SESSIONS_MAX && n < max; i++) {
		if (!sessions[i].name[0])
			continue;
		memset(&info[n], 0, sizeof(info[n]));
		memcpy(info[n].name, sessions[i].name, sizeof(info[n].name));
		memcpy(info[n].cwd, sessions[i].cwd, sizeof(info[n].cwd));
		info[n].busy = sessions[i].running >= 0;
		n++;
	}
	return n;
}
