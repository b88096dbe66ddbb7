/* lang.c: see lang.h. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "lang.h"

static const struct lang_info langs[LANG__MAX] = {
	[LANG_PYTHON] = { "python", { "python3", "py", NULL }, "/usr/bin/python3", "/tmp/main.py" },
	[LANG_JAVASCRIPT] = { "javascript",
			      { "js", "node", NULL },
			      "/usr/bin/node",
			      "/tmp/main.js" },
	[LANG_BASH] = { "bash", { "sh", "shell", NULL }, "/bin/bash", "/tmp/main.sh" },
};

int
lang_find(const char *name)
{
	for (int l = 0; l < LANG__MAX; l++) {
		if (strcmp(name, langs[l].name) == 0)
			return l;
		for (int a = 0; langs[l].aliases[a]; a++)
			if (strcmp(name, langs[l].aliases[a]) == 0)
				return l;
	}
	return -1;
}

const struct lang_info *
lang_get(enum lang l)
{
	return &langs[l];
}

bool
lang_available(enum lang l)
{
	/* 0: not checked yet, 1: present, 2: missing.  The interpreter comes from the
	 * host's /usr, which does not change under a running sandboxd. */
	static unsigned char cache[LANG__MAX];

	if (!cache[l])
		cache[l] = access(langs[l].interpreter, X_OK) == 0 ? 1 : 2;
	return cache[l] == 1;
}

void
lang_names(char *buf, unsigned size)
{
	int n = 0;

	buf[0] = '\0';
	for (int l = 0; l < LANG__MAX && n >= 0 && (unsigned)n < size; l++)
		n += snprintf(buf + n, size - (unsigned)n, "%s%s", l ? ", " : "", langs[l].name);
}
