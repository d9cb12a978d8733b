#!/usr/bin/env python3
"""permessage-deflate (RFC 7692) checks of a WebSocket echo server, in the manner of Autobahn's
sections 12 and 13: negotiation, compressed messages of many sizes and kinds both ways, fragmented
compressed messages, context takeover, and hostile input (RSV1 where it may not be, corrupt deflate
data, a compression bomb, invalid UTF-8 inside a compressed text message).

Standard library only. Each case prints `PASS <id>: ...` or `FAIL <id>: ...`; the last line is
`N passed, N failed`; the exit code is 1 if a case failed, 2 on a usage error.

    python3 deflate_check.py ws://127.0.0.1:8080/ws [--max-size 65536] [--threshold 256] [--timeout 5]
"""
import argparse
import base64
import os
import random
import socket
import struct
import sys
import time
import urllib.parse
import zlib

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class Closed(Exception):
    pass


def deflate(data, wbits=15, level=6):
    c = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    out = c.compress(data) + c.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def inflate(data, wbits=15, limit=None):
    d = zlib.decompressobj(-wbits)
    return d.decompress(data + b"\x00\x00\xff\xff")


class Conn:
    def __init__(self, url, extensions=None, timeout=5.0):
        u = urllib.parse.urlsplit(url)
        self.timeout = timeout
        self.sock = socket.create_connection((u.hostname, u.port or 80), timeout=timeout)
        path = (u.path or "/") + ("?" + u.query if u.query else "")
        key = base64.b64encode(os.urandom(16)).decode()
        lines = ["GET %s HTTP/1.1" % path, "Host: %s:%d" % (u.hostname, u.port or 80), "Upgrade: websocket",
                 "Connection: Upgrade", "Sec-WebSocket-Key: " + key, "Sec-WebSocket-Version: 13"]
        if extensions is not None:
            lines.append("Sec-WebSocket-Extensions: " + extensions)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        head = head.decode("latin-1").split("\r\n")
        self.status = int(head[0].split()[1])
        self.headers = {}
        for line in head[1:]:
            name, _, value = line.partition(":")
            self.headers.setdefault(name.strip().lower(), []).append(value.strip())
        ext = ", ".join(self.headers.get("sec-websocket-extensions", []))
        self.extension = ext
        self.deflate = ext.lower().startswith("permessage-deflate")
        self.server_wbits = 15
        for part in ext.split(";"):
            name, _, value = part.strip().partition("=")
            if name == "server_max_window_bits":
                self.server_wbits = int(value.strip('"'))

    def send_frame(self, opcode, payload, fin=True, rsv=0):
        b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", b0, 0x80 | n)
        elif n < 65536:
            header = struct.pack("!BBH", b0, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", b0, 0x80 | 127, n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i & 3] for i, b in enumerate(payload))
        try:
            self.sock.sendall(header + mask + masked)
            return True
        except OSError:
            return False

    def _read(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise Closed("TCP closed")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n:]
        return data

    def frame(self):
        b0, b1 = self._read(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read(8))[0]
        if b1 & 0x80:
            raise AssertionError("the server masked a frame")
        return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0xF, self._read(n)

    def message(self):
        """The next message: (opcode, payload inflated, whether it came compressed)."""
        opcode, parts, compressed = None, [], False
        while True:
            fin, rsv, op, payload = self.frame()
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                raise Closed("Close %s" % (struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None))
            if op in (OP_TEXT, OP_BINARY):
                if rsv & 3 or (rsv & 4 and not self.deflate):
                    raise AssertionError("RSV bits %d on a data frame (deflate negotiated: %s)" % (rsv, self.deflate))
                opcode, compressed = op, bool(rsv & 4)
            elif op == OP_CONT:
                if rsv:
                    raise AssertionError("RSV bits on a continuation frame")
            parts.append(payload)
            if fin:
                data = b"".join(parts)
                if compressed:
                    data = inflate(data, self.server_wbits)
                return opcode, data, compressed

    def expect_close(self):
        """The close code the server sends (None: TCP closed without a Close frame)."""
        deadline = time.time() + self.timeout
        try:
            while time.time() < deadline:
                fin, rsv, op, payload = self.frame()
                if op == OP_CLOSE:
                    code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                    self.send_frame(OP_CLOSE, payload[:2])
                    return code
        except (Closed, OSError):
            return None
        except socket.timeout:
            return "timeout"
        return "timeout"

    def close(self):
        try:
            self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
            self.sock.close()
        except OSError:
            pass


CASES = []


def case(cid, title):
    def wrap(fn):
        CASES.append((cid, title, fn))
        return fn
    return wrap


def payloads(size, seed):
    rng = random.Random(seed)
    words = [b"switchboard", b"room", b"event", b"presence", b"{\"a\":1}", b"data", b"eid", b"1234"]
    repetitive = (b" ".join(rng.choice(words) for _ in range(size // 4 + 1)))[:size]
    randomish = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(size)))[:size]
    binary = bytes(rng.getrandbits(8) for _ in range(size))
    return [("repetitive text", OP_TEXT, repetitive), ("random text", OP_TEXT, randomish), ("random binary", OP_BINARY, binary)]


def run(args):
    url, max_size, threshold = args.url, args.max_size, args.threshold

    def connect(ext="permessage-deflate; client_max_window_bits"):
        return Conn(url, ext, args.timeout)

    # ---- negotiation (Autobahn 12.x/13.x handshakes) ----
    @case("negotiate.basic", "an offer is accepted without context takeover either way")
    def _():
        c = connect("permessage-deflate")
        try:
            ext = c.extension.lower()
            assert c.status == 101, "status %d" % c.status
            assert ext.startswith("permessage-deflate"), "no permessage-deflate in the 101: %r" % c.extension
            assert "server_no_context_takeover" in ext and "client_no_context_takeover" in ext, c.extension
        finally:
            c.close()

    for offer, expected in [
        ("permessage-deflate; server_max_window_bits=10", 10),
        ('permessage-deflate; server_max_window_bits="12"', 12),
        ("permessage-deflate; server_max_window_bits=9; client_max_window_bits=9", 9),
    ]:
        def _mk(offer=offer, expected=expected):
            @case("negotiate.window_bits_%d" % expected, "%s: the response names %d and messages use that window" % (offer, expected))
            def _():
                c = connect(offer)
                try:
                    assert c.deflate and c.server_wbits == expected, "extension %r" % c.extension
                    # Repetitive data at distances beyond 2^expected: an inflater with the smaller
                    # window fails if the server compressed with a larger one.
                    block = os.urandom(3000)
                    data = base64.b64encode(block + block + block)[: max_size // 2]
                    c.send_frame(OP_TEXT, data)
                    op, echoed, compressed = c.message()
                    assert echoed == data, "echo differs"
                    assert compressed, "a %d-byte compressible message came back uncompressed" % len(data)
                finally:
                    c.close()
        _mk()

    for offer in ["permessage-deflate; server_max_window_bits=8", "permessage-deflate; server_max_window_bits=16",
                  "permessage-deflate; server_max_window_bits", "permessage-deflate; foo=1",
                  "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
                  "permessage-deflate; client_max_window_bits=7", "permessage-deflate; server_no_context_takeover=1",
                  "permessage-deflate; server_max_window_bits=010"]:
        def _mk(offer=offer):
            @case("negotiate.declined." + offer.split(";", 1)[1].strip().replace(" ", ""), "%r is declined; the connection opens uncompressed" % offer)
            def _():
                c = connect(offer)
                try:
                    assert c.status == 101, "status %d" % c.status
                    assert not c.deflate, "accepted: %r" % c.extension
                    data = b"x" * 2048
                    c.send_frame(OP_TEXT, data)
                    op, echoed, compressed = c.message()
                    assert echoed == data and not compressed
                finally:
                    c.close()
        _mk()

    @case("negotiate.fallback", "the first acceptable offer of several is taken")
    def _():
        c = connect("x-webkit-deflate-frame, permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=11")
        try:
            assert c.deflate and c.server_wbits == 11, c.extension
        finally:
            c.close()

    @case("negotiate.none", "without an offer nothing is compressed")
    def _():
        c = Conn(url, None, args.timeout)
        try:
            assert not c.extension, c.extension
            data = b"abc" * 1000
            c.send_frame(OP_TEXT, data)
            op, echoed, compressed = c.message()
            assert echoed == data and not compressed
        finally:
            c.close()

    # ---- compressed messages (Autobahn 12.x) ----
    sizes = [16, 64, 255, 256, 1024, 4096, 16384, 65536 if max_size >= 65536 else max_size]
    for size in sizes:
        for index, (kind, opcode, _data) in enumerate(payloads(size, size)):
            def _mk(size=size, index=index, kind=kind, opcode=opcode):
                @case("message.%d.%s" % (size, kind.replace(" ", "_")), "%d bytes of %s, compressed and not, echoed intact" % (size, kind))
                def _():
                    c = connect()
                    try:
                        data = payloads(size, size)[index][2]
                        for compress in (True, False):
                            for _ in range(3):
                                c.send_frame(opcode, deflate(data) if compress else data, rsv=4 if compress else 0)
                                op, echoed, compressed = c.message()
                                assert op == opcode and echoed == data, "echo differs (sent compressed: %s)" % compress
                                if size < threshold:
                                    assert not compressed, "a %d-byte message below the threshold came compressed" % size
                                elif kind == "repetitive text":
                                    assert compressed, "a compressible %d-byte message came uncompressed" % size
                    finally:
                        c.close()
            _mk()

    @case("message.fragmented", "a compressed message in 1 to 20 fragments, RSV1 on the first only")
    def _():
        c = connect()
        try:
            rng = random.Random(7)
            for count in (1, 2, 3, 7, 20):
                data = payloads(20000, count)[0][2]
                z = deflate(data)
                cuts = sorted(rng.sample(range(1, len(z)), count - 1)) if count > 1 else []
                pieces = [z[a:b] for a, b in zip([0] + cuts, cuts + [len(z)])]
                for i, piece in enumerate(pieces):
                    c.send_frame(OP_TEXT if i == 0 else OP_CONT, piece, fin=i == len(pieces) - 1, rsv=4 if i == 0 else 0)
                op, echoed, compressed = c.message()
                assert echoed == data, "fragments: %d" % count
        finally:
            c.close()

    @case("message.no_context_takeover", "100 messages each inflate on their own with a fresh stream")
    def _():
        c = connect()
        try:
            base = b'{"event":"tick","data":{"value":%d,"text":"' + b"lorem ipsum " * 40 + b'"}}'
            for i in range(100):
                data = base.replace(b"%d", str(i).encode())
                c.send_frame(OP_TEXT, deflate(data), rsv=4)
                op, echoed, compressed = c.message()  # message() inflates each with a new stream
                assert echoed == data and compressed, "message %d" % i
        finally:
            c.close()

    @case("message.final_block", "a compressed message whose last block is marked final is accepted")
    def _():
        c = connect()
        try:
            data = b"final block " * 100
            co = zlib.compressobj(6, zlib.DEFLATED, -15)
            z = co.compress(data) + co.flush(zlib.Z_FINISH)
            c.send_frame(OP_TEXT, z, rsv=4)
            op, echoed, compressed = c.message()
            assert echoed == data
        finally:
            c.close()

    @case("message.max_size", "a message of exactly the limit once inflated is accepted")
    def _():
        c = connect()
        try:
            data = b"a" * max_size
            c.send_frame(OP_TEXT, deflate(data), rsv=4)
            op, echoed, compressed = c.message()
            assert echoed == data
        finally:
            c.close()

    # ---- hostile input (Autobahn 13.x and beyond) ----
    def expect_failure(cid, title, codes, send):
        @case(cid, title)
        def _():
            c = connect()
            try:
                send(c)
                code = c.expect_close()
                assert code in codes, "expected Close %s, got %s" % (codes, code)
            finally:
                c.close()
            # The server is still well.
            d = connect()
            try:
                d.send_frame(OP_TEXT, deflate(b"still here " * 50), rsv=4)
                assert d.message()[1] == b"still here " * 50
            finally:
                d.close()

    expect_failure("hostile.rsv1_continuation", "RSV1 on a continuation frame -> 1002", [1002],
                   lambda c: (c.send_frame(OP_TEXT, deflate(b"abc" * 100)[:10], fin=False, rsv=4),
                              c.send_frame(OP_CONT, deflate(b"abc" * 100)[10:], fin=True, rsv=4)))
    expect_failure("hostile.rsv1_ping", "RSV1 on a ping -> 1002", [1002], lambda c: c.send_frame(OP_PING, b"hi", rsv=4))
    expect_failure("hostile.rsv2", "RSV2 on a compressed connection -> 1002", [1002], lambda c: c.send_frame(OP_TEXT, b"abc", rsv=2))
    expect_failure("hostile.rsv1_rsv2", "RSV1 and RSV2 -> 1002", [1002], lambda c: c.send_frame(OP_TEXT, deflate(b"abc"), rsv=6))
    expect_failure("hostile.corrupt", "data that is not deflate -> 1007", [1007], lambda c: c.send_frame(OP_TEXT, b"\xff\xff\xff\xff\x00garbage", rsv=4))
    def trailing_garbage(c):
        co = zlib.compressobj(6, zlib.DEFLATED, -15)
        c.send_frame(OP_TEXT, co.compress(b"x" * 300) + co.flush(zlib.Z_FINISH) + b"more bytes", rsv=4)
    expect_failure("hostile.trailing_garbage", "bytes after a final block -> 1007", [1007], trailing_garbage)
    expect_failure("hostile.invalid_utf8", "compressed text that inflates to invalid UTF-8 -> 1007", [1007],
                   lambda c: c.send_frame(OP_TEXT, deflate(b"valid " * 100 + b"\xc3\x28" + b" tail" * 50), rsv=4))
    expect_failure("hostile.over_limit", "one byte over the limit once inflated -> 1009", [1009],
                   lambda c: c.send_frame(OP_TEXT, deflate(b"a" * (max_size + 1)), rsv=4))

    def bomb(c):
        # Zeros deflate about 1000:1: this frame, under the limit on the wire, inflates to 900x it.
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        z = co.compress(b"\x00" * (max_size * 900)) + co.flush(zlib.Z_SYNC_FLUSH)
        assert len(z) - 4 <= max_size, len(z)
        c.send_frame(OP_BINARY, z[:-4], rsv=4)
    expect_failure("hostile.bomb", "a compression bomb (~1000x the limit once inflated) -> 1009", [1009], bomb)

    def fragmented_bomb(c):
        co = zlib.compressobj(9, zlib.DEFLATED, -15)
        z = co.compress(b"\x00" * (max_size * 500)) + co.flush(zlib.Z_SYNC_FLUSH)
        z = z[:-4]
        half = len(z) // 2
        c.send_frame(OP_BINARY, z[:half], fin=False, rsv=4)
        c.send_frame(OP_CONT, z[half:], fin=True)
    expect_failure("hostile.fragmented_bomb", "a compression bomb in fragments -> 1009", [1009], fragmented_bomb)

    @case("hostile.uncompressed_rsv1_without_deflate", "RSV1 on a connection that did not negotiate -> 1002")
    def _():
        c = Conn(url, None, args.timeout)
        try:
            c.send_frame(OP_TEXT, deflate(b"abc" * 100), rsv=4)
            code = c.expect_close()
            assert code == 1002, code
        finally:
            c.close()

    selected = [c for c in CASES if not args.k or any(k in c[0] for k in args.k)]
    passed = failed = 0
    for cid, title, fn in selected:
        try:
            fn()
            print("PASS %s: %s" % (cid, title))
            passed += 1
        except Exception as error:  # noqa: BLE001 - every failure is reported the same way
            print("FAIL %s: %s: %s: %s" % (cid, title, type(error).__name__, error))
            failed += 1
        sys.stdout.flush()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url")
    parser.add_argument("--max-size", type=int, default=65536)
    parser.add_argument("--threshold", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("-k", action="append", help="only cases whose id contains this")
    try:
        args = parser.parse_args()
    except SystemExit:
        sys.exit(2)
    sys.exit(run(args))


if __name__ == "__main__":
    main()
