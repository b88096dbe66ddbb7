/*
 * fuzz_conf.c: libFuzzer target for the configuration file parser.  Any
 * input either parses or fails with a message; nothing leaks or crashes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "conf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct conf c;
	char err[256] = "";
	int r;

	if (conf_defaults(&c) < 0)
		abort();
	r = conf_parse(&c, (const char *)data, size, err, sizeof(err));
	if (r < 0 && r != -ENOMEM && !err[0])
		abort();
	if (r == 0)
		conf_check(&c, err, sizeof(err));
	conf_free(&c);
	return 0;
}
