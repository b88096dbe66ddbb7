/* wire.c: see wire.h. */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wire.h"

int
wire_send(int sock, const void *msg, size_t size, const int *fds, unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	} cbuf;
	struct iovec iov = { (void *)msg, size };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;

	if (nfds > WIRE_MAX_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *cm;

		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.buf;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	do
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == size ? 0 : -EIO;
}

ssize_t
wire_recv(int sock, void *msg, size_t size, int *fds, unsigned *ret_nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * WIRE_MAX_FDS)];
	} cbuf;
	struct iovec iov = { msg, size };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf.buf,
			     .msg_controllen = sizeof(cbuf.buf) };
	struct cmsghdr *cm;
	ssize_t n;

	*ret_nfds = 0;
	do
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	for (cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		size_t count;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		count = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < count; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*ret_nfds < WIRE_MAX_FDS)
				fds[(*ret_nfds)++] = fd;
			else
				close(fd);
		}
	}
	/* A message cut short, or fds cut short, is malformed. */
	if ((mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0)
		return -EMSGSIZE;
	return n;
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
