"""Autobahn-style WebSocket conformance cases against an echo server, over raw sockets.

The Autobahn test suite's fuzzingclient (`autobahntestsuite`, Python 2 only) cannot run
here, so this reproduces its server-relevant cases by their numbers: sections 1 (framing),
2 (pings and pongs), 3 (reserved bits), 4 (opcodes), 5 (fragmentation), 6 (UTF-8, with
fail-fast and the UTF-8 stress vectors), 7 (close handling) and 9 (limits, at sizes up to
4 MiB instead of 16 MiB). Each case is judged as Autobahn does: OK, NON-STRICT (what the
RFC allows but not what is best), INFORMATIONAL (no verdict), or FAILED.

    python3 autobahn_cases.py HOST PORT [CASE-PREFIX...]

prints one JSON object: {"cases": {id: {"result", "detail"}}, "sections": {n: {result: count}}}.
Only the standard library is used.
"""

import base64
import concurrent.futures
import json
import os
import socket
import struct
import sys
import time

TEXT, BINARY, CONT, CLOSE, PING, PONG = 0x1, 0x2, 0x0, 0x8, 0x9, 0xA
KOSME = "κόσμε".encode()
# How long a case waits for what it expects before judging (Autobahn's killAfter).
WAIT = 2.0


def mask_payload(payload, mask):
    n = len(payload)
    if n == 0:
        return b""
    key = (mask * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(key, "big")).to_bytes(n, "big")


def frame(opcode, payload=b"", fin=True, rsv=0):
    """A client frame: masked, as RFC 6455 §5.3 requires."""
    mask = os.urandom(4)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n < 65536:
        head += bytes([0x80 | 126]) + struct.pack("!H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack("!Q", n)
    return head + mask + mask_payload(payload, mask)


def close_frame(code=None, reason=b""):
    return frame(CLOSE, b"" if code is None else struct.pack("!H", code) + reason)


class Conn:
    """One client connection: the handshake, sends, and what the server sent back."""

    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=WAIT)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = base64.b64encode(os.urandom(16)).decode()
        self.sock.sendall(
            (
                f"GET / HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        self.buf = b""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("closed during the handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        if not head.startswith(b"HTTP/1.1 101 "):
            raise ConnectionError(f"handshake refused: {head[:60]!r}")
        self.frames = []  # (opcode, payload) in order, the close frame included
        self.eof = False
        self.error = None  # a malformed server frame

    def send(self, data, chop=None, delay=0.0):
        """Sends `data`, in writes of `chop` bytes with `delay` between them if given."""
        try:
            if chop is None:
                self.sock.sendall(data)
            else:
                for i in range(0, len(data), chop):
                    self.sock.sendall(data[i : i + chop])
                    if delay:
                        time.sleep(delay)
        except OSError:
            pass  # the server may have failed the connection already: judged later

    def _parse(self):
        while True:
            b = self.buf
            if len(b) < 2:
                return
            if b[0] & 0x70 or b[1] & 0x80:
                self.error = "server frame with RSV bits or a mask"
            n, at = b[1] & 0x7F, 2
            if n == 126:
                if len(b) < 4:
                    return
                n, at = struct.unpack("!H", b[2:4])[0], 4
            elif n == 127:
                if len(b) < 10:
                    return
                n, at = struct.unpack("!Q", b[2:10])[0], 10
            if len(b) < at + n:
                return
            if not b[0] & 0x80:
                self.error = "fragmented server frame (the echo server sends whole messages)"
            self.frames.append((b[0] & 0x0F, b[at : at + n]))
            self.buf = b[at + n :]

    def read_until(self, done, timeout=WAIT):
        """Reads until `done(self)` holds, the server closes, or `timeout` passes."""
        end = time.monotonic() + timeout
        while not done(self) and not self.eof:
            left = end - time.monotonic()
            if left <= 0:
                return
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                return
            except OSError:
                self.eof = True
                return
            if not chunk:
                self.eof = True
                return
            self.buf += chunk
            self._parse()

    def got_close(self):
        return any(op == CLOSE for op, _ in self.frames)

    def data_frames(self):
        out = []
        for op, payload in self.frames:
            if op == CLOSE:
                break
            out.append((op, payload))
        return out

    def close_code(self):
        for op, payload in self.frames:
            if op == CLOSE:
                return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        return "none"


class Expect:
    """What a case expects: the frames before the close (`ok`; `non_strict` alternatives),
    and either a clean close that we start with `close` (code, reason) and the server echoes
    with one of `echo_codes`, or (`fail`) the server failing the connection with one of those
    close codes."""

    def __init__(self, ok=(), non_strict=(), fail=None, close=(1000, b""), echo_codes=None,
                 informational=False):
        self.ok = list(ok)
        self.non_strict = [list(x) for x in non_strict]
        self.fail = fail
        self.close = close
        # `close` None: the case sends its own close frame.
        self.echo_codes = echo_codes or ([close[0]] if close else None)
        self.informational = informational


CASES = []


def case(case_id):
    def register(fn):
        CASES.append((case_id, fn))
        return fn

    return register


def run_case(host, port, fn):
    conn = Conn(host, port)
    try:
        expect = fn(conn)
        if expect.fail is None:
            want = len(expect.ok)
            conn.read_until(lambda c: len(c.data_frames()) >= want or c.got_close())
            if not conn.got_close() and expect.close is not None:
                code, reason = expect.close
                conn.send(close_frame(code, reason))
        conn.read_until(lambda c: False)  # to the server's end of the connection
        return judge(conn, expect)
    finally:
        conn.sock.close()


def judge(conn, expect):
    frames = conn.data_frames()
    if conn.error:
        return "FAILED", conn.error
    if frames == expect.ok:
        verdict = "OK"
    elif frames in expect.non_strict:
        verdict = "NON-STRICT"
    else:
        verdict = "FAILED"
    detail = f"frames {summary(frames)}, close code {conn.close_code()}"
    if verdict == "FAILED":
        return ("INFORMATIONAL" if expect.informational else "FAILED"), \
            f"expected {summary(expect.ok)}; got {detail}"
    codes = expect.fail if expect.fail is not None else expect.echo_codes
    if conn.close_code() not in codes:
        return ("INFORMATIONAL" if expect.informational else "FAILED"), \
            f"expected close code in {codes}; got {detail}"
    if not conn.eof:
        return "FAILED", f"the server did not close the TCP connection; {detail}"
    if expect.informational:
        return "INFORMATIONAL", detail
    return verdict, detail


def summary(frames):
    if len(frames) > 12:
        return f"{len(frames)} frames"
    return [(op, len(p) if len(p) > 24 else p) for op, p in frames]


# ---------------------------------------------------------------- 1 framing

SIZES = [0, 125, 126, 127, 128, 65535, 65536]


def echo_case(opcode, payload, chop=None):
    def run(c):
        c.send(frame(opcode, payload), chop=chop)
        return Expect(ok=[(opcode, payload)])

    return run


for group, opcode, byte in [(1, TEXT, b"*"), (2, BINARY, b"\xfe")]:
    for i, n in enumerate(SIZES, 1):
        case(f"1.{group}.{i}")(echo_case(opcode, byte * n))
    case(f"1.{group}.8")(echo_case(opcode, byte * 65536, chop=997))

# ---------------------------------------------------------------- 2 pings and pongs


def ping_case(payload, chop=None):
    def run(c):
        c.send(frame(PING, payload), chop=chop)
        return Expect(ok=[(PONG, payload)])

    return run


case("2.1")(ping_case(b""))
case("2.2")(ping_case(b"Hello, world!"))
case("2.3")(ping_case(b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff"))
case("2.4")(ping_case(b"\xfe" * 125))


@case("2.5")
def _(c):
    c.send(frame(PING, b"\xfe" * 126))
    return Expect(fail=[1002])


case("2.6")(ping_case(b"\xfe" * 125, chop=1))


@case("2.7")
def _(c):
    c.send(frame(PONG))
    return Expect()


@case("2.8")
def _(c):
    c.send(frame(PONG, b"unsolicited pong payload"))
    return Expect()


@case("2.9")
def _(c):
    c.send(frame(PONG, b"unsolicited pong payload") + frame(PING, b"ping payload"))
    return Expect(ok=[(PONG, b"ping payload")])


def ten_pings(chop):
    def run(c):
        payloads = [f"payload-{i}".encode() for i in range(10)]
        c.send(b"".join(frame(PING, p) for p in payloads), chop=chop)
        # RFC 6455 §5.5.3 lets an endpoint answer only the latest of several pings.
        fewer = [[(PONG, p) for p in payloads[k:]] for k in range(1, 10)]
        return Expect(ok=[(PONG, p) for p in payloads], non_strict=fewer)

    return run


case("2.10")(ten_pings(None))
case("2.11")(ten_pings(1))

# ---------------------------------------------------------------- 3 reserved bits


@case("3.1")
def _(c):
    c.send(frame(TEXT, b"Hello, world!", rsv=1))
    return Expect(fail=[1002])


def rsv_after_echo(rsv, chop=None, delay=0.0):
    def run(c):
        frames = [frame(TEXT, b"Hello, world!"), frame(TEXT, b"Hello, world!", rsv=rsv),
                  frame(PING, b"")]
        if chop is None and delay:
            for f in frames:
                c.send(f)
                time.sleep(delay)
        else:
            c.send(b"".join(frames), chop=chop)
        return Expect(ok=[(TEXT, b"Hello, world!")], non_strict=[[]], fail=[1002])

    return run


case("3.2")(rsv_after_echo(2))
case("3.3")(rsv_after_echo(3, delay=0.1))
case("3.4")(rsv_after_echo(4, chop=1))


@case("3.5")
def _(c):
    c.send(frame(BINARY, b"\x00\xff\xfe\xfd\xfc\xfb\x00\xff", rsv=5))
    return Expect(fail=[1002])


@case("3.6")
def _(c):
    c.send(frame(PING, b"Hello, world!", rsv=6))
    return Expect(fail=[1002])


@case("3.7")
def _(c):
    c.send(frame(CLOSE, struct.pack("!H", 1000), rsv=7))
    return Expect(fail=[1002])


# ---------------------------------------------------------------- 4 opcodes


def reserved_opcode(opcode, payload, after_echo):
    def run(c):
        if not after_echo:
            c.send(frame(opcode, payload))
            return Expect(fail=[1002])
        c.send(frame(TEXT, b"Hello, world!") + frame(opcode, payload) + frame(PING, b""))
        return Expect(ok=[(TEXT, b"Hello, world!")], non_strict=[[]], fail=[1002])

    return run


for group, base in [(1, 3), (2, 11)]:
    case(f"4.{group}.1")(reserved_opcode(base, b"", False))
    case(f"4.{group}.2")(reserved_opcode(base + 1, b"reserved opcode payload", False))
    case(f"4.{group}.3")(reserved_opcode(base + 2, b"", True))
    case(f"4.{group}.4")(reserved_opcode(base + 3, b"reserved opcode payload", True))
    case(f"4.{group}.5")(reserved_opcode(base + 4, b"reserved opcode payload", True))

# ---------------------------------------------------------------- 5 fragmentation


def send_frames(c, frames, mode):
    """Sends frames in one write, one write per frame with a pause, or octet by octet."""
    if mode == "frame":
        for f in frames:
            c.send(f)
            time.sleep(0.05)
    else:
        c.send(b"".join(frames), chop=1 if mode == "octet" else None)


@case("5.1")
def _(c):
    c.send(frame(PING, b"fragment1", fin=False) + frame(CONT, b"fragment2"))
    return Expect(fail=[1002])


@case("5.2")
def _(c):
    c.send(frame(PONG, b"fragment1", fin=False) + frame(CONT, b"fragment2"))
    return Expect(fail=[1002])


def two_fragments(mode, ping):
    def run(c):
        frames = [frame(TEXT, b"fragment1", fin=False)]
        if ping:
            frames.append(frame(PING, b"ping payload"))
        frames.append(frame(CONT, b"fragment2"))
        send_frames(c, frames, mode)
        pong = [(PONG, b"ping payload")] if ping else []
        return Expect(ok=pong + [(TEXT, b"fragment1fragment2")])

    return run


for i, (mode, ping) in enumerate(
    [("chop", False), ("frame", False), ("octet", False),
     ("chop", True), ("frame", True), ("octet", True)], 3
):
    case(f"5.{i}")(two_fragments(mode, ping))


def nothing_to_continue(fin, mode):
    def run(c):
        frames = [frame(CONT, b"non-continuation payload", fin=fin),
                  frame(TEXT, b"Hello, world!")]
        send_frames(c, frames, mode)
        return Expect(fail=[1002])

    return run


for i, (fin, mode) in enumerate(
    [(True, "chop"), (True, "frame"), (True, "octet"),
     (False, "chop"), (False, "frame"), (False, "octet")], 9
):
    case(f"5.{i}")(nothing_to_continue(fin, mode))


@case("5.15")
def _(c):
    c.send(frame(TEXT, b"fragment1", fin=False) + frame(CONT, b"fragment2")
           + frame(CONT, b"fragment3", fin=False) + frame(TEXT, b"fragment4"))
    return Expect(ok=[(TEXT, b"fragment1fragment2")], non_strict=[[]], fail=[1002])


@case("5.16")
def _(c):
    one = (frame(CONT, b"fragment1", fin=False) + frame(TEXT, b"fragment2", fin=False)
           + frame(CONT, b"fragment3"))
    c.send(one + one)
    return Expect(fail=[1002])


@case("5.17")
def _(c):
    one = (frame(CONT, b"fragment1") + frame(TEXT, b"fragment2", fin=False)
           + frame(CONT, b"fragment3"))
    c.send(one + one)
    return Expect(fail=[1002])


@case("5.18")
def _(c):
    c.send(frame(TEXT, b"fragment1", fin=False) + frame(TEXT, b"fragment2"))
    return Expect(fail=[1002])


def five_fragments_with_pings(pause):
    def run(c):
        steps = [frame(TEXT, b"fragment1", fin=False), frame(CONT, b"fragment2", fin=False),
                 frame(PING, b"pongme 1!"), frame(CONT, b"fragment3", fin=False), None,
                 frame(CONT, b"fragment4", fin=False), frame(PING, b"pongme 2!"),
                 frame(CONT, b"fragment5")]
        for step in steps:
            if step is None:
                time.sleep(pause)
            else:
                c.send(step)
                time.sleep(pause / 10)
        return Expect(ok=[(PONG, b"pongme 1!"), (PONG, b"pongme 2!"),
                          (TEXT, b"fragment1fragment2fragment3fragment4fragment5")])

    return run


case("5.19")(five_fragments_with_pings(0.5))
case("5.20")(five_fragments_with_pings(0.5))

# ---------------------------------------------------------------- 6 UTF-8


@case("6.1.1")
def _(c):
    c.send(frame(TEXT, b""))
    return Expect(ok=[(TEXT, b"")])


@case("6.1.2")
def _(c):
    c.send(frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) + frame(CONT, b""))
    return Expect(ok=[(TEXT, b"")])


@case("6.1.3")
def _(c):
    c.send(frame(TEXT, b"", fin=False) + frame(CONT, b"middle frame payload", fin=False)
           + frame(CONT, b""))
    return Expect(ok=[(TEXT, b"middle frame payload")])


HELLO_UTF8 = "Hello-µ@ßöäüàá-UTF-8!!".encode()


def fragments_of(payload, sizes):
    frames, at, first = [], 0, True
    while at < len(payload):
        n = sizes(at)
        piece = payload[at : at + n]
        at += n
        frames.append(frame(TEXT if first else CONT, piece, fin=at >= len(payload)))
        first = False
    return frames


def utf8_fragmented(payload, sizes, valid):
    def run(c):
        c.send(b"".join(fragments_of(payload, sizes)))
        return Expect(ok=[(TEXT, payload)]) if valid else Expect(fail=[1007])

    return run


case("6.2.1")(utf8_fragmented(HELLO_UTF8, lambda at: len(HELLO_UTF8), True))
case("6.2.2")(utf8_fragmented(HELLO_UTF8, lambda at: 7 if at == 0 else 100, True))
case("6.2.3")(utf8_fragmented(HELLO_UTF8, lambda at: 1, True))
case("6.2.4")(utf8_fragmented(KOSME, lambda at: 1, True))
INVALID = KOSME + b"\xed\xa0\x80edited"
case("6.3.1")(utf8_fragmented(INVALID, lambda at: len(INVALID), False))
case("6.3.2")(utf8_fragmented(INVALID, lambda at: 1, False))


def fail_fast(pieces, one_frame):
    """Autobahn 6.4.x: an invalid sequence in the middle piece must fail the connection
    before the last piece is sent (NON-STRICT if only after)."""

    def run(c):
        if one_frame:
            whole = frame(TEXT, b"".join(pieces))
            head = len(whole) - sum(map(len, pieces))
            cuts = [head + len(pieces[0]), head + len(pieces[0]) + len(pieces[1])]
            sends = [whole[: cuts[0]], whole[cuts[0] : cuts[1]], whole[cuts[1] :]]
        else:
            sends = [frame(TEXT, pieces[0], fin=False), frame(CONT, pieces[1], fin=False),
                     frame(CONT, pieces[2])]
        c.send(sends[0])
        time.sleep(0.3)
        c.send(sends[1])
        c.read_until(lambda c: c.got_close(), timeout=1.0)
        early = c.got_close()
        c.send(sends[2])
        c.read_until(lambda c: c.got_close())
        if not early and c.got_close():
            c.frames.insert(0, (BINARY, b"(failed late)"))
        return Expect(fail=[1007], non_strict=[[(BINARY, b"(failed late)")]])

    return run


case("6.4.1")(fail_fast([KOSME, b"\xf4\x90\x80\x80", b"edited"], False))
case("6.4.2")(fail_fast([KOSME + b"\xf4", b"\x90\x80\x80", b"edited"], False))
case("6.4.3")(fail_fast([KOSME, b"\xf4\x90\x80\x80", b"edited"], True))
case("6.4.4")(fail_fast([KOSME + b"\xf4", b"\x90", b"\x80\x80edited"], True))


def stress_vectors():
    """Markus Kuhn's UTF-8 decoder stress test, grouped as Autobahn's 6.5 to 6.23."""
    prefixes = [KOSME[:i] for i in range(1, len(KOSME) + 1)]
    lonely = [bytes(x for b in range(lo, hi) for x in (b, 0x20))
              for lo, hi in [(0xC0, 0xDF), (0xE0, 0xEF), (0xF0, 0xF7), (0xF8, 0xFB), (0xFC, 0xFD)]]
    missing = [b"\xc0", b"\xe0\x80", b"\xf0\x80\x80", b"\xf8\x80\x80\x80", b"\xfc\x80\x80\x80\x80",
               b"\xdf", b"\xef\xbf", b"\xf7\xbf\xbf", b"\xfb\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf"]
    surrogates = [b"\xed\xa0\x80", b"\xed\xad\xbf", b"\xed\xae\x80", b"\xed\xaf\xbf",
                  b"\xed\xb0\x80", b"\xed\xbe\x80", b"\xed\xbf\xbf"]
    high, low = surrogates[:4], [b"\xed\xb0\x80", b"\xed\xbf\xbf"]
    nonchars = [b"\xef\xbf\xbe", b"\xef\xbf\xbf"] + [
        bytes([a, b, 0xBF, c]) for a in range(0xF0, 0xF5) for b in (0x8F, 0x9F, 0xAF, 0xBF)
        for c in (0xBE, 0xBF) if not (a == 0xF4 and b != 0x8F) and not (a == 0xF0 and b == 0x8F)]
    return [
        [b"hello$world", "hello¢world".encode(), "hello€world".encode(),
         "hello𤭢world".encode(), KOSME],
        prefixes,
        [b"\x00", b"\xc2\x80", b"\xe0\xa0\x80", b"\xf0\x90\x80\x80"],
        [b"\xf8\x88\x80\x80\x80", b"\xfc\x84\x80\x80\x80\x80"],
        [b"\x7f", b"\xdf\xbf", b"\xef\xbf\xbf", b"\xf4\x8f\xbf\xbf"],
        [b"\xf7\xbf\xbf\xbf", b"\xfb\xbf\xbf\xbf\xbf", b"\xfd\xbf\xbf\xbf\xbf\xbf"],
        [b"\xed\x9f\xbf", b"\xee\x80\x80", b"\xef\xbf\xbd", b"\xf4\x8f\xbf\xbf",
         b"\xf4\x90\x80\x80"],
        [b"\x80", b"\xbf", b"\x80\xbf", b"\x80\xbf\x80", b"\x80\xbf\x80\xbf",
         b"\x80\xbf\x80\xbf\x80", b"\x80\xbf\x80\xbf\x80\xbf", bytes(range(0x80, 0xBF))],
        lonely,
        missing,
        [b"".join(missing)],
        [b"\xfe", b"\xff", b"\xfe\xfe\xff\xff"],
        [b"\xc0\xaf", b"\xe0\x80\xaf", b"\xf0\x80\x80\xaf", b"\xf8\x80\x80\x80\xaf",
         b"\xfc\x80\x80\x80\x80\xaf"],
        [b"\xc1\xbf", b"\xe0\x9f\xbf", b"\xf0\x8f\xbf\xbf", b"\xf8\x87\xbf\xbf\xbf",
         b"\xfc\x83\xbf\xbf\xbf\xbf"],
        [b"\xc0\x80", b"\xe0\x80\x80", b"\xf0\x80\x80\x80", b"\xf8\x80\x80\x80\x80",
         b"\xfc\x80\x80\x80\x80\x80"],
        surrogates,
        [h + l for h in high for l in low],
        nonchars,
        [b"\xef\xbf\xb9", b"\xef\xbf\xba", b"\xef\xbf\xbb", b"\xef\xbf\xbc", b"\xef\xbf\xbd",
         b"\xef\xbf\xbe", b"\xef\xbf\xbf"],
    ]


def is_utf8(b):
    try:
        b.decode("utf-8")  # strict: no surrogates, nothing past U+10FFFF, no overlong forms
        return True
    except UnicodeDecodeError:
        return False


for group, vectors in enumerate(stress_vectors(), 5):
    for j, payload in enumerate(vectors, 1):
        case(f"6.{group}.{j}")(utf8_fragmented(payload, lambda at: 1 << 20, is_utf8(payload)))

# ---------------------------------------------------------------- 7 close handling


@case("7.1.1")
def _(c):
    c.send(frame(TEXT, b"Hello World!"))
    return Expect(ok=[(TEXT, b"Hello World!")])


def after_close(then):
    def run(c):
        c.send(close_frame(1000) + then)
        return Expect(close=None, echo_codes=[1000])

    return run


case("7.1.2")(after_close(close_frame(1000)))
case("7.1.3")(after_close(frame(PING, b"Hello World!")))
case("7.1.4")(after_close(frame(TEXT, b"Hello World!")))


@case("7.1.5")
def _(c):
    c.send(frame(TEXT, b"fragment1", fin=False) + close_frame(1000) + frame(CONT, b"fragment2"))
    return Expect(close=None, echo_codes=[1000])


@case("7.1.6")
def _(c):
    big = b"BAsd7&jh23" * 26214
    c.send(frame(TEXT, big) + close_frame(1000) + frame(PING, b"Hello World!"))
    # Implementation-defined (Autobahn: INFORMATIONAL): whether the message is echoed
    # before the close.
    return Expect(ok=[(TEXT, big)], non_strict=[[]], close=None, echo_codes=[1000],
                  informational=True)


@case("7.3.1")
def _(c):
    c.send(close_frame())
    return Expect(close=None, echo_codes=[None, 1000])


@case("7.3.2")
def _(c):
    c.send(frame(CLOSE, b"\x03"))
    return Expect(fail=[1002])


def close_with(code, reason, fail=None):
    def run(c):
        c.send(close_frame(code, reason))
        return Expect(fail=fail, close=None, echo_codes=[code])

    return run


case("7.3.3")(close_with(1000, b""))
case("7.3.4")(close_with(1000, b"Hello World!"))
case("7.3.5")(close_with(1000, b"*" * 123))
case("7.3.6")(close_with(1000, b"*" * 124, fail=[1002]))
case("7.5.1")(close_with(1000, INVALID, fail=[1007]))
for i, code in enumerate(
    [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999], 1
):
    case(f"7.7.{i}")(close_with(code, b""))
for i, code in enumerate([0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999], 1):
    case(f"7.9.{i}")(close_with(code, b"", fail=[1002]))


def informational_code(code):
    def run(c):
        c.send(close_frame(code))
        return Expect(fail=[1002], informational=True)

    return run


case("7.13.1")(informational_code(5000))
case("7.13.2")(informational_code(65535))

# ---------------------------------------------------------------- 9 limits and performance

MIB = 1 << 20
BIG = [64 * 1024, 256 * 1024, MIB, 4 * MIB]

for group, opcode, byte in [(1, TEXT, b"*"), (2, BINARY, b"\xfe")]:
    for i, n in enumerate(BIG, 1):
        case(f"9.{group}.{i}")(echo_case(opcode, byte * n))


def fragmented_big(opcode, size):
    def run(c):
        payload = (b"*" if opcode == TEXT else b"\xfe") * MIB
        frames = []
        for at in range(0, MIB, size):
            first, last = at == 0, at + size >= MIB
            frames.append(frame(opcode if first else CONT, payload[at : at + size], fin=last))
        c.send(b"".join(frames))
        return Expect(ok=[(opcode, payload)])

    return run


for group, opcode in [(3, TEXT), (4, BINARY)]:
    for i, size in enumerate([64, 256, 1024, 4096, 16384, 65536, 262144, MIB], 1):
        case(f"9.{group}.{i}")(fragmented_big(opcode, size))

for group, opcode, byte in [(5, TEXT, b"*"), (6, BINARY, b"\xfe")]:
    for i, chop in enumerate([64, 128, 256, 512, 1024, 2048], 1):
        case(f"9.{group}.{i}")(echo_case(opcode, byte * MIB, chop=chop))


def round_trips(opcode, size):
    def run(c):
        payload = (b"*" if opcode == TEXT else b"\xfe") * size
        data = frame(opcode, payload)
        for k in range(1000):
            c.send(data)
            c.read_until(lambda c: len(c.frames) > k)
        return Expect(ok=[(opcode, payload)] * 1000)

    return run


for group, opcode in [(7, TEXT), (8, BINARY)]:
    for i, size in enumerate([0, 16, 64, 256, 1024, 4096], 1):
        case(f"9.{group}.{i}")(round_trips(opcode, size))


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    prefixes = sys.argv[3:]
    selected = [(i, fn) for i, fn in CASES
                if not prefixes or any(i == p or i.startswith(p + ".") for p in prefixes)]

    def one(item):
        case_id, fn = item
        try:
            return case_id, run_case(host, port, fn)
        except Exception as e:  # a case that breaks is a failed case, not a broken run
            return case_id, ("FAILED", f"{type(e).__name__}: {e}")

    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        for case_id, (result, detail) in pool.map(one, selected):
            results[case_id] = {"result": result, "detail": detail}
    sections = {}
    for case_id, r in results.items():
        counts = sections.setdefault(case_id.split(".")[0], {})
        counts[r["result"]] = counts.get(r["result"], 0) + 1
    json.dump({"cases": results, "sections": sections}, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
