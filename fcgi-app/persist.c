/*
 * persist.c: persistent sandboxes, on the master's side.
 *
 * The table (sandbox-table.h) maps each ID to its state and its uid slot,
 * which it keeps from creation to deletion: the files in its workspace are
 * owned by that slot's uids.  The master alone writes the table (workers
 * read it, and touch last_active_ms).  A sandbox that runs has an agent in
 * serve mode, listening on STATE/agents/SLOT-GENERATION.sock: the generation
 * in the name means a worker can never reach a later sandbox of the same
 * slot by a stale name.  Its workspace is an ext4 filesystem in the image
 * STATE/disks/ID.img (disk.c), mounted at STATE/workspaces/ID while the
 * sandbox runs and bound at /workspace inside: its size is the disk limit.
 *
 *   ENSURE  missing: create (with CREATE), then start an agent
 *           sleeping: start an agent (wake)
 *   idle    running longer than sleep_after_s without activity: kill the
 *           agent; it sleeps (workspace and table entry stay)
 *   agent   dies (killed, crashed, slept): the sandbox sleeps; the next
 *           ENSURE starts a new agent on the same workspace
 *   DESTROY kill the agent, then unmount the workspace and unlink its image:
 *           nothing on the host walks a tree that sandbox code shaped.  (A
 *           workspace without an image, from an older sandboxd, is wiped from
 *           inside a sandbox of the same uid: find -delete as uid 1000.)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "disk.h"
#include "log.h"
#include "master-private.h"

#define WIPE_TIMEOUT_NS (120ull * 1000000000ull)
#define IDLE_CHECK_NS (1000000000ull)

static const char *const wipe_argv[] = {
	"/bin/sh", "-c",
	/* The owner may have taken its own permissions away: give them back, then
	 * delete everything under /workspace, depth first, never following links. */
	"chmod -R u+rwX /workspace 2>/dev/null; exec find /workspace -mindepth 1 -delete", NULL
};
static const char *const wipe_env[] = { "PATH=/usr/bin:/bin", NULL };

/* The worker checked the ID against the API's rule; the master, as root, checks
 * again what makes it safe in a path: [a-z0-9-], 1 to 63 bytes, not "-" first. */
static bool
id_safe(const char *id)
{
	size_t len = strnlen(id, 64);

	if (len == 0 || len > 63 || id[0] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9') ||
		      id[i] == '-'))
			return false;
	return true;
}

/*
 * The table is shared with the workers, which are less trusted than the
 * master: before acting on an entry (paths, kills, wipes), the master checks
 * it against its own record of the slot (runs[]).  Returns the entry's uid
 * slot, or -1 for an entry that does not match.
 */
static int
entry_slot(struct master *m, const struct sbx_slot *s)
{
	uint32_t slot = s->uid_slot;
	const struct run *run;

	if (slot >= m->conf->uid_slots)
		goto bad;
	run = &m->runs[slot];
	if ((run->state != RUN_AGENT && run->state != RUN_PARKED && run->state != RUN_WIPE) ||
	    strncmp(run->id, s->id, sizeof(run->id)) != 0)
		goto bad;
	return (int)slot;
bad:
	log_error("sandbox table entry '%.63s' (uid slot %u) does not match the master's record; "
		  "ignored",
		  s->id, s->uid_slot);
	return -1;
}

static void
path_of(const struct master *m, char *buf, size_t size, const char *what, const char *name)
{
	snprintf(buf, size, "%s/%s/%s", m->conf->state_dir, what, name);
}

static void
socket_path(const struct master *m, char *buf, size_t size, uint32_t slot, uint32_t gen)
{
	char name[32];

	snprintf(name, sizeof(name), "%u-%u.sock", slot, gen);
	path_of(m, buf, size, "agents", name);
}

static int mount_workspace(struct master *m, int slot, const char *name, const char *ws,
			   bool fresh);
static int unmount_workspace(struct master *m, int slot, const char *ws);

static uid_t
user_uid(const struct master *m, uint32_t slot)
{
	return m->conf->uid_base + slot * SBX_UID_SPAN + SBX_USER_UID;
}

static void
reply_oom(struct master *m, int wi, uint32_t seq, int status, const struct sbx_slot *s,
	  bool created, uint32_t oom_kills)
{
	struct wire_sbx_reply r = { .hdr = { WIRE_VERSION, WIRE_SBX_REPLY, sizeof(r) },
				    .seq = seq,
				    .status = status,
				    .created = created,
				    .oom_kills = oom_kills };

	if (s) {
		r.uid_slot = s->uid_slot;
		r.generation = s->generation;
	}
	if (m->workers[wi].sock >= 0 && wire_send(m->workers[wi].sock, &r, sizeof(r), NULL, 0) < 0)
		log_warn("worker %d: answer lost: its socket is full or gone",
			 (int)m->workers[wi].pid);
}

static void
reply(struct master *m, int wi, uint32_t seq, int status, const struct sbx_slot *s, bool created)
{
	reply_oom(m, wi, seq, status, s, created, 0);
}

static struct sbx_limits
limits(const struct conf *c)
{
	return (struct sbx_limits){
		.memory_bytes = c->memory_mb << 20,
		.pids = c->pids,
		.cpu_millis = c->cpu_millis,
		.tmp_bytes = c->tmp_mb << 20,
		.workspace_bytes = c->workspace_mb << 20,
	};
}

/* Binds the agent's listening socket: root's, connectable by the workers' group. */
static int
agent_socket(struct master *m, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || chown(path, 0, m->wgid) < 0 ||
	    chmod(path, 0660) < 0 || listen(fd, 128) < 0) {
		int r = -errno;

		close(fd);
		unlink(path);
		return r;
	}
	return fd;
}

/*
 * Spawns an agent in serve mode in uid slot slot: its socket
 * agents/SLOT-GEN.sock, its workspace ws, its hostname.  The slot's run
 * becomes state.  0 or a negative errno (logged as what's failure).
 */
static int
spawn_agent(struct master *m, int slot, uint32_t gen, const char *hostname, const char *ws,
	    enum run_state state, const char *what)
{
	struct run *run = &m->runs[slot];
	struct sbx_spec spec = { .hostname = hostname,
				 .slot = (uint32_t)slot,
				 .workspace_dir = ws,
				 .limits = limits(m->conf) };
	struct sbx_err err = { 0 };
	char sock[PATH_MAX];
	int r;

	socket_path(m, sock, sizeof(sock), (uint32_t)slot, gen);
	spec.listen_fd = agent_socket(m, sock);
	if (spec.listen_fd < 0) {
		log_error("%s: agent socket %s: %s", what, sock, strerror(-spec.listen_fd));
		return spec.listen_fd;
	}
	r = sbx_spawn(m->host, &spec, &run->proc, &err);
	close(spec.listen_fd); /* the agent has its own copy */
	if (r < 0) {
		log_error("%s: spawn failed at %s: %s", what, sbx_step_name(err.step),
			  strerror(-r));
		unlink(sock);
		return r;
	}
	run->state = state;
	run->worker = -1;
	run->stopped = run->timed_out = false;
	run->generation = gen;
	return 0;
}

/* Starts the agent of entry idx, of uid slot slot (lock held).  0 or a negative
 * errno.  Names come from the master's record, not from the shared table. */
static int
start_agent(struct master *m, int idx, int slot)
{
	struct sbx_slot *s = sbx_table_slot(m->table, idx);
	struct run *run = &m->runs[slot];
	char ws[PATH_MAX], what[96];
	int r;

	path_of(m, ws, sizeof(ws), "workspaces", run->id);
	snprintf(what, sizeof(what), "sandbox %s", run->id);
	r = mount_workspace(m, slot, run->id, ws, false);
	if (r < 0) {
		log_error("%s: its disk: %s", what, strerror(-r));
		return r;
	}
	r = spawn_agent(m, slot, sbx_table_bump(m->table, idx), run->id, ws, RUN_AGENT, what);
	if (r < 0) {
		unmount_workspace(m, slot, ws);
		return r;
	}
	s->state = SBX_SLOT_RUNNING;
	s->agent_pid = run->proc.pid;
	return 0;
}

static void
disk_path(const struct master *m, char *buf, size_t size, const char *name)
{
	snprintf(buf, size, "%s/disks/%s.img", m->conf->state_dir, name);
}

/* Moves path (a leftover under a name about to be used) aside, for an operator. */
static int
set_aside(const char *path, const char *what, const char *id)
{
	char aside[PATH_MAX + 48];
	const char *slash = strrchr(path, '/');

	snprintf(aside, sizeof(aside), "%.*s/.orphan-%s-%llu%s", (int)(slash - path), path, id,
		 (unsigned long long)api_wall_ms(), strcmp(what, "disk") == 0 ? ".img" : "");
	if (rename(path, aside) < 0)
		return -errno;
	log_warn("sandbox %s: an old %s was left under that name; moved to %s", id, what, aside);
	return 0;
}

/*
 * Mounts the disk of the workspace called name (an ID, or .spare-SLOT) at
 * ws for uid slot slot, making it first when fresh.  A workspace without a
 * disk (made by an older sandboxd) is used as the plain directory it is.
 */
static int
mount_workspace(struct master *m, int slot, const char *name, const char *ws, bool fresh)
{
	struct run *run = &m->runs[slot];
	char img[PATH_MAX], lf[PATH_MAX + 16];
	int r;

	if (run->mounted)
		return 0;
	disk_path(m, img, sizeof(img), name);
	if (fresh) {
		if (access(img, F_OK) == 0 && (r = set_aside(img, "disk", name)) < 0)
			return r;
		r = disk_create(img, m->conf->workspace_mb << 20);
		if (r < 0)
			return r;
	} else if (access(img, F_OK) < 0) {
		return 0;
	}
	r = disk_mount(img, ws, fresh, &run->loop);
	if (r < 0) {
		if (fresh)
			unlink(img);
		return r;
	}
	run->mounted = true;
	if (fresh) {
		/* mkfs's lost+found is not the user's; the root is the user's alone. */
		snprintf(lf, sizeof(lf), "%s/lost+found", ws);
		rmdir(lf);
		if (chown(ws, user_uid(m, (uint32_t)slot), user_uid(m, (uint32_t)slot)) < 0 ||
		    chmod(ws, 0700) < 0)
			return -errno;
	}
	return 0;
}

static int
unmount_workspace(struct master *m, int slot, const char *ws)
{
	struct run *run = &m->runs[slot];
	int r;

	/* Also when we do not know of a mount: a child that made a spare's disk
	 * may have mounted it before it died.  Nothing mounted is no error. */
	r = disk_unmount(ws);
	if (r < 0) {
		log_warn("workspace %s: unmount: %s", ws, strerror(-r));
		return r;
	}
	run->mounted = false;
	return 0;
}

/* Makes the directory of a fresh workspace for name (an ID, or
 * .spare-SLOT), that only the sandbox's user may enter. */
static int
make_dir(struct master *m, const char *name, const char *ws, uint32_t slot)
{
	int r;

	if (mkdir(ws, 0700) < 0) {
		if (errno != EEXIST)
			return -errno;
		/* A workspace the table does not know (a table started afresh, an entry
		 * dropped): never hand it to a new sandbox; set it aside for an operator. */
		if ((r = set_aside(ws, "workspace", name)) < 0 || mkdir(ws, 0700) < 0)
			return r < 0 ? r : -errno;
	}
	if (chown(ws, user_uid(m, slot), user_uid(m, slot)) < 0)
		return -errno;
	return 0;
}

/* Makes a fresh workspace for name and mounts its new disk there. */
static int
make_workspace(struct master *m, const char *name, const char *ws, uint32_t slot)
{
	int r = make_dir(m, name, ws, slot);

	return r < 0 ? r : mount_workspace(m, (int)slot, name, ws, true);
}

static void
spare_path(const struct master *m, char *buf, size_t size, uint32_t slot)
{
	snprintf(buf, size, "%s/workspaces/.spare-%u", m->conf->state_dir, slot);
}

/* A workspace made a moment ago and never used (a spare's, or one whose
 * creation failed): unmounted, its disk unlinked, removed. */
static void
drop_workspace(struct master *m, int slot, const char *ws)
{
	char img[PATH_MAX];
	bool ours = m->runs[slot].mounted || strncmp(strrchr(ws, '/') + 1, ".spare-", 7) == 0;

	unmount_workspace(m, slot, ws);
	/* Only an image made here: one that a failed creation found under the
	 * name is an old sandbox's, for the operator. */
	disk_path(m, img, sizeof(img), strrchr(ws, '/') + 1);
	if (ours)
		unlink(img);
	/* rmdir only: a non-empty one stays for the operator, and is set aside
	 * when its name is used again. */
	rmdir(ws);
}

static void
drop_spare_workspace(struct master *m, int slot)
{
	char ws[PATH_MAX];

	spare_path(m, ws, sizeof(ws), (uint32_t)slot);
	drop_workspace(m, slot, ws);
}

/*
 * Spares: persistent sandboxes built before their ID is known, so that a new
 * ID's first command finds an agent ready.  A spare's workspace is
 * workspaces/.spare-SLOT, its disk disks/.spare-SLOT.img; taking it renames
 * the disk to the ID's name, mounts its filesystem again at the ID's
 * workspace and lets go of the spare's mount (the sandbox's bind mount holds
 * the filesystem, not a name), and sets the hostname through the agent.
 */
/*
 * The child's side of making a spare's disk (a fork of the master, in the
 * master's mount namespace): the image, its filesystem and its mount at ws,
 * then the loop device's number on fd.  Exits 0, or with the errno.
 */
static _Noreturn void
make_spare_disk(struct master *m, int slot, const char *ws, int fd)
{
	char img[PATH_MAX], lf[PATH_MAX + 16];
	int loop = -1, r;

	disk_path(m, img, sizeof(img), strrchr(ws, '/') + 1);
	unlink(img); /* a spare's left by an earlier run */
	r = disk_create(img, m->conf->workspace_mb << 20);
	if (r == 0)
		r = disk_mount(img, ws, true, &loop);
	if (r == 0) {
		snprintf(lf, sizeof(lf), "%s/lost+found", ws);
		rmdir(lf);
		if (chown(ws, user_uid(m, (uint32_t)slot), user_uid(m, (uint32_t)slot)) < 0 ||
		    chmod(ws, 0700) < 0)
			r = -errno;
	}
	if (r == 0 && write(fd, &loop, sizeof(loop)) != (ssize_t)sizeof(loop))
		r = -EIO;
	if (r < 0 && loop >= 0)
		disk_unmount(ws);
	_exit(r < 0 ? (-r & 0xff ? -r & 0xff : EIO) : 0);
}

/*
 * Tops up the spares.  A spare's disk is made (mkfs, mount: some 10 ms) by a
 * child of ours, so that the requests waiting for the master meanwhile do
 * not; its agent is spawned when the child is done (persist_disk_done()).
 */
int
persist_refill(struct master *m)
{
	while (!m->stopping && m->spares < m->conf->warm_sandboxes) {
		char ws[PATH_MAX];
		int slot = master_alloc_slot(m), p[2], r;
		struct run *run;
		pid_t pid;

		if (slot < 0)
			return slot;
		run = &m->runs[slot];
		spare_path(m, ws, sizeof(ws), (uint32_t)slot);
		r = make_dir(m, strrchr(ws, '/') + 1, ws, (uint32_t)slot);
		if (r < 0) {
			log_error("spare sandbox: workspace %s: %s", ws, strerror(-r));
			return r;
		}
		if (pipe2(p, O_CLOEXEC) < 0) {
			rmdir(ws);
			return -errno;
		}
		pid = fork();
		if (pid == 0) {
			close(p[0]);
			make_spare_disk(m, slot, ws, p[1]);
		}
		close(p[1]);
		if (pid < 0) {
			close(p[0]);
			rmdir(ws);
			return -errno;
		}
		run->state = RUN_DISK;
		run->disk_pid = pid;
		run->disk_fd = p[0];
		run->id[0] = '\0';
		m->spares++;
	}
	return 0;
}

void
persist_disk_done(struct master *m, int slot, int status)
{
	struct run *run = &m->runs[slot];
	int loop = -1, r = -EIO;
	uint32_t gen;

	if (read(run->disk_fd, &loop, sizeof(loop)) == (ssize_t)sizeof(loop) && WIFEXITED(status) &&
	    WEXITSTATUS(status) == 0) {
		run->mounted = true;
		run->loop = loop;
		r = 0;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		r = -WEXITSTATUS(status);
	}
	close(run->disk_fd);
	run->disk_fd = -1;
	run->disk_pid = 0;
	if (r == 0 && !m->stopping && sbx_table_lock(m->table) == 0) {
		char ws[PATH_MAX];

		gen = sbx_table_next_generation(m->table);
		sbx_table_unlock(m->table);
		spare_path(m, ws, sizeof(ws), (uint32_t)slot);
		r = spawn_agent(m, slot, gen, "sandbox", ws, RUN_SPARE, "spare sandbox");
		if (r == 0)
			return;
	} else if (r < 0) {
		log_error("spare sandbox (slot %d): its disk: %s", slot, strerror(-r));
	}
	/* Failed, or stopping: the spare goes. */
	drop_spare_workspace(m, slot);
	m->spares--;
	run->state = RUN_FREE;
	if (!m->stopping)
		m->pool_retry_ns = master_now_ns() + 1000000000ull; /* do not spin */
}

/* Gives a spare to id (lock held): its workspace takes id's name.  Returns the
 * entry's index, or -ENOENT when there is no spare. */
static int
take_spare(struct master *m, const char *id)
{
	char spare[PATH_MAX], ws[PATH_MAX], spare_img[PATH_MAX], img[PATH_MAX];
	struct sbx_slot *s;
	int slot = -1, idx, r;

	/* Only a spare whose agent serves: its workspace is bound by then, so the
	 * directory may be renamed under it. */
	for (uint32_t i = 0; i < m->conf->uid_slots && slot < 0; i++)
		if (m->runs[i].state == RUN_SPARE && !m->runs[i].proc.killed &&
		    sbx_ready(&m->runs[i].proc))
			slot = (int)i;
	if (slot < 0)
		return -ENOENT;
	spare_path(m, spare, sizeof(spare), (uint32_t)slot);
	path_of(m, ws, sizeof(ws), "workspaces", id);
	disk_path(m, spare_img, sizeof(spare_img), strrchr(spare, '/') + 1);
	disk_path(m, img, sizeof(img), id);
	/* Leftovers under the ID's name: set aside, as make_workspace() does. */
	if ((access(ws, F_OK) == 0 && set_aside(ws, "workspace", id) < 0) ||
	    (access(img, F_OK) == 0 && set_aside(img, "disk", id) < 0))
		return -EIO;
	idx = sbx_table_insert(m->table, id, strlen(id), NULL);
	if (idx < 0)
		return idx == -ENOSPC ? -EAGAIN : idx;
	if (!m->runs[slot].mounted) {
		/* A workspace without a disk: the directory itself changes name. */
		r = rename(spare, ws) < 0 ? -errno : 0;
	} else {
		r = mkdir(ws, 0700) < 0 || chown(ws, user_uid(m, (uint32_t)slot),
						 user_uid(m, (uint32_t)slot)) < 0
			    ? -errno
			    : disk_mount_again(m->runs[slot].loop, ws);
		if (r == 0 && rename(spare_img, img) < 0)
			r = -errno;
		if (r == 0) {
			disk_unmount(spare);
			rmdir(spare);
		} else {
			disk_unmount(ws);
			rmdir(ws);
		}
	}
	if (r < 0) {
		log_error("sandbox %s: taking spare %s: %s", id, spare, strerror(-r));
		sbx_table_remove(m->table, idx);
		return -EIO; /* not the caller's ENOENT: a file system failure of ours */
	}
	m->spares--;
	s = sbx_table_slot(m->table, idx);
	s->uid_slot = (uint32_t)slot;
	s->sleep_after_s = 600;
	s->limits = limits(m->conf);
	s->generation = m->runs[slot].generation;
	s->state = SBX_SLOT_RUNNING;
	s->agent_pid = m->runs[slot].proc.pid;
	s->owner_pid = 0;
	m->runs[slot].state = RUN_AGENT;
	snprintf(m->runs[slot].id, sizeof(m->runs[slot].id), "%s", id);
	if (sbx_set_hostname(&m->runs[slot].proc, id) < 0)
		log_warn("sandbox %s: could not set its hostname", id);
	return idx;
}

/* The variables of a sandbox gone (or of an earlier one of the same ID),
 * and the code contexts it had (contexts.c keeps one file each). */
static void
forget_env(struct master *m, const char *id)
{
	char path[PATH_MAX];
	int top, fd;
	DIR *d;

	path_of(m, path, sizeof(path), "env", id);
	if (unlink(path) < 0 && errno != ENOENT)
		log_warn("sandbox %s: %s: %s", id, path, strerror(errno));
	/* The workers own contexts/ and what is in it: what they left there
	 * is opened, never followed (a symlink would have us empty its
	 * target). */
	path_of(m, path, sizeof(path), "contexts", "");
	top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (top < 0) {
		log_warn("sandbox %s: %s: %s", id, path, strerror(errno));
		return;
	}
	fd = openat(top, id, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		/* None, or not a directory: the entry itself goes. */
		if (errno != ENOENT && unlinkat(top, id, 0) < 0)
			log_warn("sandbox %s: %s%s: %s", id, path, id, strerror(errno));
		close(top);
		return;
	}
	d = fdopendir(fd);
	if (d) {
		struct dirent *e;

		while ((e = readdir(d)))
			if (e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..")))
				unlinkat(dirfd(d), e->d_name, 0);
		closedir(d);
	} else {
		close(fd);
	}
	if (unlinkat(top, id, AT_REMOVEDIR) < 0)
		log_warn("sandbox %s: %s%s: %s", id, path, id, strerror(errno));
	close(top);
}

/* A new entry: its uid slot and its workspace (lock held).  Returns its index. */
static int
create(struct master *m, const char *id)
{
	char ws[PATH_MAX];
	int slot, idx, r;
	struct sbx_slot *s;

	forget_env(m, id);
	idx = take_spare(m, id);
	if (idx != -ENOENT)
		return idx;
	slot = master_alloc_slot(m);
	if (slot < 0)
		return -EAGAIN;
	idx = sbx_table_insert(m->table, id, strlen(id), NULL);
	if (idx < 0)
		return idx == -ENOSPC ? -EAGAIN : idx;
	s = sbx_table_slot(m->table, idx);
	s->uid_slot = (uint32_t)slot;
	s->sleep_after_s = 600;
	s->limits = limits(m->conf);
	path_of(m, ws, sizeof(ws), "workspaces", id);
	r = make_workspace(m, id, ws, (uint32_t)slot);
	if (r < 0) {
		log_error("sandbox %s: workspace %s: %s", id, ws, strerror(-r));
		drop_workspace(m, slot, ws);
		sbx_table_remove(m->table, idx);
		return -EIO; /* not the caller's ENOENT: a file system failure of ours */
	}
	m->runs[slot].state = RUN_PARKED;
	snprintf(m->runs[slot].id, sizeof(m->runs[slot].id), "%s", id);
	s->state = SBX_SLOT_SLEEPING;
	s->owner_pid = 0;
	return idx;
}

/* The sandbox of slot is gone: its entry (lock held), its variables, its slot. */
static void
forget_sandbox(struct master *m, int slot)
{
	struct run *run = &m->runs[slot];
	int idx = sbx_table_find(m->table, run->id, strlen(run->id));

	if (idx >= 0)
		sbx_table_remove(m->table, idx);
	forget_env(m, run->id);
	log_info("sandbox %s deleted", run->id);
	run->state = RUN_FREE;
	run->id[0] = '\0';
}

/*
 * Deletes the workspace of uid slot slot's sandbox (lock held): unmounts it
 * and unlinks its disk.  A workspace without a disk is wiped from inside a
 * sandbox of its own uid instead, and forgotten when that ends.
 */
static void
start_wipe(struct master *m, int slot)
{
	struct run *run = &m->runs[slot];
	struct sbx_spec spec = { .hostname = "wipe",
				 .slot = (uint32_t)slot,
				 .listen_fd = -1,
				 .limits = limits(m->conf) };
	struct sbx_prog prog = {
		.argv = wipe_argv, .envp = wipe_env, .code_fd = -1, .stdin_fd = -1
	};
	struct sbx_err err = { 0 };
	char ws[PATH_MAX], img[PATH_MAX];
	int null, r;

	path_of(m, ws, sizeof(ws), "workspaces", run->id);
	disk_path(m, img, sizeof(img), run->id);
	/* The disk: unmounted, unlinked; its mount point is an empty directory
	 * of ours, removed with rmdir, never a walk.  A step that fails is tried
	 * again later, from where it stopped. */
	if (unmount_workspace(m, slot, ws) < 0)
		return;
	if (unlink(img) < 0 && errno != ENOENT) {
		log_error("sandbox %s: deleting its disk: %s; retried later", run->id,
			  strerror(errno));
		return;
	}
	if (rmdir(ws) == 0 || errno == ENOENT) {
		forget_sandbox(m, slot);
		return;
	}
	if (errno != ENOTEMPTY && errno != EEXIST) {
		log_error("sandbox %s: removing %s: %s; retried later", run->id, ws,
			  strerror(errno));
		return;
	}
	/* Not empty: a workspace without a disk, from an older sandboxd. */
	spec.workspace_dir = ws;
	null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (null < 0)
		return;
	prog.stdout_fd = prog.stderr_fd = null;
	r = sbx_spawn(m->host, &spec, &run->proc, &err);
	if (r == 0) {
		r = sbx_exec(m->host, &run->proc, &prog);
		if (r < 0)
			sbx_kill(m->host, &run->proc);
		run->state = RUN_WIPE;
		run->worker = -1;
		run->stopped = run->timed_out = false;
		run->deadline_ns = master_now_ns() + WIPE_TIMEOUT_NS;
	} else {
		log_error("sandbox %s: wipe failed at %s: %s; retried later", run->id,
			  sbx_step_name(err.step), strerror(-r));
	}
	close(null);
}

/* The wipe of slot's sandbox ended: remove the emptied workspace and the entry. */
static void
finish_wipe(struct master *m, int slot, const struct sbx_result *res)
{
	struct run *run = &m->runs[slot];
	char ws[PATH_MAX];

	path_of(m, ws, sizeof(ws), "workspaces", run->id);
	/* rmdir() of the now empty directory: nothing here follows a link or walks a
	 * tree that sandbox code shaped. */
	if (rmdir(ws) < 0 && errno != ENOENT) {
		log_error("sandbox %s: workspace not emptied (wipe exit %d, signal %d): %s; "
			  "left in place",
			  run->id, res->exit_code, res->signal, strerror(errno));
		run->state = RUN_PARKED; /* the uid slot stays taken: files still carry it */
		return;
	}
	if (sbx_table_lock(m->table) < 0)
		return;
	forget_sandbox(m, slot);
	sbx_table_unlock(m->table);
}

void
persist_reaped(struct master *m, int slot, const struct sbx_result *res)
{
	struct run *run = &m->runs[slot];
	char sock[PATH_MAX];
	int idx = -1;

	if (run->state == RUN_WIPE) {
		finish_wipe(m, slot, res);
		return;
	}
	if (run->state == RUN_SPARE) {
		socket_path(m, sock, sizeof(sock), (uint32_t)slot, run->generation);
		unlink(sock);
		drop_spare_workspace(m, slot);
		m->spares--;
		run->state = RUN_FREE;
		if (!m->stopping && res->setup.step != SBX_STEP_NONE) {
			log_error("spare sandbox (slot %d) failed at %s: %s", slot,
				  sbx_step_name(res->setup.step), strerror(res->setup.err));
			m->pool_retry_ns = master_now_ns() + 1000000000ull; /* do not spin */
		}
		return;
	}
	/* An agent ended: slept, killed, crashed or deleted. */
	socket_path(m, sock, sizeof(sock), (uint32_t)slot, run->generation);
	unlink(sock);
	/* Its workspace stays mounted while it sleeps, so that whatever wakes it
	 * finds the same filesystem (disk.c). */
	run->state = RUN_PARKED;
	if (sbx_table_lock(m->table) < 0)
		return;
	idx = sbx_table_find(m->table, run->id, strlen(run->id));
	if (idx >= 0) {
		struct sbx_slot *s = sbx_table_slot(m->table, idx);

		if (s->state == SBX_SLOT_RUNNING && s->generation == run->generation) {
			s->state = SBX_SLOT_SLEEPING;
			s->agent_pid = 0;
			if (!run->stopped && res->setup.step != SBX_STEP_NONE)
				log_error("sandbox %s: agent failed at %s: %s", s->id,
					  sbx_step_name(res->setup.step), strerror(res->setup.err));
		} else if (s->state == SBX_SLOT_DESTROYING && !m->stopping) {
			s->agent_pid = 0;
			start_wipe(m, slot);
		}
	}
	sbx_table_unlock(m->table);
}

/* An agent killed a moment ago (idle, or a previous wake that failed) but not
 * yet reaped: reap it now, so that a new one can take its slot.  It was sent
 * SIGKILL, so the wait is short. */
static void
reap_dying_agent(struct master *m, int slot)
{
	struct run *run = &m->runs[slot];
	struct sbx_result res;
	int st = 0;

	while (waitpid(run->proc.pid, &st, __WALL) < 0 && errno == EINTR)
		;
	sbx_reap(m->host, &run->proc, st, &res);
	sbx_table_unlock(m->table);
	persist_reaped(m, slot, &res);
	sbx_table_lock(m->table);
}

static void
ensure(struct master *m, int wi, const struct wire_sbx *req)
{
	struct sbx_slot *s;
	bool created = false;
	uint64_t now = api_wall_ms();
	int idx, slot, r;

	idx = sbx_table_find(m->table, req->id, strlen(req->id));
	if (idx < 0) {
		if (!(req->flags & WIRE_SBX_CREATE)) {
			reply(m, wi, req->seq, -ENOENT, NULL, false);
			return;
		}
		idx = create(m, req->id);
		if (idx < 0) {
			reply(m, wi, req->seq, idx, NULL, false);
			return;
		}
		created = true;
		log_info("sandbox %s created (uid slot %u%s)", req->id,
			 sbx_table_slot(m->table, idx)->uid_slot,
			 sbx_table_slot(m->table, idx)->state == SBX_SLOT_RUNNING ? ", a spare"
										  : "");
	}
	s = sbx_table_slot(m->table, idx);
	slot = entry_slot(m, s);
	if (slot < 0) {
		reply(m, wi, req->seq, -EIO, NULL, false);
		return;
	}
	if (s->state == SBX_SLOT_DESTROYING) {
		reply(m, wi, req->seq, -EBUSY, NULL, false);
		return;
	}
	if (req->flags & WIRE_SBX_SLEEP)
		s->sleep_after_s = req->sleep_after_s;
	if (req->flags & WIRE_SBX_KEEP)
		s->keep_alive = req->keep_alive != 0;
	s->last_active_ms = now;
	if (m->runs[slot].state == RUN_AGENT && m->runs[slot].proc.killed) {
		reap_dying_agent(m, slot);
		idx = sbx_table_find(m->table, req->id, strlen(req->id));
		if (idx < 0) {
			reply(m, wi, req->seq, -EBUSY, NULL, false);
			return;
		}
		s = sbx_table_slot(m->table, idx);
	}
	if (s->state != SBX_SLOT_RUNNING) {
		r = start_agent(m, idx, slot);
		if (r < 0) {
			reply(m, wi, req->seq, -EIO, NULL, created);
			return;
		}
	}
	reply(m, wi, req->seq, 0, s, created);
}

static void
destroy(struct master *m, int wi, const struct wire_sbx *req)
{
	int idx = sbx_table_find(m->table, req->id, strlen(req->id)), slot;
	struct sbx_slot *s;

	if (idx < 0) {
		reply(m, wi, req->seq, -ENOENT, NULL, false);
		return;
	}
	s = sbx_table_slot(m->table, idx);
	slot = entry_slot(m, s);
	if (slot < 0) {
		reply(m, wi, req->seq, -EIO, NULL, false);
		return;
	}
	if (s->state == SBX_SLOT_DESTROYING) {
		reply(m, wi, req->seq, 0, NULL, false);
		return;
	}
	s->state = SBX_SLOT_DESTROYING;
	if (m->runs[slot].state == RUN_AGENT)
		/* The wipe starts when the agent is reaped (persist_reaped()). */
		sbx_kill(m->host, &m->runs[slot].proc);
	else if (m->runs[slot].state == RUN_PARKED)
		start_wipe(m, slot);
	reply(m, wi, req->seq, 0, NULL, false);
}

/* How many processes of a running sandbox the kernel's OOM killer has ended
 * since it started (asked before a code cell and after its driver died of
 * SIGKILL: was it the OOM killer?). */
static void
oom_kills(struct master *m, int wi, const struct wire_sbx *req)
{
	int idx = sbx_table_find(m->table, req->id, strlen(req->id)), slot;
	uint64_t count;

	if (idx < 0 || (slot = entry_slot(m, sbx_table_slot(m->table, idx))) < 0 ||
	    m->runs[slot].state != RUN_AGENT) {
		reply(m, wi, req->seq, -ENOENT, NULL, false);
		return;
	}
	count = sbx_oom_kills(m->host, &m->runs[slot].proc);
	reply_oom(m, wi, req->seq, 0, NULL, false,
		  count > UINT32_MAX ? UINT32_MAX : (uint32_t)count);
}

void
persist_request(struct master *m, int wi, const struct wire_sbx *req)
{
	if (m->stopping) {
		reply(m, wi, req->seq, -ESHUTDOWN, NULL, false);
		return;
	}
	if (!id_safe(req->id) || (req->op != WIRE_SBX_ENSURE && req->op != WIRE_SBX_DESTROY &&
				  req->op != WIRE_SBX_OOM)) {
		log_warn("worker %d: malformed sandbox request refused", (int)m->workers[wi].pid);
		reply(m, wi, req->seq, -EINVAL, NULL, false);
		return;
	}
	if (sbx_table_lock(m->table) < 0) {
		reply(m, wi, req->seq, -EIO, NULL, false);
		return;
	}
	if (req->op == WIRE_SBX_ENSURE)
		ensure(m, wi, req);
	else if (req->op == WIRE_SBX_OOM)
		oom_kills(m, wi, req);
	else
		destroy(m, wi, req);
	sbx_table_unlock(m->table);
}

uint64_t
persist_tick(struct master *m, uint64_t now)
{
	uint64_t wall;

	if (now < m->idle_check_ns)
		return m->idle_check_ns;
	m->idle_check_ns = now + IDLE_CHECK_NS;
	if (m->stopping || sbx_table_lock(m->table) < 0)
		return m->idle_check_ns;
	wall = api_wall_ms();
	for (uint32_t i = 0; i < sbx_table_capacity(m->table); i++) {
		struct sbx_slot *s = sbx_table_slot(m->table, (int)i);
		struct run *run;
		uint64_t last;
		int slot;

		if (!sbx_slot_live(s) || (slot = entry_slot(m, s)) < 0)
			continue;
		run = &m->runs[slot];
		/* A deletion whose wipe failed is tried again, once a minute. */
		if (s->state == SBX_SLOT_DESTROYING && run->state == RUN_PARKED &&
		    now >= m->wipe_retry_ns) {
			m->wipe_retry_ns = now + 60 * IDLE_CHECK_NS;
			start_wipe(m, slot);
			continue;
		}
		if (s->state != SBX_SLOT_RUNNING || s->keep_alive || run->state != RUN_AGENT ||
		    run->proc.killed)
			continue;
		last = __atomic_load_n(&s->last_active_ms, __ATOMIC_RELAXED);
		/* Commands running keep it awake, up to their latest deadline. */
		if (s->active_cmds > 0 && wall < s->busy_until_ms)
			continue;
		if (last <= wall && wall - last >= (uint64_t)s->sleep_after_s * 1000) {
			log_info("sandbox %s: idle for %u s, going to sleep", s->id,
				 s->sleep_after_s);
			sbx_kill(m->host, &run->proc);
		}
	}
	sbx_table_unlock(m->table);
	return m->idle_check_ns;
}

/* The agents of the last run are gone, and so are the listeners of their
 * sockets; their spares' workspaces, never used, are empty. */
static void
remove_stale_sockets(struct master *m)
{
	char path[PATH_MAX];
	struct dirent *de;
	DIR *d;

	snprintf(path, sizeof(path), "%s/agents", m->conf->state_dir);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d)))
			if (de->d_type == DT_SOCK)
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
	snprintf(path, sizeof(path), "%s/workspaces", m->conf->state_dir);
	d = opendir(path);
	if (d) {
		/* rmdir only: a spare that is not empty stays for an operator. */
		while ((de = readdir(d)))
			if (strncmp(de->d_name, ".spare-", 7) == 0)
				unlinkat(dirfd(d), de->d_name, AT_REMOVEDIR);
		closedir(d);
	}
	snprintf(path, sizeof(path), "%s/disks", m->conf->state_dir);
	d = opendir(path);
	if (d) {
		while ((de = readdir(d)))
			if (strncmp(de->d_name, ".spare-", 7) == 0)
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
	}
}

int
persist_open(struct master *m)
{
	char path[PATH_MAX];
	bool fresh = false;
	int r;

	for (const char *d = "agents"; d; d = strcmp(d, "agents") == 0 ? "workspaces" : NULL) {
		snprintf(path, sizeof(path), "%s/%s", m->conf->state_dir, d);
		if (mkdir(path, 0711) < 0 && errno != EEXIST)
			return -errno;
	}
	snprintf(path, sizeof(path), "%s/disks", m->conf->state_dir);
	if (mkdir(path, 0700) < 0 && errno != EEXIST)
		return -errno;
	/* The mounts of a run that crashed: their sandboxes are gone. */
	snprintf(path, sizeof(path), "%s/workspaces", m->conf->state_dir);
	r = disk_unmount_below(path);
	if (r > 0)
		log_warn("%d workspace mounts of an earlier run detached", r);
	/* The sandboxes' own variables: the workers write them (env.c). */
	snprintf(path, sizeof(path), "%s/env", m->conf->state_dir);
	if ((mkdir(path, 0700) < 0 && errno != EEXIST) || chown(path, m->wuid, m->wgid) < 0 ||
	    chmod(path, 0700) < 0)
		return -errno;
	/* And the code contexts' definitions (contexts.c). */
	snprintf(path, sizeof(path), "%s/contexts", m->conf->state_dir);
	if ((mkdir(path, 0700) < 0 && errno != EEXIST) || chown(path, m->wuid, m->wgid) < 0 ||
	    chmod(path, 0700) < 0)
		return -errno;
	remove_stale_sockets(m);
	snprintf(path, sizeof(path), "%s/sandboxes.table", m->conf->state_dir);
	r = sbx_table_open(path, m->conf->uid_slots, &m->table, &fresh);
	if (r < 0) {
		log_error("sandbox table %s: %s", path, strerror(-r));
		return r;
	}
	r = sbx_table_lock(m->table);
	if (r < 0)
		return r;
	/* The agents of the last run died with it (their parent-death signal).  Each
	 * sandbox keeps its uid slot; what was being deleted is wiped again. */
	for (uint32_t i = 0; i < sbx_table_capacity(m->table); i++) {
		struct sbx_slot *s = sbx_table_slot(m->table, (int)i);

		if (!sbx_slot_live(s))
			continue;
		if (!id_safe(s->id) || s->uid_slot >= m->conf->uid_slots ||
		    m->runs[s->uid_slot].state != RUN_FREE || s->state == SBX_SLOT_CREATING) {
			log_error("sandbox %s: uid slot %u out of range or taken; forgetting it",
				  s->id, s->uid_slot);
			sbx_table_remove(m->table, (int)i);
			continue;
		}
		m->runs[s->uid_slot].state = RUN_PARKED;
		snprintf(m->runs[s->uid_slot].id, sizeof(m->runs[0].id), "%s", s->id);
		s->agent_pid = 0;
		s->owner_pid = 0;
		s->active_cmds = 0; /* the workers that counted them are gone too */
		if (s->state == SBX_SLOT_DESTROYING)
			start_wipe(m, (int)s->uid_slot);
		else
			s->state = SBX_SLOT_SLEEPING;
	}
	sbx_table_unlock(m->table);
	log_info("sandbox table %s: %u sandboxes%s", path, sbx_table_count(m->table),
		 fresh ? " (new)" : "");
	return 0;
}

void
persist_close(struct master *m)
{
	/* Stopping: the agents are gone; so go their workspaces' mounts. */
	for (uint32_t i = 0; i < m->conf->uid_slots; i++) {
		char ws[PATH_MAX];

		if (!m->runs[i].mounted)
			continue;
		if (m->runs[i].state == RUN_SPARE)
			spare_path(m, ws, sizeof(ws), i);
		else
			path_of(m, ws, sizeof(ws), "workspaces", m->runs[i].id);
		unmount_workspace(m, (int)i, ws);
	}
	sbx_table_close(m->table);
	m->table = NULL;
}
