/*
 * sandbox-fd.h: one message and its file descriptors over a unix socket
 * (SCM_RIGHTS), as sandboxd's processes pass them to each other: the master
 * and its workers, a worker and a sandbox's agent.
 */
#ifndef SANDBOX_FD_H
#define SANDBOX_FD_H

#include <stddef.h>
#include <sys/types.h>

#define SBX_FDS_MAX 8 /* descriptors one message carries at most */

/* Sends len bytes of buf and nfds (0..SBX_FDS_MAX) fds as one message
 * (MSG_NOSIGNAL).  The caller keeps its fds.  0, -EIO when sent short, or a
 * negative errno. */
int sbx_send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned nfds);

/*
 * Receives one message of at most len bytes into buf, with up to max fds
 * (close-on-exec) into fds; more fds than max are closed.  Returns its
 * length (0 at end of file) with their number in *ret_nfds, or a negative
 * errno: -EMSGSIZE for a message or fds cut short, with every fd it brought
 * closed.
 */
ssize_t sbx_recv_fds(int sock, void *buf, size_t len, int *fds, unsigned max, unsigned *ret_nfds);

#endif
