/*
 * session.c: the agent's sessions.  A session is a name, a cwd and an
 * exported environment; its commands run one at a time, each in a fresh
 * bash that starts in that cwd with that environment and, on its way out,
 * writes its cwd and `export -p` back (session_wrapper), so that cd and
 * export persist.  Shell variables that are not exported, functions
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

#define SESSION_PEND_MAX 32768 /* bytes of changes kept while a command runs */

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
	/* SETENV changes that came while it ran, applied again when it ends. */
	uint32_t pendc;
	size_t pendlen;
	char pend[SESSION_PEND_MAX];
};

static struct session sessions[AGENT_SESSIONS_MAX];
static bool initialized;

static void apply_pending(struct session *s);

/* The dump (escaped: up to four bytes a byte), and the environment being
 * rebuilt from it. */
static char dump[4 * SESSION_ENV_MAX + EXEC_CWD_MAX + 16];
static char scratch[SESSION_ENV_MAX];

#define DUMP_MAGIC "SBXS2"

/*
 * The shell's state on its way out: its cwd, then `export -p`, whose lines
 * are `declare -x NAME="value"` (or $'value' with C escapes when the value
 * has control characters): builtins only, nothing forked.
 */
const char session_wrapper[] =
	"trap '{ builtin printf \"" DUMP_MAGIC "\\0%s\\0\" \"$PWD\"; builtin export -p; }"
	" >&990 2>/dev/null' EXIT\n"
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
		s->pendc = 0;
		s->pendlen = 0;
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

/* The value of one hex or octal digit, or -1. */
static int
digit(char c, int base)
{
	int v = c >= '0' && c <= '9'   ? c - '0'
		: c >= 'a' && c <= 'f' ? c - 'a' + 10
		: c >= 'A' && c <= 'F' ? c - 'A' + 10
				       : 99;

	return v < base ? v : -1;
}

/* Appends code point cp as UTF-8.  Its length, or 0 when there is no room. */
static size_t
put_utf8(char *out, size_t room, uint32_t cp)
{
	size_t n = cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4;

	if (n > room || cp > 0x10ffff || cp == 0)
		return 0;
	if (n == 1) {
		out[0] = (char)cp;
	} else {
		for (size_t i = n - 1; i > 0; i--, cp >>= 6)
			out[i] = (char)(0x80 | (cp & 0x3f));
		out[0] = (char)((n == 2 ? 0xc0 : n == 3 ? 0xe0 : 0xf0) | cp);
	}
	return n;
}

/*
 * Decodes the value of an `export -p` line, from its opening quote, into out
 * (room for max bytes, NUL-terminated): "..." with \" \\ \$ \` escaped, or
 * $'...' with C escapes.  The quote must close at the end of the line.
 * 0, or -1 for anything else.
 */
static int
decode_value(const char *v, char *out, size_t max)
{
	size_t o = 0;
	bool ansi = v[0] == '$';

	if (ansi ? v[1] != '\'' : v[0] != '"')
		return -1;
	for (v += ansi ? 2 : 1; *v && *v != (ansi ? '\'' : '"'); v++) {
		uint32_t c = (unsigned char)*v;

		if (*v == '\\' && !ansi) {
			if (v[1] && strchr("\"\\$`", v[1]))
				c = (unsigned char)*++v;
		} else if (*v == '\\') {
			static const char from[] = "abeEfnrtv\\'\"?",
					  to[] = "\a\b\033\033\f\n\r\t\v\\'\"?";
			const char *e = v[1] ? strchr(from, v[1]) : NULL;
			int base = 0, len = 0;

			if (e) {
				c = (unsigned char)to[e - from];
				v++;
			} else if (digit(v[1], 8) >= 0) {
				base = 8, len = 3;
			} else if (v[1] == 'x') {
				base = 16, len = 2, v++;
			} else if (v[1] == 'u' || v[1] == 'U') {
				base = 16, len = v[1] == 'u' ? 4 : 8, v++;
			} else if (v[1] == 'c' && v[2]) {
				c = (unsigned char)v[2] & 0x1f;
				v += 2;
			} else {
				return -1;
			}
			if (base) {
				int k = 0;

				for (c = 0; k < len && digit(v[1], base) >= 0; k++, v++)
					c = c * (uint32_t)base + (uint32_t)digit(v[1], base);
				if (k == 0)
					return -1;
				if (len >= 4) {
					size_t n = put_utf8(out + o, max - 1 - o, c);

					if (!n)
						return -1;
					o += n;
					continue;
				}
			}
		}
		if (c == 0 || c > 0xff || o + 1 >= max)
			return -1;
		out[o++] = (char)c;
	}
	if (!*v || v[1])
		return -1; /* unterminated, or something after the closing quote */
	out[o] = '\0';
	return 0;
}

/*
 * Decodes one line of `export -p` (bash's `declare -x NAME="value"`, or
 * `export NAME="value"` in POSIX mode) into out as NAME=value.  1 for a
 * variable, 0 for a line to skip (a name exported without a value, an
 * array), -1 for a malformed line.
 */
static int
decode_export(const char *line, char *out, size_t max)
{
	const char *p;
	size_t len;

	if (strncmp(line, "declare -", 9) == 0) {
		const char *flags = line + 9;

		p = strchr(flags, ' ');
		if (!p || !memchr(flags, 'x', (size_t)(p - flags)))
			return -1;
		if (memchr(flags, 'a', (size_t)(p - flags)) ||
		    memchr(flags, 'A', (size_t)(p - flags)))
			return 0;
		p++;
	} else if (strncmp(line, "export ", 7) == 0) {
		p = line + 7;
	} else {
		return -1;
	}
	len = name_len(p);
	if (!valid_name(p, len) || len + 2 > max)
		return -1;
	if (p[len] == '\0')
		return 0;
	if (p[len] != '=')
		return -1;
	memcpy(out, p, len + 1);
	return decode_value(p + len + 1, out + len + 1, max - len - 1) < 0 ? -1 : 1;
}

void
session_end(int idx, int fd)
{
	static char kv[SESSION_ENV_MAX];
	struct session *s = &sessions[idx];
	struct stat st;
	ssize_t got;
	size_t off, out = 0;
	uint32_t n = 0;
	const char *cwd;
	char *line, *save = NULL;

	s->running = -1;
	if (fstat(fd, &st) < 0 || st.st_size <= 0 || (size_t)st.st_size >= sizeof(dump))
		goto done;
	got = pread(fd, dump, (size_t)st.st_size, 0);
	if (got != st.st_size)
		goto done;
	dump[got] = '\0';
	if (memcmp(dump, DUMP_MAGIC, sizeof(DUMP_MAGIC)) != 0)
		goto done;
	off = sizeof(DUMP_MAGIC);
	cwd = dump + off;
	if (off >= (size_t)got || cwd[0] != '/' || strlen(cwd) >= sizeof(s->cwd))
		goto done;
	off += strlen(cwd) + 1;
	if (off > (size_t)got || memchr(dump + off, '\0', (size_t)got - off))
		goto done; /* a NUL among the lines: not export -p's */
	for (line = strtok_r(dump + off, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		const char *ovkv, *old;
		size_t len;
		int r = decode_export(line, kv, sizeof(kv));

		if (r < 0)
			goto done;
		if (r == 0)
			continue;
		len = name_len(kv);
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
	apply_pending(s);
done:
	s->ovc = 0;
	s->ovlen = 0;
	s->pendc = 0;
	s->pendlen = 0;
}

/* Applies NAME=value and NAME strings to the session's environment.  When
 * the result does not fit, the session keeps what it had. */
static void
apply_vars(struct session *s, const char *const *vars, uint32_t nvars)
{
	const char *p = s->env;
	size_t out = 0;
	uint32_t n = 0;
	bool fits = true;

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
		return;
	memcpy(s->env, scratch, out);
	s->envlen = out;
	s->envc = n;
}

/* Applies the changes that came while the session's command ran (the
 * environment its shell handed back predates them). */
static void
apply_pending(struct session *s)
{
	const char *p = s->pend;

	/* One at a time, in order: a later change of a name wins. */
	for (uint32_t i = 0; i < s->pendc; i++, p += strlen(p) + 1)
		apply_vars(s, &p, 1);
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

		if (!s->name[0] || !s->has_env)
			continue;
		apply_vars(s, vars, nvars);
		/* A command running: kept, to apply again when it hands its shell's
		 * environment back (a change that does not fit is dropped). */
		for (uint32_t j = 0; s->running >= 0 && j < nvars && s->pendc < SBX_ARGS_MAX; j++) {
			size_t len = strlen(vars[j]) + 1;

			if (len > sizeof(s->pend) - s->pendlen)
				break;
			memcpy(s->pend + s->pendlen, vars[j], len);
			s->pendlen += len;
			s->pendc++;
		}
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
