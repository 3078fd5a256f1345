#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# h2conn.py — one long-lived mTLS HTTP/2 connection to paymentd that makes
# a real gRPC call (grpc.health.v1.Health/Check) on it each time it is told
# to, for 46-keyholder: "the connection that was open when the key-holder
# died keeps serving".
#
# Usage: h2conn.py HOST PORT CA CERT KEY; then reads commands on stdin:
#   check   one Health/Check on the next stream; prints "SERVING stream=N"
#           when the reply is the SERVING message and the stream ended, or
#           "FAIL ..." (the process keeps running)
#   quit    closes the connection and exits 0
# Prints "connected tls=VERSION alpn=PROTO lport=PORT" after the handshake.
# Standard library only (ssl, socket); HPACK literals without indexing for
# the request, and the reply's headers are not decoded: the DATA frame (the
# gRPC message 08 01, status SERVING) and END_STREAM are what is checked.
import socket
import ssl
import struct
import sys

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
SERVING = b"\x00\x00\x00\x00\x02\x08\x01"


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(">I", stream) + payload


def literal(name, value):
    n, v = name.encode(), value.encode()
    return b"\x00" + bytes([len(n)]) + n + bytes([len(v)]) + v


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError("connection closed")
        buf += chunk
    return buf


def read_frame(s):
    h = read_exact(s, 9)
    length = int.from_bytes(h[0:3], "big")
    return h[3], h[4], int.from_bytes(h[5:9], "big") & 0x7FFFFFFF, read_exact(s, length)


def check(s, stream):
    hdr = b"".join(literal(k, v) for k, v in [
        (":method", "POST"), (":scheme", "https"), (":path", "/grpc.health.v1.Health/Check"),
        (":authority", "localhost"), ("content-type", "application/grpc"), ("te", "trailers")])
    s.sendall(frame(1, 0x4, stream, hdr) + frame(0, 0x1, stream, b"\x00\x00\x00\x00\x00"))
    data = b""
    while True:
        ftype, flags, sid, payload = read_frame(s)
        if ftype == 4 and not flags & 1:      # SETTINGS: acknowledge
            s.sendall(frame(4, 1, 0))
        elif ftype == 6 and not flags & 1:    # PING: answer
            s.sendall(frame(6, 1, 0, payload))
        elif ftype == 7:                      # GOAWAY
            return "FAIL goaway"
        elif ftype == 3 and sid == stream:    # RST_STREAM
            return "FAIL rst_stream"
        elif sid == stream and ftype == 0:
            data += payload
        if sid == stream and ftype in (0, 1) and flags & 1:
            return "SERVING stream=%d" % stream if data == SERVING else "FAIL data=%s" % data.hex()


def main():
    host, port, ca, cert, key = sys.argv[1:6]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols(["h2"])
    raw = socket.create_connection((host, int(port)), timeout=10)
    s = ctx.wrap_socket(raw, server_hostname="localhost")
    s.sendall(PREFACE + frame(4, 0, 0))
    print("connected tls=%s alpn=%s lport=%d" % (s.version(), s.selected_alpn_protocol(),
                                                 s.getsockname()[1]), flush=True)
    stream = 1
    for line in sys.stdin:
        cmd = line.strip()
        if cmd == "quit":
            break
        if cmd == "check":
            try:
                print(check(s, stream), flush=True)
            except (OSError, EOFError) as e:
                print("FAIL %s" % e, flush=True)
            stream += 2
    s.close()


if __name__ == "__main__":
    main()
