/*
 * files.c: a sandbox's files: the /api/ file routes of the SDK and the raw
 * GET|PUT /v1/sandboxes/{id}/files/{path}.
 *
 * Every operation is the agent's (sandbox-exec.h): it runs in a child that
 * has become the sandbox's user, inside the sandbox's own filesystem, so a
 * path means what it means to the sandbox's code and nothing more.  Here we
 * only decode requests, move bytes through a pipe or a sealed memfd, and
 * turn the answers into JSON.  What comes back from the agent is checked as
 * untrusted: the sandbox's code can shape names and sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "output.h"
#include "sandbox-exec.h"
#include "sandboxes-private.h"

#define READ_JSON_MAX (32ull << 20) /* bytes of a file read into a JSON answer */
#define LIST_BYTES_MAX (16u << 20)  /* bytes of a listing's records */
#define STREAM_CHUNK 65535	    /* bytes per chunk event: a multiple of 3 for base64 */
#define FILE_WAIT_MS 600000	    /* how long the idle reaper leaves the sandbox alone */
#define FILE_IDLE_MS 60000	    /* an operation's longest silence */

/* ---- encodings ---- */

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Base64 of len bytes, malloc'd and NUL-terminated; NULL on allocation failure. */
static char *
base64_encode(const unsigned char *in, size_t len, size_t *ret_len)
{
	size_t n = (len + 2) / 3 * 4, o = 0;
	char *out = malloc(n + 1);

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)in[i + 1] << 8;
		if (i + 2 < len)
			v |= in[i + 2];
		out[o++] = b64[v >> 18];
		out[o++] = b64[(v >> 12) & 63];
		out[o++] = i + 1 < len ? b64[(v >> 6) & 63] : '=';
		out[o++] = i + 2 < len ? b64[v & 63] : '=';
	}
	out[o] = '\0';
	*ret_len = o;
	return out;
}

/* Decodes base64 (whitespace skipped, padding optional) into out, which has
 * room for len * 3 / 4 bytes.  The decoded length, or -1 for bad input. */
static ssize_t
base64_decode(const char *in, size_t len, unsigned char *out)
{
	uint32_t acc = 0;
	size_t o = 0;
	int bits = 0, pad = 0;

	for (size_t i = 0; i < len; i++) {
		const char *p;
		char c = in[i];

		if (c == ' ' || c == '\n' || c == '\r' || c == '\t')
			continue;
		if (c == '=') {
			pad++;
			continue;
		}
		p = c ? strchr(b64, c) : NULL;
		if (!p || pad)
			return -1; /* a foreign byte, or data after padding */
		acc = acc << 6 | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
		}
	}
	/* Left over: 0 bits, or 2 or 4 (one or two bytes short of a group). */
	if (bits >= 6 || pad > 2 || (acc & ((1u << bits) - 1)) != 0)
		return -1;
	return (ssize_t)o;
}

/* Whether len bytes are UTF-8 text: valid, and without NUL bytes.  At a
 * cut (the end of a chunk of a longer file) a sequence may be unfinished. */
static bool
is_text(const unsigned char *s, size_t len, bool cut)
{
	size_t i = 0;

	while (i < len) {
		unsigned char c = s[i];
		size_t n;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			n = 1, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			n = 2, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			n = 3, cp = c & 0x07;
		else
			return false;
		if (i + n >= len)
			return cut; /* unfinished: fine only at a cut */
		for (size_t k = 1; k <= n; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)) ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

/* Where a UTF-8 sequence left unfinished at the end of buf starts (len when
 * none is). */
static size_t
utf8_cut(const unsigned char *buf, size_t len)
{
	for (size_t back = 1; back <= 3 && back <= len; back++) {
		unsigned char c = buf[len - back];
		size_t need;

		if ((c & 0xc0) == 0x80)
			continue; /* a continuation byte: look further back */
		need = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 1;
		return need > back ? len - back : len;
	}
	return len;
}

/* The MIME type of a name, by its extension; NULL when unknown. */
static const char *
mime_by_name(const char *path)
{
	static const struct {
		const char *ext, *type;
	} types[] = {
		{ "txt", "text/plain" },
		{ "md", "text/markdown" },
		{ "html", "text/html" },
		{ "htm", "text/html" },
		{ "css", "text/css" },
		{ "csv", "text/csv" },
		{ "xml", "application/xml" },
		{ "json", "application/json" },
		{ "js", "text/javascript" },
		{ "mjs", "text/javascript" },
		{ "ts", "text/typescript" },
		{ "py", "text/x-python" },
		{ "sh", "text/x-shellscript" },
		{ "c", "text/x-c" },
		{ "h", "text/x-c" },
		{ "yaml", "application/yaml" },
		{ "yml", "application/yaml" },
		{ "toml", "application/toml" },
		{ "svg", "image/svg+xml" },
		{ "png", "image/png" },
		{ "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" },
		{ "gif", "image/gif" },
		{ "webp", "image/webp" },
		{ "ico", "image/x-icon" },
		{ "pdf", "application/pdf" },
		{ "zip", "application/zip" },
		{ "gz", "application/gzip" },
		{ "tar", "application/x-tar" },
		{ "wasm", "application/wasm" },
		{ "mp3", "audio/mpeg" },
		{ "wav", "audio/wav" },
		{ "mp4", "video/mp4" },
		{ "webm", "video/webm" },
	};
	const char *base = strrchr(path, '/'), *dot;

	base = base ? base + 1 : path;
	dot = strrchr(base, '.');
	if (!dot || dot == base)
		return NULL;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (strcasecmp(dot + 1, types[i].ext) == 0)
			return types[i].type;
	return NULL;
}

static const char *
mime_of(const char *path, bool text)
{
	const char *m = mime_by_name(path);

	return m ? m : text ? "text/plain" : "application/octet-stream";
}

/* ---- errors ---- */

/* Sends the error for an operation's errno on path. */
static int
file_error(struct api_req *req, int err, const char *path)
{
	json_t *ctx = json_pack("{s:s, s:s}", "path", path, "error", strerror(err));

	switch (err) {
	case ENOENT:
		return api_error(req, 404, "FILE_NOT_FOUND", ctx, "no such file or directory: %s",
				 path);
	case EISDIR: return api_error(req, 400, "IS_DIRECTORY", ctx, "%s is a directory", path);
	case ENOTDIR:
		return api_error(req, 400, "NOT_DIRECTORY", ctx,
				 "%s: a part of the path is not a directory", path);
	case EACCES:
	case EPERM:
	case EROFS:
		return api_error(req, 403, "PERMISSION_DENIED", ctx,
				 "the sandbox's user may not do that to %s", path);
	case EEXIST:
	case ENOTEMPTY: return api_error(req, 409, "FILE_EXISTS", ctx, "%s already exists", path);
	case EFBIG:
		return api_error(req, 413, "FILE_TOO_LARGE", ctx,
				 "%s is larger than this route allows (or the sandbox's file "
				 "size limit)",
				 path);
	case ENOSPC:
	case EDQUOT: return api_error(req, 500, "NO_SPACE", ctx, "the sandbox's disk is full");
	case EINVAL:
		return api_error(req, 400, "VALIDATION_FAILED", ctx,
				 "%s: not a regular file, or not a valid target", path);
	case EXDEV:
		return api_error(req, 400, "VALIDATION_FAILED", ctx,
				 "a directory cannot be moved to another filesystem (%s)", path);
	case EBUSY:
		return api_error(
			req, 400, "VALIDATION_FAILED", ctx,
			"%s is the root of a filesystem of the sandbox and cannot be deleted",
			path);
	case ELOOP:
	case ENAMETOOLONG:
		return api_error(req, 400, "VALIDATION_FAILED", ctx, "%s: %s", path, strerror(err));
	}
	log_error("req %s: file %s: %s", req->id, path, strerror(err));
	return api_error(req, 500, "INTERNAL_ERROR", ctx, "%s: %s", path, strerror(err));
}

/* ---- talking to the agent ---- */

/* An operation in flight: the connection, and our end of its data pipe. */
struct op {
	struct api_req *req;
	const char *id;
	int conn;
	int data; /* READ, LIST: the read end */
	struct sbx_file_result res;
};

/*
 * Sends fr (waking the sandbox); for READ and LIST a pipe is made for the
 * data and its write end handed over.  0, or the HTTP status of the error
 * sent.
 */
static int
op_start(struct op *o, struct sbx_file_req *fr)
{
	int p[2] = { -1, -1 }, from_master = 0, e;
	bool pipe_out = fr->op == SBX_FILE_READ || fr->op == SBX_FILE_LIST;

	o->conn = o->data = -1;
	e = sandboxes_connect(o->req, o->id, &o->conn, &from_master);
	if (from_master || e < 0)
		return sandboxes_agent_error(o->req, o->id, from_master, e);
	if (pipe_out) {
		if (pipe2(p, O_CLOEXEC) < 0) {
			close(o->conn);
			return api_error(o->req, 500, "INTERNAL_ERROR", NULL, "out of pipes");
		}
		fr->fd = p[1];
	}
	sandboxes_count(o->req, o->id, api_wall_ms() + FILE_WAIT_MS);
	e = sbx_file_send(o->conn, fr);
	if (pipe_out)
		close(p[1]);
	if (e < 0) {
		if (pipe_out)
			close(p[0]);
		close(o->conn);
		sandboxes_count(o->req, o->id, 0);
		return sandboxes_agent_error(o->req, o->id, 0, e);
	}
	o->data = p[0];
	return 0;
}

/*
 * Waits until fd has something to read (or hung up), while watching the
 * client.  The operation's child runs as the sandbox's user, and the
 * sandbox's code can stop it (SIGSTOP): a worker never waits on it longer
 * than FILE_IDLE_MS without a byte.  0, -ECANCELED (the client is gone) or
 * -ETIMEDOUT.
 */
static int
op_wait(struct op *o, int fd)
{
	struct pollfd p[2] = { { fd, POLLIN, 0 }, { o->req->client_fd, POLLRDHUP, 0 } };

	for (;;) {
		int n = poll(p, o->req->client_fd >= 0 ? 2 : 1, FILE_IDLE_MS);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ETIMEDOUT;
		if (o->req->client_fd >= 0 && (p[1].revents & (POLLRDHUP | POLLHUP | POLLERR)))
			return -ECANCELED;
		if (p[0].revents)
			return 0;
	}
}

/* Waits for the answer and ends the operation, sending nothing (a response
 * may be under way).  0, or a negative errno. */
static int
op_end(struct op *o)
{
	int e;

	/* What is left on the data pipe is nobody's now: let the child see it go
	 * (EPIPE), so that it answers instead of waiting to write. */
	if (o->data >= 0) {
		close(o->data);
		o->data = -1;
	}
	e = op_wait(o, o->conn);
	if (e == 0)
		e = sbx_file_recv(o->conn, &o->res);

	close(o->conn);
	if (o->data >= 0)
		close(o->data);
	o->conn = o->data = -1;
	sandboxes_count(o->req, o->id, 0);
	return e == -EBADMSG ? -EIO : e;
}

/* Waits for the answer and ends the operation.  0, or the status sent. */
static int
op_finish(struct op *o)
{
	int e = op_end(o);

	return e < 0 ? sandboxes_agent_error(o->req, o->id, 0, e) : 0;
}

/* Drops an operation half done (the client went away): closing the
 * connection kills the operation's child. */
static void
op_abandon(struct op *o)
{
	if (o->conn >= 0)
		close(o->conn);
	if (o->data >= 0)
		close(o->data);
	o->conn = o->data = -1;
	sandboxes_count(o->req, o->id, 0);
}

/* Reads exactly len bytes from the operation's data pipe (fewer at end of
 * file).  Their number, or a negative errno. */
static ssize_t
read_full(struct op *o, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n;
		int e = op_wait(o, o->data);

		if (e < 0)
			return e;
		n = read(o->data, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		got += (size_t)n;
	}
	return (ssize_t)got;
}

/* Everything left on the data pipe, up to max bytes, malloc'd.  0, -EFBIG
 * or a negative errno. */
static int
read_all(struct op *o, size_t max, char **ret, size_t *ret_len)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *more;

			if (cap >= max + 1) {
				free(buf);
				return -EFBIG;
			}
			cap = cap * 2 > max + 1 ? max + 1 : cap * 2;
			more = realloc(buf, cap);
			if (!more) {
				free(buf);
				return -ENOMEM;
			}
			buf = more;
		}
		n = read_full(o, buf + len, cap - len);
		if (n < 0) {
			free(buf);
			return (int)n;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	if (len > max) {
		free(buf);
		return -EFBIG;
	}
	*ret = buf;
	*ret_len = len;
	return 0;
}

/* Runs an operation without a data pipe (WRITE brings its own fd).  0 with
 * o->res, or the status of the error sent. */
static int
simple_op(struct op *o, struct sbx_file_req *fr)
{
	int status = op_start(o, fr);

	return status ? status : op_finish(o);
}

/* ---- request bodies ---- */

/* The path in field key of root, made absolute.  0, or the status sent. */
static int
path_field(struct api_req *req, const json_t *root, const char *key, char buf[SBX_FILE_PATH_MAX])
{
	const json_t *v = json_object_get(root, key);

	if (!v || json_is_null(v))
		return api_error(req, 400, "VALIDATION_FAILED", NULL, "'%s' is required", key);
	return sandboxes_cwd(req, v, key, buf, SBX_FILE_PATH_MAX);
}

/* A JSON string of a name the sandbox's code chose: bytes that are not
 * UTF-8 become U+FFFD. */
static json_t *
name_json(const char *s, size_t len)
{
	size_t clen;
	char *clean = api_utf8_clean(s, len, &clen);
	json_t *j = clean ? json_stringn_nocheck(clean, clen) : NULL;

	free(clean);
	return j;
}

/* A boolean field of root (absent or null: false).  0, or the status of the
 * 400 sent for another type. */
static int
flag_field(struct api_req *req, const json_t *root, const char *key, bool *ret)
{
	const json_t *v = json_object_get(root, key);

	*ret = json_is_true(v);
	if (!v || json_is_null(v) || json_is_boolean(v))
		return 0;
	return api_error(req, 400, "VALIDATION_FAILED", NULL, "'%s' must be true or false", key);
}

static json_t *
ok_with_path(const char *path)
{
	return sandboxes_ok(json_pack("{s:s}", "path", path));
}

/* ---- routes ---- */

/* Writes len bytes to path.  0 with *ret_status unset, or the status sent. */
static int
write_bytes(struct api_req *req, const char *id, const char *path, const void *data, size_t len)
{
	struct op o = { .req = req, .id = id };
	struct sbx_file_req fr = { .op = SBX_FILE_WRITE,
				   .path = path,
				   .size = len,
				   .fd = sandboxes_memfd("file", data, len) };
	int status;

	if (fr.fd < 0)
		return api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
	status = simple_op(&o, &fr);
	close(fr.fd);
	if (!status && o.res.err)
		status = file_error(req, o.res.err, path);
	return status;
}

static int
api_write(struct api_req *req, const char *id, const json_t *root)
{
	char path[SBX_FILE_PATH_MAX];
	const json_t *content = json_object_get(root, "content"), *enc;
	const char *encoding = "utf-8";
	unsigned char *bytes = NULL;
	const void *data;
	size_t len;
	int status;

	if ((status = path_field(req, root, "path", path)))
		return status;
	if (!json_is_string(content))
		return api_error(req, 400, "VALIDATION_FAILED", NULL,
				 "'content' is required: a string");
	enc = json_object_get(root, "encoding");
	if (enc && !json_is_null(enc)) {
		encoding = json_is_string(enc) ? json_string_value(enc) : "";
		if (strcmp(encoding, "utf-8") && strcmp(encoding, "utf8") &&
		    strcmp(encoding, "base64"))
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "'encoding' is \"utf-8\" or \"base64\"");
	}
	data = json_string_value(content);
	len = json_string_length(content);
	if (strcmp(encoding, "base64") == 0) {
		ssize_t n;

		bytes = malloc(len * 3 / 4 + 3);
		if (!bytes)
			return api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
		n = base64_decode(data, len, bytes);
		if (n < 0) {
			free(bytes);
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "'content' is not valid base64");
		}
		data = bytes;
		len = (size_t)n;
	}
	status = write_bytes(req, id, path, data, len);
	free(bytes);
	return status ? status : api_send_json(req, 200, ok_with_path(path));
}

/*
 * Starts a READ of path (at most max bytes) and takes its meta record.  0
 * with the operation running and *meta filled, or the status of the error
 * sent.
 */
static int
read_start(struct op *o, const char *path, uint64_t max, struct sbx_file_meta *meta)
{
	struct sbx_file_req fr = { .op = SBX_FILE_READ, .path = path, .size = max };
	int status = op_start(o, &fr);

	if (status)
		return status;
	if (read_full(o, meta, sizeof(*meta)) != (ssize_t)sizeof(*meta) ||
	    sbx_file_meta_check(meta) < 0) {
		/* No meta: the operation's child never got that far. */
		status = op_finish(o);
		if (status)
			return status;
		return file_error(o->req, o->res.err ? o->res.err : EIO, path);
	}
	if (meta->err) {
		status = op_finish(o);
		return status ? status : file_error(o->req, meta->err, path);
	}
	return 0;
}

static int
api_read(struct api_req *req, const char *id, const json_t *root)
{
	struct op o = { .req = req, .id = id };
	struct sbx_file_meta meta;
	char path[SBX_FILE_PATH_MAX];
	const json_t *enc = json_object_get(root, "encoding");
	const char *want = NULL;
	char *buf = NULL, *b64text = NULL;
	size_t len = 0;
	bool text;
	json_t *body;
	int status, e;

	if ((status = path_field(req, root, "path", path)))
		return status;
	if (enc && !json_is_null(enc)) {
		want = json_is_string(enc) ? json_string_value(enc) : "";
		if (strcmp(want, "utf-8") && strcmp(want, "utf8") && strcmp(want, "base64"))
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "'encoding' is \"utf-8\" or \"base64\"");
	}
	if ((status = read_start(&o, path, READ_JSON_MAX, &meta)))
		return status;
	e = read_all(&o, READ_JSON_MAX, &buf, &len);
	status = op_finish(&o);
	if (status) {
		free(buf);
		return status;
	}
	if (e < 0 || o.res.err) {
		free(buf);
		return file_error(req, e < 0 ? -e : o.res.err, path);
	}
	text = is_text((unsigned char *)buf, len, false);
	if (want ? strcmp(want, "base64") == 0 : !text) {
		size_t blen;

		b64text = base64_encode((unsigned char *)buf, len, &blen);
		body = b64text ? json_stringn_nocheck(b64text, blen) : NULL;
		want = "base64";
	} else {
		/* utf-8 asked of bytes that are not: invalid sequences become U+FFFD. */
		size_t clen;
		char *clean = text ? NULL : api_utf8_clean(buf, len, &clen);

		body = text    ? json_stringn_nocheck(buf, len)
		       : clean ? json_stringn_nocheck(clean, clen)
			       : NULL;
		free(clean);
		want = "utf-8";
	}
	free(buf);
	free(b64text);
	if (!body)
		return api_error(req, 500, "INTERNAL_ERROR", NULL, "out of memory");
	body = sandboxes_ok(json_pack("{s:s, s:o, s:s, s:b, s:s, s:I}", "path", path, "content",
				      body, "encoding", want, "isBinary", !text, "mimeType",
				      mime_of(path, text), "size", (json_int_t)len));
	return api_send_json(req, 200, body);
}

static json_t *
event(const char *type)
{
	return json_pack("{s:s}", "type", type);
}

/* POST /api/read/stream: metadata, chunks (base64 when the start of the file
 * is not text), complete.  Errors before the first event are plain JSON. */
static int
api_read_stream(struct api_req *req, const char *id, const json_t *root)
{
	static unsigned char chunk[STREAM_CHUNK];
	struct op o = { .req = req, .id = id };
	struct sbx_file_meta meta;
	char path[SBX_FILE_PATH_MAX];
	uint64_t sent = 0;
	size_t carry = 0;
	bool text = true, first = true;
	json_t *ev;
	int status, e;

	if ((status = path_field(req, root, "path", path)))
		return status;
	if ((status = read_start(&o, path, UINT64_MAX, &meta)))
		return status;
	if (api_stream_begin(req) < 0) {
		op_abandon(&o);
		return 200;
	}
	for (;;) {
		ssize_t n = read_full(&o, chunk + carry, sizeof(chunk) - carry);
		size_t len, keep = 0;

		if (n < 0)
			break;
		len = carry + (size_t)n;
		if (first) {
			first = false;
			text = is_text(chunk, len, len == sizeof(chunk));
			ev = event("metadata");
			json_object_set_new(ev, "mimeType", json_string(mime_of(path, text)));
			json_object_set_new(ev, "size", json_integer((json_int_t)meta.info.size));
			json_object_set_new(ev, "isBinary", json_boolean(!text));
			json_object_set_new(ev, "encoding", json_string(text ? "utf-8" : "base64"));
			if (api_stream_event(req, ev) < 0) {
				op_abandon(&o);
				return 200;
			}
		}
		if (len == 0)
			break;
		ev = event("chunk");
		if (text) {
			/* A character cut at the chunk's end waits for the next one. */
			size_t clen, cut = n > 0 ? utf8_cut(chunk, len) : len;
			char *clean;

			keep = len - cut;
			clean = api_utf8_clean((char *)chunk, cut, &clen);
			json_object_set_new(ev, "data",
					    clean ? json_stringn_nocheck(clean, clen)
						  : json_null());
			free(clean);
			sent += cut;
		} else {
			size_t blen;
			char *enc = base64_encode(chunk, len, &blen);

			json_object_set_new(ev, "data",
					    enc ? json_stringn_nocheck(enc, blen) : json_null());
			free(enc);
			sent += len;
		}
		if (api_stream_event(req, ev) < 0) {
			op_abandon(&o);
			return 200;
		}
		memmove(chunk, chunk + len - keep, keep);
		carry = keep;
		if (n == 0)
			break;
	}
	e = op_end(&o);
	if (e < 0 || o.res.err) {
		ev = event("error");
		json_object_set_new(ev, "error",
				    json_string(e < 0 ? "the sandbox ended during the read"
						      : strerror(o.res.err)));
	} else {
		ev = event("complete");
		json_object_set_new(ev, "bytesRead", json_integer((json_int_t)sent));
	}
	api_stream_event(req, ev);
	return 200;
}

/* mkdir and delete: a path and the flag recursive.  mkdir's answer says
 * whether it was recursive. */
static int
path_op(struct api_req *req, const char *id, const json_t *root, enum sbx_file_op op)
{
	struct op o = { .req = req, .id = id };
	char path[SBX_FILE_PATH_MAX];
	struct sbx_file_req fr = { .op = op, .path = path, .fd = -1 };
	bool recursive;
	int status;

	if ((status = path_field(req, root, "path", path)) ||
	    (status = flag_field(req, root, "recursive", &recursive)))
		return status;
	fr.flags = recursive ? SBX_FILE_RECURSIVE : 0;
	if ((status = simple_op(&o, &fr)))
		return status;
	if (o.res.err)
		return file_error(req, o.res.err, path);
	if (op == SBX_FILE_MKDIR)
		return api_send_json(req, 200,
				     sandboxes_ok(json_pack("{s:s, s:b}", "path", path, "recursive",
							    recursive)));
	return api_send_json(req, 200, ok_with_path(path));
}

static int
api_mkdir(struct api_req *req, const char *id, const json_t *root)
{
	return path_op(req, id, root, SBX_FILE_MKDIR);
}

static int
api_delete(struct api_req *req, const char *id, const json_t *root)
{
	return path_op(req, id, root, SBX_FILE_DELETE);
}

static int
api_rename(struct api_req *req, const char *id, const json_t *root, const char *from_key,
	   const char *to_key)
{
	struct op o = { .req = req, .id = id };
	char from[SBX_FILE_PATH_MAX], to[SBX_FILE_PATH_MAX];
	struct sbx_file_req fr = { .op = SBX_FILE_RENAME, .path = from, .path2 = to, .fd = -1 };
	int status;

	if ((status = path_field(req, root, from_key, from)) ||
	    (status = path_field(req, root, to_key, to)) || (status = simple_op(&o, &fr)))
		return status;
	if (o.res.err)
		return file_error(req, o.res.err, o.res.err == ENOENT ? from : to);
	return api_send_json(req, 200,
			     sandboxes_ok(json_pack("{s:s, s:s}", "path", from, "newPath", to)));
}

static int
api_exists(struct api_req *req, const char *id, const json_t *root)
{
	struct op o = { .req = req, .id = id };
	char path[SBX_FILE_PATH_MAX];
	struct sbx_file_req fr = { .op = SBX_FILE_STAT, .path = path, .fd = -1 };
	int status;

	if ((status = path_field(req, root, "path", path)) || (status = simple_op(&o, &fr)))
		return status;
	if (o.res.err && o.res.err != ENOENT && o.res.err != ENOTDIR)
		return file_error(req, o.res.err, path);
	return api_send_json(
		req, 200,
		sandboxes_ok(json_pack("{s:s, s:b}", "path", path, "exists", o.res.err == 0)));
}

/* "rwxr-xr-x" */
static void
mode_string(uint32_t mode, char out[10])
{
	static const char rwx[] = "rwx";

	for (int i = 0; i < 9; i++)
		out[i] = mode & (1u << (8 - i)) ? rwx[i % 3] : '-';
	out[9] = '\0';
}

static const char *
type_name(uint32_t type)
{
	switch (type) {
	case SBX_FILE_REG: return "file";
	case SBX_FILE_DIR: return "directory";
	case SBX_FILE_LNK: return "symlink";
	}
	return "other";
}

struct entry {
	struct sbx_file_info info; /* copied: records sit at any offset */
	const char *name;	   /* not NUL-terminated: info.namelen bytes */
};

static int
by_name(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	size_t n = x->info.namelen < y->info.namelen ? x->info.namelen : y->info.namelen;
	int c = memcmp(x->name, y->name, n);

	return c ? c : (x->info.namelen > y->info.namelen) - (x->info.namelen < y->info.namelen);
}

static int
api_list(struct api_req *req, const char *id, const json_t *root)
{
	struct op o = { .req = req, .id = id };
	char path[SBX_FILE_PATH_MAX];
	const json_t *opts = json_object_get(root, "options");
	struct sbx_file_req fr = { .op = SBX_FILE_LIST, .path = path };
	struct entry *ents = NULL;
	size_t len = 0, n = 0, cap = 0;
	char *buf = NULL;
	json_t *files, *body;
	int status, e;

	if ((status = path_field(req, root, "path", path)))
		return status;
	bool rec[2], hidden[2];

	if (opts && !json_is_null(opts) && !json_is_object(opts))
		return api_error(req, 400, "VALIDATION_FAILED", NULL, "'options' is an object");
	if ((status = flag_field(req, opts, "recursive", &rec[0])) ||
	    (status = flag_field(req, root, "recursive", &rec[1])) ||
	    (status = flag_field(req, opts, "includeHidden", &hidden[0])) ||
	    (status = flag_field(req, root, "includeHidden", &hidden[1])))
		return status;
	if (rec[0] || rec[1])
		fr.flags |= SBX_FILE_RECURSIVE;
	if (hidden[0] || hidden[1])
		fr.flags |= SBX_FILE_HIDDEN;
	if ((status = op_start(&o, &fr)))
		return status;
	e = read_all(&o, LIST_BYTES_MAX, &buf, &len);
	if ((status = op_finish(&o))) {
		free(buf);
		return status;
	}
	if (e < 0 || (o.res.err && o.res.err != EOVERFLOW)) {
		free(buf);
		return file_error(req, e < 0 ? -e : o.res.err, path);
	}
	/* The records, checked: each name within what was sent, without a NUL. */
	for (size_t off = 0; off < len;) {
		struct sbx_file_info info;

		if (len - off < sizeof(info))
			break;
		memcpy(&info, buf + off, sizeof(info));
		if (info.namelen == 0 || info.namelen >= SBX_FILE_PATH_MAX ||
		    len - off - sizeof(info) < info.namelen ||
		    memchr(buf + off + sizeof(info), '\0', info.namelen))
			break;
		if (n == cap) {
			struct entry *more =
				realloc(ents, (cap = cap ? cap * 2 : 256) * sizeof(*ents));

			if (!more)
				break;
			ents = more;
		}
		ents[n++] = (struct entry){ info, buf + off + sizeof(info) };
		off += sizeof(info) + info.namelen;
	}
	qsort(ents, n, sizeof(*ents), by_name);
	files = json_array();
	for (size_t i = 0; i < n; i++) {
		const struct sbx_file_info *info = &ents[i].info;
		const char *rel = ents[i].name, *base = rel;
		char mode[10], when[32], *abs = NULL;
		int rlen = (int)info->namelen;

		for (int k = 0; k < rlen; k++)
			if (rel[k] == '/')
				base = rel + k + 1;
		mode_string(info->mode, mode);
		api_iso_time(info->mtime_ms, when);
		if (asprintf(&abs, "%s%s%.*s", path, path[strlen(path) - 1] == '/' ? "" : "/", rlen,
			     rel) < 0)
			break;
		json_array_append_new(
			files,
			json_pack("{s:o, s:o, s:o, s:s, s:I, s:s, s:s, s:{s:b, s:b, s:b}}", "name",
				  name_json(base, (size_t)(rel + rlen - base)), "absolutePath",
				  name_json(abs, strlen(abs)), "relativePath",
				  name_json(rel, (size_t)rlen), "type", type_name(info->type),
				  "size", (json_int_t)info->size, "modifiedAt", when, "mode", mode,
				  "permissions", "readable", (info->perms & SBX_FILE_PERM_R) != 0,
				  "writable", (info->perms & SBX_FILE_PERM_W) != 0, "executable",
				  (info->perms & SBX_FILE_PERM_X) != 0));
		free(abs);
	}
	free(ents);
	free(buf);
	body = sandboxes_ok(json_pack("{s:s, s:o, s:I, s:b}", "path", path, "files", files, "count",
				      (json_int_t)json_array_size(files), "truncated",
				      o.res.err == EOVERFLOW));
	return api_send_json(req, 200, body);
}

/* GET /files/{path}: the bytes, with their type and length. */
static int
raw_get(struct api_req *req, const char *id, const char *path)
{
	static char chunk[1 << 16];
	struct op o = { .req = req, .id = id };
	struct sbx_file_meta meta;
	char headers[128] = "";
	bool text;
	ssize_t n;
	int status;

	if ((status = read_start(&o, path, UINT64_MAX, &meta)))
		return status;
	/* The type by name; without one, by the first bytes. */
	n = read_full(&o, chunk, sizeof(chunk));
	text = n >= 0 && is_text((unsigned char *)chunk, (size_t)n, (size_t)n == sizeof(chunk));
	/* What the sandbox wrote is not the API's page: shown in a browser, an
	 * HTML or SVG file runs no script and reaches nothing of this origin. */
	snprintf(headers, sizeof(headers), "Content-Security-Policy: sandbox\r\n");
	if (meta.info.size > 0)
		snprintf(headers + strlen(headers), sizeof(headers) - strlen(headers),
			 "Content-Length: %llu\r\n", (unsigned long long)meta.info.size);
	if (api_raw_begin(req, 200, mime_of(path, text), headers) < 0) {
		op_abandon(&o);
		return 200;
	}
	while (n > 0) {
		if (api_raw_write(req, chunk, (size_t)n) < 0) {
			op_abandon(&o);
			return 200;
		}
		n = read_full(&o, chunk, sizeof(chunk));
	}
	/* A failure now cannot change the status: the length falls short, and
	 * nginx ends the response as broken. */
	if (op_end(&o) == 0 && o.res.err)
		log_warn("req %s: GET %s: %s", req->id, path, strerror(o.res.err));
	return 200;
}

/* PUT /files/{path}: the body (up to the request size limit) replaces it. */
static int
raw_put(struct api_req *req, const char *id, const char *path)
{
	int status = write_bytes(req, id, path, req->body ? req->body : "", req->body_len);

	if (status)
		return status;
	return api_send_json(req, 200,
			     sandboxes_ok(json_pack("{s:s, s:I}", "path", path, "size",
						    (json_int_t)req->body_len)));
}

static const struct {
	const char *path;
	int (*fn)(struct api_req *, const char *, const json_t *);
} json_routes[] = {
	{ "/api/write", api_write },
	{ "/api/read", api_read },
	{ "/api/read/stream", api_read_stream },
	{ "/api/mkdir", api_mkdir },
	{ "/api/delete", api_delete },
	{ "/api/exists", api_exists },
	{ "/api/list-files", api_list },
};

int
files_route(struct api_req *req, const char *id, const char *rest)
{
	if (strncmp(rest, "/files/", 7) == 0) {
		char path[SBX_FILE_PATH_MAX];
		int n = snprintf(path, sizeof(path), "/workspace/%s", rest + 7);

		if (n < 0 || (size_t)n >= sizeof(path) || !rest[7])
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "the path after /files/ is empty or too long");
		if (!is_text((const unsigned char *)path, (size_t)n, false))
			return api_error(req, 400, "VALIDATION_FAILED", NULL,
					 "the path after /files/ is not UTF-8");
		if (strcmp(req->method, "GET") == 0)
			return raw_get(req, id, path);
		if (strcmp(req->method, "PUT") == 0)
			return raw_put(req, id, path);
		return sandboxes_only(req, "GET, PUT");
	}
	for (size_t i = 0; i < sizeof(json_routes) / sizeof(json_routes[0]); i++) {
		json_t *root;
		int status;

		if (strcmp(rest, json_routes[i].path) != 0)
			continue;
		if (strcmp(req->method, "POST") != 0)
			return sandboxes_only(req, "POST");
		root = api_parse_body(req);
		if (!root)
			return 400;
		status = json_routes[i].fn(req, id, root);
		json_decref(root);
		return status;
	}
	if (strcmp(rest, "/api/rename") == 0 || strcmp(rest, "/api/move") == 0) {
		json_t *root;
		int status;

		if (strcmp(req->method, "POST") != 0)
			return sandboxes_only(req, "POST");
		root = api_parse_body(req);
		if (!root)
			return 400;
		status = strcmp(rest, "/api/rename") == 0
				 ? api_rename(req, id, root, "oldPath", "newPath")
				 : api_rename(req, id, root, "sourcePath", "destinationPath");
		json_decref(root);
		return status;
	}
	return 0;
}
