/* wire.c: see wire.h. */
#include <errno.h>
#include <string.h>

#include "sandbox-fd.h"
#include "wire.h"

int
wire_send(int sock, const void *msg, size_t size, const int *fds, unsigned nfds)
{
	if (nfds > WIRE_MAX_FDS)
		return -EINVAL;
	return sbx_send_fds(sock, msg, size, fds, nfds);
}

ssize_t
wire_recv(int sock, void *msg, size_t size, int *fds, unsigned *ret_nfds)
{
	return sbx_recv_fds(sock, msg, size, fds, WIRE_MAX_FDS, ret_nfds);
}

int
wire_check(const void *msg, ssize_t len, enum wire_type type, size_t size)
{
	const struct wire_hdr *h = msg;

	if (len < (ssize_t)sizeof(*h) || (size_t)len != size)
		return -EBADMSG;
	if (h->version != WIRE_VERSION)
		return -EPROTO;
	if (h->type != type || h->size != size)
		return -EBADMSG;
	return 0;
}
