"""The file routes of a persistent sandbox: write and read (text, base64,
binary detection, MIME types, limits), read as a stream, mkdir, delete,
rename and move, exists, list-files, and raw GET/PUT under /files/; their
errors; paths relative to /workspace or absolute inside the sandbox;
ownership by the sandbox user; concurrent writes; a call that creates or
wakes its sandbox.

What the API did is checked from the other side too: with a command in the
sandbox, or on the host through the sandbox's workspace directory."""
import base64
import concurrent.futures
import datetime
import hashlib
import json
import os
import sys
import urllib.parse
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import sandboxes  # noqa: E402
from context import Context  # noqa: E402
from sandboxes import (api, assert_error, assert_ok, read_stream, sandbox, sessionless,  # noqa: E402
                       wait_asleep, workspace_dir)

# The commands of these tests run outside any session unless they name one.
output = sessionless(sandboxes.output)


# ---------------------------------------------------------------------------
# Helpers of this file's own (the shared ones are in tests/lib/sandboxes.py).

def _host(ctx, sid, rel):
    """The host path of /workspace/REL."""
    return os.path.join(workspace_dir(ctx, sid), rel)


def _host_bytes(ctx, sid, rel):
    with open(_host(ctx, sid, rel), "rb") as f:
        return f.read()


def _write(ctx, sid, path, content, **kw):
    body = {"path": path, "content": content}
    body.update(kw)
    status, res = api(ctx, sid, "write", body)
    assert_ok(status, res)
    return res


def _write_bytes(ctx, sid, path, data):
    return _write(ctx, sid, path, base64.b64encode(data).decode(), encoding="base64")


def _read(ctx, sid, path, **kw):
    body = {"path": path}
    body.update(kw)
    status, res = api(ctx, sid, "read", body)
    assert_ok(status, res)
    return res


def _read_stream(ctx, sid, body):
    """read_stream, with the body of an error decoded as JSON."""
    status, ctype, got = read_stream(ctx, sid, body)
    return status, ctype, (got if status == 200 else json.loads(got))


def _mime(headers):
    return headers.get("content-type", "").split(";")[0].strip()


# ---------------------------------------------------------------------------
# write and read.

def test_write_then_read_text(ctx):
    with sandbox(ctx) as sid:
        text = "h\u00e9llo, w\u00f6rld \u2603\nsecond line\n"
        res = _write(ctx, sid, "hello.txt", text)
        assert res["path"] == "/workspace/hello.txt", res
        res = _read(ctx, sid, "hello.txt")
        assert res["path"] == "/workspace/hello.txt" and res["content"] == text, res
        assert res["encoding"] == "utf-8" and res["isBinary"] is False, res
        assert res["mimeType"] == "text/plain" and res["size"] == len(text.encode()), res
        # The same bytes as the sandbox and the host see them.
        assert output(ctx, sid, "cat hello.txt") == text
        assert _host_bytes(ctx, sid, "hello.txt") == text.encode()
        # An absolute path inside /workspace is the same file.
        assert _read(ctx, sid, "/workspace/hello.txt")["content"] == text


def test_file_call_creates_the_sandbox_lazily(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("GET", f"/v1/sandboxes/{sid}")
        assert status == 404, body
        _write(ctx, sid, "first.txt", "made by the file API\n")
        status, body = ctx.json("GET", f"/v1/sandboxes/{sid}")
        assert status == 200 and body["state"] == "running", body
        assert output(ctx, sid, "cat first.txt") == "made by the file API\n"


def test_written_files_belong_to_the_sandbox_user(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "mine.txt", "x")
        _write(ctx, sid, "/tmp/mine.txt", "x")
        assert output(ctx, sid, "stat -c %u:%g mine.txt /tmp/mine.txt") == "1000:1000\n1000:1000\n"


def test_write_base64_and_read_binary(ctx):
    with sandbox(ctx) as sid:
        data = bytes(range(256)) * 4 + b"\0tail\xff"
        res = _write_bytes(ctx, sid, "blob.bin", data)
        assert res["path"] == "/workspace/blob.bin", res
        assert _host_bytes(ctx, sid, "blob.bin") == data
        res = _read(ctx, sid, "blob.bin")
        assert res["encoding"] == "base64" and res["isBinary"] is True, res
        assert base64.b64decode(res["content"]) == data and res["size"] == len(data), res
        assert res["mimeType"] == "application/octet-stream", res


def test_read_forced_base64_of_text(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "plain.txt", "just text\n")
        res = _read(ctx, sid, "plain.txt", encoding="base64")
        assert res["encoding"] == "base64" and base64.b64decode(res["content"]) == b"just text\n", res
        assert res["size"] == 10 and res["mimeType"] == "text/plain", res
        res = _read(ctx, sid, "plain.txt", encoding="utf-8")
        assert res["encoding"] == "utf-8" and res["content"] == "just text\n", res


def test_read_detects_invalid_utf8_and_nul_as_binary(ctx):
    with sandbox(ctx) as sid:
        for name, data in (("bad-utf8.txt", b"caf\xe9 latin-1\n"), ("nul.txt", b"text\0with a NUL\n"),
                           ("cut.txt", "\u00e9".encode()[:1])):
            _write_bytes(ctx, sid, name, data)
            res = _read(ctx, sid, name)
            assert res["isBinary"] is True and res["encoding"] == "base64", (name, res)
            assert base64.b64decode(res["content"]) == data, (name, res)
            # The extension still names the type.
            assert res["mimeType"] == "text/plain", (name, res)


def test_read_empty_file(ctx):
    with sandbox(ctx) as sid:
        res = _write(ctx, sid, "empty.txt", "")
        assert res["path"] == "/workspace/empty.txt", res
        assert _host_bytes(ctx, sid, "empty.txt") == b""
        res = _read(ctx, sid, "empty.txt")
        assert res["content"] == "" and res["size"] == 0 and res["isBinary"] is False, res
        assert res["encoding"] == "utf-8", res


def test_read_mime_types(ctx):
    with sandbox(ctx) as sid:
        png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(16)
        cases = [("a.txt", "text", "text/plain"), ("a.json", '{"a": 1}', "application/json"),
                 ("a.png", png, "image/png"), ("a.html", "<p>hi</p>", "text/html"),
                 ("a.py", "print(1)\n", "text/x-python"), ("a.js", "let a = 1;\n", "text/javascript"),
                 ("a.csv", "a,b\n1,2\n", "text/csv"), ("notes", "no extension\n", "text/plain"),
                 ("data.unknownext", "some text\n", "text/plain"),
                 ("blob.unknownext", b"\0\1\2\xff", "application/octet-stream"),
                 ("noext-binary", b"\xff\xfe\0", "application/octet-stream")]
        for name, content, mime in cases:
            if isinstance(content, bytes):
                _write_bytes(ctx, sid, name, content)
            else:
                _write(ctx, sid, name, content)
            res = _read(ctx, sid, name)
            assert res["mimeType"] == mime, (name, res)
            assert res["isBinary"] is isinstance(content, bytes), (name, res)


def test_write_replaces_existing_content(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "r.txt", "a long first version of the file\n")
        _write(ctx, sid, "r.txt", "short\n")
        assert _read(ctx, sid, "r.txt")["content"] == "short\n"
        assert _host_bytes(ctx, sid, "r.txt") == b"short\n"


def test_failed_write_leaves_the_old_content(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "keep.txt", "old content\n")
        for bad in ("!!!not base64!!!", "YW*j", "caf\u00e9"):
            status, body = api(ctx, sid, "write", {"path": "keep.txt", "content": bad, "encoding": "base64"})
            assert_error(status, body, 400, "VALIDATION_FAILED")
        assert _host_bytes(ctx, sid, "keep.txt") == b"old content\n"
        assert _read(ctx, sid, "keep.txt")["content"] == "old content\n"
        # No temporary file was left beside it.
        assert sorted(os.listdir(workspace_dir(ctx, sid))) == ["keep.txt"], os.listdir(workspace_dir(ctx, sid))


def test_write_errors(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "mkdir adir; echo f > afile")
        cases = [
            ({"path": "nodir/x.txt", "content": "x"}, 404, "FILE_NOT_FOUND"),
            ({"path": "adir", "content": "x"}, 400, "IS_DIRECTORY"),
            ({"path": "/tmp", "content": "x"}, 400, "IS_DIRECTORY"),
            ({"path": "afile/x.txt", "content": "x"}, 400, "NOT_DIRECTORY"),
            ({"path": "/usr/x.txt", "content": "x"}, 403, "PERMISSION_DENIED"),
            ({"path": "/usr/bin/python3", "content": "x"}, 403, "PERMISSION_DENIED"),
            ({"path": "/etc/x.txt", "content": "x"}, 403, "PERMISSION_DENIED"),
            ({"path": "/etc/hostname", "content": "x"}, 403, "PERMISSION_DENIED"),
            ({"content": "x"}, 400, "VALIDATION_FAILED"),
            ({"path": "x.txt"}, 400, "VALIDATION_FAILED"),
            ({"path": "", "content": "x"}, 400, "VALIDATION_FAILED"),
            ({"path": 5, "content": "x"}, 400, "VALIDATION_FAILED"),
            ({"path": "x.txt", "content": 5}, 400, "VALIDATION_FAILED"),
            ({"path": "x.txt", "content": None}, 400, "VALIDATION_FAILED"),
            ({"path": "x.txt", "content": "x", "encoding": "utf-16"}, 400, "VALIDATION_FAILED"),
            # An existing file in a read-only /proc mount.
            ({"path": "/proc/sys/kernel/hostname", "content": "x"}, 403, "PERMISSION_DENIED"),
        ]
        wrong = []
        for body, want_status, want_code in cases:
            status, res = api(ctx, sid, "write", body)
            try:
                assert_error(status, res, want_status, want_code)
            except AssertionError as e:
                wrong.append(f"write {body}: {e}")
        # None of them changed anything.
        assert output(ctx, sid, "cat afile; ls -A | sort; cat /etc/hostname") == f"f\nadir\nafile\n{sid}\n"
        assert output(ctx, sid, "[ -e /usr/x.txt ] || [ -e /etc/x.txt ] || echo none") == "none\n"
        assert not wrong, "\n".join(wrong)


def test_absolute_paths_are_inside_the_sandbox(ctx):
    with sandbox(ctx) as sid:
        name = f"abs-{uuid.uuid4().hex[:8]}.txt"
        res = _write(ctx, sid, f"/tmp/{name}", "in the sandbox's /tmp\n")
        assert res["path"] == f"/tmp/{name}", res
        assert output(ctx, sid, f"cat /tmp/{name}") == "in the sandbox's /tmp\n"
        assert not os.path.exists(f"/tmp/{name}"), "the write reached the host's /tmp"
        # /etc is the sandbox's own: its hostname is the sandbox ID.
        res = _read(ctx, sid, "/etc/hostname")
        assert res["content"] == f"{sid}\n" and res["path"] == "/etc/hostname", res
        assert _read(ctx, sid, "/usr/bin/true")["isBinary"] is True


def test_read_errors(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "mkdir adir; echo f > afile; truncate -s 33M big.bin")
        cases = [
            ({"path": "missing.txt"}, 404, "FILE_NOT_FOUND"),
            ({"path": "adir/missing.txt"}, 404, "FILE_NOT_FOUND"),
            ({"path": "/no/such/dir/x"}, 404, "FILE_NOT_FOUND"),
            ({"path": "adir"}, 400, "IS_DIRECTORY"),
            ({"path": "/tmp"}, 400, "IS_DIRECTORY"),
            ({"path": "big.bin"}, 413, "FILE_TOO_LARGE"),
            ({}, 400, "VALIDATION_FAILED"),
            ({"path": ""}, 400, "VALIDATION_FAILED"),
            ({"path": ["afile"]}, 400, "VALIDATION_FAILED"),
            ({"path": "afile", "encoding": "latin-1"}, 400, "VALIDATION_FAILED"),
        ]
        wrong = []
        for body, want_status, want_code in cases:
            status, res = api(ctx, sid, "read", body)
            try:
                assert_error(status, res, want_status, want_code)
            except AssertionError as e:
                wrong.append(f"read {body}: {e}")
        assert not wrong, "\n".join(wrong)


# ---------------------------------------------------------------------------
# read/stream.

def test_read_stream_text(ctx):
    with sandbox(ctx) as sid:
        # 300 KB of two-byte characters: several chunks, none may cut a character.
        output(ctx, sid, "python3 -c \"import sys; sys.stdout.write('\\u00e9' * 150000 + 'end\\n')\" > big.txt")
        want = _host_bytes(ctx, sid, "big.txt")
        assert len(want) == 300004
        status, ctype, events = _read_stream(ctx, sid, {"path": "big.txt"})
        assert status == 200 and ctype.startswith("text/event-stream"), (status, ctype, events)
        meta, chunks, end = events[0], events[1:-1], events[-1]
        assert meta == {**meta, "type": "metadata", "mimeType": "text/plain", "size": len(want),
                        "isBinary": False, "encoding": "utf-8"}, meta
        assert chunks and all(c["type"] == "chunk" for c in chunks), events[:3]
        assert "".join(c["data"] for c in chunks) == want.decode(), "the streamed text differs"
        assert end == {**end, "type": "complete", "bytesRead": len(want)}, end


def test_read_stream_binary(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "head -c 200000 /dev/urandom > r.bin")
        want = _host_bytes(ctx, sid, "r.bin")
        status, ctype, events = _read_stream(ctx, sid, {"path": "r.bin"})
        assert status == 200 and ctype.startswith("text/event-stream"), (status, ctype, events)
        meta, chunks, end = events[0], events[1:-1], events[-1]
        assert meta == {**meta, "type": "metadata", "mimeType": "application/octet-stream",
                        "size": len(want), "isBinary": True, "encoding": "base64"}, meta
        assert chunks and all(c["type"] == "chunk" for c in chunks), events[:3]
        got = b"".join(base64.b64decode(c["data"]) for c in chunks)
        assert got == want, f"streamed {len(got)} bytes, not the file's {len(want)}"
        assert end == {**end, "type": "complete", "bytesRead": len(want)}, end


def test_read_stream_of_an_empty_file(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, ": > empty.txt")
        status, ctype, events = _read_stream(ctx, sid, {"path": "empty.txt"})
        assert status == 200, (status, events)
        assert events[0]["type"] == "metadata" and events[0]["size"] == 0, events
        assert "".join(e["data"] for e in events if e["type"] == "chunk") == "", events
        assert events[-1] == {**events[-1], "type": "complete", "bytesRead": 0}, events


def test_read_stream_errors_are_plain_json(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true")
        status, ctype, body = _read_stream(ctx, sid, {"path": "missing.txt"})
        assert ctype.startswith("application/json"), ctype
        assert_error(status, body, 404, "FILE_NOT_FOUND")
        status, ctype, body = _read_stream(ctx, sid, {})
        assert_error(status, body, 400, "VALIDATION_FAILED")


# ---------------------------------------------------------------------------
# mkdir, delete, rename, move, exists.

def test_mkdir(ctx):
    with sandbox(ctx) as sid:
        status, res = api(ctx, sid, "mkdir", {"path": "d1"})
        assert_ok(status, res)
        assert res["path"] == "/workspace/d1" and res["recursive"] is False, res
        assert os.path.isdir(_host(ctx, sid, "d1"))
        assert output(ctx, sid, "stat -c %u:%F d1") == "1000:directory\n"
        status, res = api(ctx, sid, "mkdir", {"path": "d1"})
        assert_error(status, res, 409, "FILE_EXISTS")
        _write(ctx, sid, "f.txt", "x")
        status, res = api(ctx, sid, "mkdir", {"path": "f.txt"})
        assert_error(status, res, 409, "FILE_EXISTS")
        status, res = api(ctx, sid, "mkdir", {"path": "a/b/c"})
        assert_error(status, res, 404, "FILE_NOT_FOUND")
        assert not os.path.exists(_host(ctx, sid, "a"))
        for bad in ({}, {"path": ""}, {"path": 3}):
            status, res = api(ctx, sid, "mkdir", bad)
            assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = api(ctx, sid, "mkdir", {"path": "/usr/newdir"})
        assert_error(status, res, 403, "PERMISSION_DENIED")


def test_mkdir_recursive(ctx):
    with sandbox(ctx) as sid:
        status, res = api(ctx, sid, "mkdir", {"path": "a/b/c", "recursive": True})
        assert_ok(status, res)
        assert res["path"] == "/workspace/a/b/c" and res["recursive"] is True, res
        assert os.path.isdir(_host(ctx, sid, "a/b/c"))
        assert output(ctx, sid, "stat -c %u a a/b a/b/c") == "1000\n1000\n1000\n"
        # Like mkdir -p: an existing directory is fine.
        status, res = api(ctx, sid, "mkdir", {"path": "a/b", "recursive": True})
        assert_ok(status, res)
        status, res = api(ctx, sid, "mkdir", {"path": "/tmp/x/y", "recursive": True})
        assert_ok(status, res)
        assert output(ctx, sid, "[ -d /tmp/x/y ] && echo dir") == "dir\n"


def test_delete_file(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "f.txt", "x")
        status, res = api(ctx, sid, "delete", {"path": "f.txt"})
        assert_ok(status, res)
        assert res["path"] == "/workspace/f.txt", res
        assert not os.path.lexists(_host(ctx, sid, "f.txt"))
        status, res = api(ctx, sid, "delete", {"path": "f.txt"})
        assert_error(status, res, 404, "FILE_NOT_FOUND")
        for bad in ({}, {"path": ""}, {"path": None}):
            status, res = api(ctx, sid, "delete", bad)
            assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = api(ctx, sid, "delete", {"path": "/usr/bin/python3"})
        assert_error(status, res, 403, "PERMISSION_DENIED")
        assert output(ctx, sid, "[ -x /usr/bin/python3 ] && echo there") == "there\n"


def test_delete_directory_needs_recursive(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "mkdir -p d/x/y && echo 1 > d/x/y/f && echo 2 > d/.hidden && mkdir empty")
        status, res = api(ctx, sid, "delete", {"path": "d"})
        assert_error(status, res, 400, "IS_DIRECTORY")
        status, res = api(ctx, sid, "delete", {"path": "d", "recursive": False})
        assert_error(status, res, 400, "IS_DIRECTORY")
        assert os.path.isfile(_host(ctx, sid, "d/x/y/f"))
        status, res = api(ctx, sid, "delete", {"path": "d", "recursive": True})
        assert_ok(status, res)
        assert res["path"] == "/workspace/d", res
        assert not os.path.lexists(_host(ctx, sid, "d"))
        status, res = api(ctx, sid, "delete", {"path": "empty", "recursive": True})
        assert_ok(status, res)
        assert sorted(os.listdir(workspace_dir(ctx, sid))) == []


def test_delete_never_takes_a_filesystem_root(ctx):
    """However the path is spelled, /workspace, /tmp and / stay, with what is
    in them."""
    with sandbox(ctx) as sid:
        assert output(ctx, sid, "mkdir -p sub && echo x > sub/f && echo y > /tmp/t") == ""
        for path in (".", "sub/..", "/workspace//", "/workspace/.", "/tmp/", "/tmp/../", "/"):
            status, body = api(ctx, sid, "delete", {"path": path, "recursive": True})
            assert_error(status, body, 400, "VALIDATION_FAILED")
        assert output(ctx, sid, "cat sub/f /tmp/t") == "x\ny\n"


def test_delete_symlink_keeps_its_target(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "mkdir keepdir && echo keep > keepdir/k.txt && echo t > target.txt && "
                         "ln -s target.txt flink && ln -s keepdir dlink && ln -s /workspace/keepdir adlink")
        status, res = api(ctx, sid, "delete", {"path": "flink"})
        assert_ok(status, res)
        for link in ("dlink", "adlink"):
            status, res = api(ctx, sid, "delete", {"path": link, "recursive": True})
            assert_ok(status, res)
        for link in ("flink", "dlink", "adlink"):
            assert not os.path.lexists(_host(ctx, sid, link)), link
        assert _host_bytes(ctx, sid, "target.txt") == b"t\n"
        assert _host_bytes(ctx, sid, "keepdir/k.txt") == b"keep\n"


def test_rename(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "a.txt", "A\n")
        status, res = api(ctx, sid, "rename", {"oldPath": "a.txt", "newPath": "b.txt"})
        assert_ok(status, res)
        assert res["path"] == "/workspace/a.txt" and res["newPath"] == "/workspace/b.txt", res
        assert not os.path.lexists(_host(ctx, sid, "a.txt"))
        assert _host_bytes(ctx, sid, "b.txt") == b"A\n"
        output(ctx, sid, "mkdir -p dir1/sub && echo in > dir1/sub/f")
        status, res = api(ctx, sid, "rename", {"oldPath": "dir1", "newPath": "/workspace/dir2"})
        assert_ok(status, res)
        assert res["newPath"] == "/workspace/dir2", res
        assert output(ctx, sid, "cat dir2/sub/f; [ -e dir1 ] || echo dir1-gone") == "in\ndir1-gone\n"


def test_move(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "m.txt", "M\n")
        output(ctx, sid, "mkdir dest && mkdir -p tree/a && echo deep > tree/a/f")
        status, res = api(ctx, sid, "move", {"sourcePath": "m.txt", "destinationPath": "dest/moved.txt"})
        assert_ok(status, res)
        assert res["path"] == "/workspace/m.txt" and res["newPath"] == "/workspace/dest/moved.txt", res
        assert _host_bytes(ctx, sid, "dest/moved.txt") == b"M\n"
        assert not os.path.lexists(_host(ctx, sid, "m.txt"))
        status, res = api(ctx, sid, "move", {"sourcePath": "tree", "destinationPath": "dest/tree"})
        assert_ok(status, res)
        assert _host_bytes(ctx, sid, "dest/tree/a/f") == b"deep\n"
        assert not os.path.lexists(_host(ctx, sid, "tree"))


def test_move_across_filesystems(ctx):
    """/workspace and /tmp are different filesystems in the sandbox: a move
    between them is a copy and a delete, not a rename(2) that fails with EXDEV."""
    with sandbox(ctx) as sid:
        _write(ctx, sid, "x.txt", "crossing\n")
        status, res = api(ctx, sid, "move", {"sourcePath": "x.txt", "destinationPath": "/tmp/x.txt"})
        assert_ok(status, res)
        assert res["newPath"] == "/tmp/x.txt", res
        assert output(ctx, sid, "cat /tmp/x.txt; [ -e x.txt ] || echo gone") == "crossing\ngone\n"
        status, res = api(ctx, sid, "move", {"sourcePath": "/tmp/x.txt", "destinationPath": "back.txt"})
        assert_ok(status, res)
        assert _host_bytes(ctx, sid, "back.txt") == b"crossing\n"
        assert output(ctx, sid, "stat -c %u back.txt") == "1000\n"


def test_rename_and_move_errors(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "here.txt", "x")
        status, res = api(ctx, sid, "rename", {"oldPath": "missing.txt", "newPath": "b.txt"})
        assert_error(status, res, 404, "FILE_NOT_FOUND")
        status, res = api(ctx, sid, "move", {"sourcePath": "missing.txt", "destinationPath": "b.txt"})
        assert_error(status, res, 404, "FILE_NOT_FOUND")
        for bad in ({}, {"oldPath": "here.txt"}, {"newPath": "b.txt"}, {"oldPath": 1, "newPath": "b.txt"},
                    {"sourcePath": "here.txt", "destinationPath": "b.txt"}):
            status, res = api(ctx, sid, "rename", bad)
            assert_error(status, res, 400, "VALIDATION_FAILED")
        for bad in ({}, {"sourcePath": "here.txt"}, {"destinationPath": "b.txt"},
                    {"sourcePath": "here.txt", "destinationPath": None},
                    {"oldPath": "here.txt", "newPath": "b.txt"}):
            status, res = api(ctx, sid, "move", bad)
            assert_error(status, res, 400, "VALIDATION_FAILED")
        status, res = api(ctx, sid, "move", {"sourcePath": "here.txt", "destinationPath": "/usr/here.txt"})
        assert_error(status, res, 403, "PERMISSION_DENIED")
        assert sorted(os.listdir(workspace_dir(ctx, sid))) == ["here.txt"]


def test_exists(ctx):
    with sandbox(ctx) as sid:
        _write(ctx, sid, "e.txt", "x")
        output(ctx, sid, "mkdir edir")
        for path, want_path, want in (("e.txt", "/workspace/e.txt", True), ("edir", "/workspace/edir", True),
                                      ("/usr/bin/python3", "/usr/bin/python3", True),
                                      ("nope", "/workspace/nope", False),
                                      ("nope/deeper", "/workspace/nope/deeper", False),
                                      ("e.txt/under-a-file", "/workspace/e.txt/under-a-file", False)):
            status, res = api(ctx, sid, "exists", {"path": path})
            assert_ok(status, res)
            assert res["exists"] is want and res["path"] == want_path, (path, res)
        for bad in ({}, {"path": ""}, {"path": 1}):
            status, res = api(ctx, sid, "exists", bad)
            assert_error(status, res, 400, "VALIDATION_FAILED")


# ---------------------------------------------------------------------------
# list-files.

_TREE = ("mkdir -p tree/sub && cd tree && printf hello > a.txt && chmod 644 a.txt && "
         "printf '#!/bin/sh\\n' > script.sh && chmod 755 script.sh && printf x > ro.txt && chmod 400 ro.txt && "
         "echo h > .hidden && echo b > sub/b.py && echo h2 > sub/.h2 && chmod 755 sub && "
         "ln -s a.txt link && ln -s sub dirlink && ln -s . loop && mkfifo fifo")


def _list(ctx, sid, path, **options):
    body = {"path": path}
    if options:
        body["options"] = options
    status, res = api(ctx, sid, "list-files", body)
    assert_ok(status, res)
    assert isinstance(res["files"], list) and res["count"] == len(res["files"]), res
    return res


def test_list_files_entries(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, _TREE)
        res = _list(ctx, sid, "tree")
        assert res["path"] == "/workspace/tree", res
        by_name = {f["name"]: f for f in res["files"]}
        assert set(by_name) == {"a.txt", "script.sh", "ro.txt", "sub", "link", "dirlink", "loop", "fifo"}, by_name
        types = {n: f["type"] for n, f in by_name.items()}
        assert types == {"a.txt": "file", "script.sh": "file", "ro.txt": "file", "sub": "directory",
                         "link": "symlink", "dirlink": "symlink", "loop": "symlink", "fifo": "other"}, types
        a = by_name["a.txt"]
        assert a["absolutePath"] == "/workspace/tree/a.txt" and a["relativePath"] == "a.txt", a
        assert a["size"] == 5 and a["mode"] == "rw-r--r--", a
        assert a["permissions"] == {"readable": True, "writable": True, "executable": False}, a
        mtime = datetime.datetime.fromisoformat(a["modifiedAt"].replace("Z", "+00:00")).timestamp()
        host_mtime = os.stat(_host(ctx, sid, "tree/a.txt")).st_mtime
        assert abs(mtime - host_mtime) < 1.5, (a["modifiedAt"], host_mtime)
        s = by_name["script.sh"]
        assert s["mode"] == "rwxr-xr-x" and s["permissions"]["executable"] is True, s
        # Seen as the sandbox user (its owner) sees it: not writable.
        r = by_name["ro.txt"]
        assert r["mode"] == "r--------", r
        assert r["permissions"] == {"readable": True, "writable": False, "executable": False}, r
        assert by_name["sub"]["mode"] == "rwxr-xr-x" and by_name["sub"]["relativePath"] == "sub", by_name["sub"]
        # Relative to /workspace by default, the same listing.
        again = _list(ctx, sid, "/workspace/tree")
        assert sorted(f["name"] for f in again["files"]) == sorted(by_name), again


def test_list_files_hidden_and_recursive(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, _TREE)
        top = {"a.txt", "script.sh", "ro.txt", "sub", "link", "dirlink", "loop", "fifo"}
        res = _list(ctx, sid, "tree", includeHidden=True)
        assert {f["relativePath"] for f in res["files"]} == top | {".hidden"}, res
        # Recursive: into sub, but never through the links (dirlink, loop).
        res = _list(ctx, sid, "tree", recursive=True)
        rel = {f["relativePath"] for f in res["files"]}
        assert rel == top | {"sub/b.py"}, rel
        b = [f for f in res["files"] if f["relativePath"] == "sub/b.py"][0]
        assert b["name"] == "b.py" and b["absolutePath"] == "/workspace/tree/sub/b.py" and b["type"] == "file", b
        res = _list(ctx, sid, "tree", recursive=True, includeHidden=True)
        rel = {f["relativePath"] for f in res["files"]}
        assert rel == top | {"sub/b.py", ".hidden", "sub/.h2"}, rel


def test_list_files_errors(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "echo f > afile")
        status, res = api(ctx, sid, "list-files", {"path": "afile"})
        assert_error(status, res, 400, "NOT_DIRECTORY")
        status, res = api(ctx, sid, "list-files", {"path": "nope"})
        assert_error(status, res, 404, "FILE_NOT_FOUND")
        for bad in ({}, {"path": 1}):
            status, res = api(ctx, sid, "list-files", bad)
            assert_error(status, res, 400, "VALIDATION_FAILED")


def test_option_flags_must_be_booleans(ctx):
    """A field of the wrong type is VALIDATION_FAILED (docs/API.md, error
    codes), the flags included: "yes" or 1 is not silently taken as true or false."""
    with sandbox(ctx) as sid:
        output(ctx, sid, "mkdir d && echo f > d/f")
        wrong = []
        for route, body in (("mkdir", {"path": "x", "recursive": "yes"}),
                            ("mkdir", {"path": "y/z", "recursive": 1}),
                            ("delete", {"path": "d", "recursive": 1}),
                            ("delete", {"path": "d", "recursive": "true"}),
                            ("list-files", {"path": ".", "options": "recursive"}),
                            ("list-files", {"path": ".", "options": {"recursive": "yes"}}),
                            ("list-files", {"path": ".", "options": {"includeHidden": 1}})):
            status, res = api(ctx, sid, route, body)
            try:
                assert_error(status, res, 400, "VALIDATION_FAILED")
            except AssertionError as e:
                wrong.append(f"{route} {body}: {e}")
        assert not wrong, "\n".join(wrong)
        assert sorted(os.listdir(workspace_dir(ctx, sid))) == ["d"] and os.path.isfile(_host(ctx, sid, "d/f"))


# ---------------------------------------------------------------------------
# Raw GET/PUT under /files/.

def test_raw_put_and_get(ctx):
    with sandbox(ctx) as sid:
        status, res = api(ctx, sid, "mkdir", {"path": "dir"})
        assert_ok(status, res)
        url = f"/v1/sandboxes/{sid}/files/" + urllib.parse.quote("dir/a b.txt")
        assert url.endswith("/files/dir/a%20b.txt"), url
        status, _, data = ctx.request("PUT", url, b"raw body\n", {"Content-Type": "application/octet-stream"})
        res = json.loads(data)
        assert status == 200 and res["success"] is True, (status, res)
        assert res["path"] == "/workspace/dir/a b.txt" and res["size"] == 9, res
        assert _host_bytes(ctx, sid, "dir/a b.txt") == b"raw body\n"
        assert output(ctx, sid, "stat -c %u 'dir/a b.txt'") == "1000\n"
        status, headers, data = ctx.request("GET", url)
        assert status == 200 and data == b"raw body\n", (status, data[:200])
        assert _mime(headers) == "text/plain" and headers.get("content-length") == "9", headers
        # What the sandbox wrote runs no script on the API's origin.
        assert headers.get("content-security-policy") == "sandbox", headers
        # Replacing, and a type from the extension.
        status, _, data = ctx.request("PUT", f"/v1/sandboxes/{sid}/files/dir/v.json", b'{"v": 2}',
                                      {"Content-Type": "application/octet-stream"})
        assert status == 200, data
        status, headers, data = ctx.request("GET", f"/v1/sandboxes/{sid}/files/dir/v.json")
        assert status == 200 and data == b'{"v": 2}' and _mime(headers) == "application/json", (headers, data)
        status, _, data = ctx.request("PUT", url, b"v2", {"Content-Type": "application/octet-stream"})
        assert status == 200 and json.loads(data)["size"] == 2, data
        status, headers, data = ctx.request("GET", url)
        assert status == 200 and data == b"v2", data


def test_a_huge_listing_is_cut_not_hung(ctx):
    """Names long enough to pass the cap on a listing's records (16 MiB):
    the listing answers, truncated, and the sandbox goes on."""
    with sandbox(ctx) as sid:
        deep = "/".join(["d" * 250] * 15)
        res = sandboxes.execute(ctx, sid, f"mkdir -p {deep} && cd {deep} && "
                                          "seq -f 'f%06g' 6000 | xargs touch && echo made",
                                sessionId=sandboxes.NO_SESSION)
        assert res["stdout"] == "made\n", res
        status, body = api(ctx, sid, "list-files", {"path": "/workspace", "options": {"recursive": True}})
        assert_ok(status, body)
        assert body["truncated"] is True and 0 < body["count"] < 6015, (body["count"], body["truncated"])
        assert output(ctx, sid, "echo alive") == "alive\n"


def test_raw_get_errors(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "mkdir dir")
        status, headers, data = ctx.request("GET", f"/v1/sandboxes/{sid}/files/missing.txt")
        assert _mime(headers) == "application/json", headers
        assert_error(status, json.loads(data), 404, "FILE_NOT_FOUND")
        status, headers, data = ctx.request("GET", f"/v1/sandboxes/{sid}/files/dir")
        assert_error(status, json.loads(data), 400, "IS_DIRECTORY")
        status, _, data = ctx.request("PUT", f"/v1/sandboxes/{sid}/files/dir", b"x",
                                      {"Content-Type": "application/octet-stream"})
        assert_error(status, json.loads(data), 400, "IS_DIRECTORY")
        assert os.path.isdir(_host(ctx, sid, "dir"))
        # A body over the request limit (32 MiB) never reaches the sandbox.
        status, _, data = ctx.request("PUT", f"/v1/sandboxes/{sid}/files/huge.bin", b"\0" * (33 << 20),
                                      {"Content-Type": "application/octet-stream"})
        assert status == 413 and json.loads(data)["code"] == "PAYLOAD_TOO_LARGE", (status, data[:200])
        assert output(ctx, sid, "ls huge.bin 2>&1 || true").startswith("ls: cannot access"), "written anyway"


def test_raw_roundtrip_of_5_mib_random_bytes(ctx):
    with sandbox(ctx) as sid:
        data = os.urandom(5 << 20)
        url = f"/v1/sandboxes/{sid}/files/big.bin"
        status, _, body = ctx.request("PUT", url, data, {"Content-Type": "application/octet-stream"})
        res = json.loads(body)
        assert status == 200 and res["success"] is True and res["size"] == len(data), (status, res)
        assert hashlib.sha256(_host_bytes(ctx, sid, "big.bin")).digest() == hashlib.sha256(data).digest()
        status, headers, got = ctx.request("GET", url)
        assert status == 200 and headers.get("content-length") == str(len(data)), (status, headers)
        assert got == data, f"GET returned {len(got)} bytes that differ from the {len(data)} sent"
        assert _mime(headers) == "application/octet-stream", headers


# ---------------------------------------------------------------------------
# Several at once; a sleeping sandbox.

def test_concurrent_writes_of_different_files(ctx):
    with sandbox(ctx) as sid:
        output(ctx, sid, "true")
        contents = {f"c{i}.txt": f"{i}:" + uuid.uuid4().hex * 2000 for i in range(8)}

        def one(name):
            return Context(ctx.stack).json("POST", f"/v1/sandboxes/{sid}/api/write",
                                           {"path": name, "content": contents[name]})

        with concurrent.futures.ThreadPoolExecutor(8) as ex:
            results = dict(zip(contents, ex.map(one, contents)))
        for name, (status, res) in results.items():
            assert status == 200 and res["success"] is True, (name, status, res)
        for name, text in contents.items():
            assert _host_bytes(ctx, sid, name) == text.encode(), name
            assert _read(ctx, sid, name)["content"] == text, name


def test_file_call_wakes_a_sleeping_sandbox(ctx):
    with sandbox(ctx) as sid:
        status, body = ctx.json("PUT", f"/v1/sandboxes/{sid}", {"sleepAfter": 1})
        assert status == 201, body
        _write(ctx, sid, "before-sleep.txt", "still here\n")
        wait_asleep(ctx, sid)
        assert _read(ctx, sid, "before-sleep.txt")["content"] == "still here\n"
        status, body = ctx.json("GET", f"/v1/sandboxes/{sid}")
        assert status == 200 and body["state"] == "running", body


def test_symlinks_inside_the_sandbox_are_followed(ctx):
    """A link planted in /workspace that points inside the sandbox reads as
    its target, as it would for a command (the security probes check links
    that point out of it)."""
    with sandbox(ctx) as sid:
        output(ctx, sid, "echo real > real.txt; ln -s real.txt rel-link; ln -s /workspace/real.txt abs-link; "
                         "ln -s /etc/hostname host-link")
        assert _read(ctx, sid, "rel-link")["content"] == "real\n"
        assert _read(ctx, sid, "abs-link")["content"] == "real\n"
        assert _read(ctx, sid, "host-link")["content"] == f"{sid}\n"
