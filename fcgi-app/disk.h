/*
 * disk.h: a persistent sandbox's /workspace is an ext4 filesystem in an
 * image file of its own (STATE/disks/ID.img), mounted through a loop device:
 * its size is the sandbox's disk limit, so a full workspace fails writes
 * with ENOSPC inside the sandbox and never fills the host; deleting the
 * sandbox is unlinking one file.  The master (root) alone calls these.
 */
#ifndef SANDBOXD_DISK_H
#define SANDBOXD_DISK_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/*
 * Creates image (which must not exist), bytes long and sparse, with an
 * empty ext4 filesystem whose root belongs to root (the caller gives it to
 * the sandbox's user once mounted): a copy of a template made by mkfs.ext4
 * once per size, .template-BYTES.img beside it.  0 or a negative errno.
 */
int disk_create(const char *image, uint64_t bytes);

/*
 * Mounts image (an absolute path) at dir (nosuid, nodev) through a new loop
 * device, which goes away by itself with the last mount of it, or through
 * the device that still carries it unless it is fresh (just made).
 * *ret_loop gets the device's number.  0 or a negative errno.
 */
int disk_mount(const char *image, const char *dir, bool fresh, int *ret_loop);

/* Mounts the filesystem of loop device loop (mounted elsewhere) at dir too. */
int disk_mount_again(int loop, const char *dir);

/* Detaches the mount at dir (lazily: a sandbox still using it keeps it until
 * its last process ends).  0, also when nothing is mounted there. */
int disk_unmount(const char *dir);

/* Detaches every mount below dir (the stray mounts of a run that crashed).
 * Returns how many. */
int disk_unmount_below(const char *dir);

#endif
