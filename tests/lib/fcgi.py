"""A minimal FastCGI client (the responder role of the FastCGI 1.0 spec), to
speak to sandboxd's socket directly, as nginx does, with params of our
choosing.  For tests of what nginx normally fills in (REMOTE_ADDR)."""
import socket
import struct

VERSION = 1
BEGIN_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 3, 4, 5, 6, 7
RESPONDER = 1


def _record(rtype, req_id, content):
    pad = (-len(content)) % 8
    return struct.pack(">BBHHBx", VERSION, rtype, req_id, len(content), pad) + content + b"\0" * pad


def _length(n):
    return struct.pack(">B", n) if n < 128 else struct.pack(">I", n | 0x80000000)


def _pairs(params):
    out = b""
    for k, v in params.items():
        k, v = k.encode(), v.encode()
        out += _length(len(k)) + _length(len(v)) + k + v
    return out


def request(sock_path, params, body=b"", timeout=30):
    """Sends one request; returns (status, headers dict, body bytes)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(sock_path)
    params = dict(params)
    params.setdefault("CONTENT_LENGTH", str(len(body)))
    msg = _record(BEGIN_REQUEST, 1, struct.pack(">HB5x", RESPONDER, 0))
    p = _pairs(params)
    for i in range(0, len(p), 65535):
        msg += _record(PARAMS, 1, p[i:i + 65535])
    msg += _record(PARAMS, 1, b"")
    for i in range(0, len(body), 65535):
        msg += _record(STDIN, 1, body[i:i + 65535])
    msg += _record(STDIN, 1, b"")
    s.sendall(msg)
    out = b""
    buf = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        buf += chunk
        done = False
        while len(buf) >= 8:
            _, rtype, _, clen, pad = struct.unpack(">BBHHBx", buf[:8])
            if len(buf) < 8 + clen + pad:
                break
            content = buf[8:8 + clen]
            buf = buf[8 + clen + pad:]
            if rtype == STDOUT:
                out += content
            elif rtype == END_REQUEST:
                done = True
        if done:
            break
    s.close()
    head, _, body = out.partition(b"\r\n\r\n")
    headers = {}
    for line in head.decode().split("\r\n"):
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    status = int(headers.get("status", "200").split()[0])
    return status, headers, body
