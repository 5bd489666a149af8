#!/usr/bin/env python3
"""A minimal sandboxd client: runs one command in a sandbox, the way `sandboxctl run` does.

    python3 sandbox_client.py [--socket PATH] [--timeout SECS] [--memory BYTES] -- CMD ARGS...

It follows PROTOCOL.md (protocol version 1) and needs only the standard library and `msgpack`.
Output is streamed live and credit is granted as it is written; stdin is forwarded when it is
not a terminal, within the stdin window. Exit status: the command's code, 128+N after signal N,
124 after the timeout, 137 after an OOM kill, 125 when the daemon refused or failed the run.
"""

import argparse
import os
import queue
import signal
import socket
import struct
import sys
import threading

import msgpack

PROTOCOL_VERSION = 1
RUN_ID = 1  # this client makes one run per connection, so any id will do
STDIN_CHUNK = 64 * 1024  # well under any max_frame the daemon may announce


class Conn:
    """Frames over the daemon's Unix socket: a 4-byte big-endian length, then a msgpack map.

    Several threads write (the reader's `credit`s, the stdin forwarder, the signal handler's
    `kill`), so writes go through a queue to one writer thread: frames never interleave, and a
    signal handler never blocks on the socket. (The daemon keeps reading a client's `credit`,
    `stdin` and `kill` even when the client is not reading, PROTOCOL.md "Flow control", so
    blocking writes from the reading thread would not deadlock either.)
    """

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.rfile = self.sock.makefile("rb")
        self.outq = queue.SimpleQueue()  # put() is safe from signal handlers and threads
        threading.Thread(target=self._writer, daemon=True).start()

    def _writer(self):
        try:
            while True:
                self.sock.sendall(self.outq.get())
        except OSError:
            pass  # the connection is gone; the reader finds out

    def send(self, msg):
        # use_bin_type: bytes become msgpack bin (needed for `data`), str stays str.
        body = msgpack.packb(msg, use_bin_type=True)
        self.outq.put(struct.pack(">I", len(body)) + body)

    def recv(self):
        header = self.rfile.read(4)
        if len(header) < 4:
            raise ConnectionError("the daemon closed the connection")
        (length,) = struct.unpack(">I", header)
        body = self.rfile.read(length)
        if len(body) < length:
            raise ConnectionError("the daemon closed the connection mid-frame")
        return msgpack.unpackb(body, raw=False)  # bin -> bytes, str -> str


class DaemonError(Exception):
    def __init__(self, msg):
        super().__init__(f"{msg['code']}: {msg['message']}")


def forward_stdin(conn, window, cond):
    """Sends our stdin as `stdin` frames, never more than the window the daemon granted."""
    fd = sys.stdin.fileno()
    while True:
        with cond:
            cond.wait_for(lambda: window[0] > 0)
            room = min(window[0], STDIN_CHUNK)
        data = os.read(fd, room)
        if not data:
            conn.send({"type": "close_stdin", "id": RUN_ID})
            return
        with cond:
            window[0] -= len(data)  # spend before sending: `stdin_credit` may come back fast
        conn.send({"type": "stdin", "id": RUN_ID, "data": data})


def run(conn, argv, limits, want_stdin):
    conn.send({"type": "hello", "protocol": PROTOCOL_VERSION, "client": "sandbox_client.py"})
    welcome = conn.recv()
    if welcome["type"] == "error":
        raise DaemonError(welcome)  # version_mismatch, or resource_exhausted (too many clients)
    spec = {"argv": argv, "limits": limits, "stdin": want_stdin}  # omitted fields: defaults
    conn.send({"type": "run", "id": RUN_ID, "spec": spec})

    window, cond = [welcome["window"]], threading.Condition()  # stdin window
    sinks = {"stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    while True:
        msg = conn.recv()
        kind = msg["type"]
        if kind == "error" and msg.get("id") is None:
            # Not about the run: e.g. resource_exhausted "too many signals pending" for a burst
            # of Ctrl-Cs. If the daemon also closed the connection, the next recv() says so.
            print(f"sandbox_client: daemon: {msg['code']}: {msg['message']}", file=sys.stderr)
            continue
        if msg.get("id") != RUN_ID:
            continue  # not ours (cannot happen with one run, shown for multiplexing clients)
        if kind == "started":
            if want_stdin:
                threading.Thread(target=forward_stdin, args=(conn, window, cond),
                                 daemon=True).start()
            # Forward Ctrl-C and SIGTERM to the command instead of dying (which would kill it).
            def forward(signum, _frame):
                conn.send({"type": "kill", "id": RUN_ID, "signal": signum})
            signal.signal(signal.SIGINT, forward)
            signal.signal(signal.SIGTERM, forward)
        elif kind == "output":
            sink = sinks[msg["stream"]]
            sink.write(msg["data"])
            sink.flush()
            # Written: let the daemon send that many more bytes on this stream.
            conn.send({"type": "credit", "id": RUN_ID, "stream": msg["stream"],
                       "bytes": len(msg["data"])})
        elif kind == "stdin_credit":
            with cond:
                window[0] += msg["bytes"]
                cond.notify()
        elif kind == "exit":
            return msg["status"]  # after all output; closing the connection is all that's left
        elif kind == "error":
            raise DaemonError(msg)  # with our id: the run's final frame (it failed)
        # Any other type (a newer daemon) is ignored.


def exit_code(status):
    if status["timed_out"]:
        print(f"sandbox: timed out after {status['duration_ms']} ms", file=sys.stderr)
        return 124
    if status["oom_killed"]:
        print(f"sandbox: killed: out of memory (limit {status['memory_limit']} bytes)",
              file=sys.stderr)
        return 137
    if status.get("signal") is not None:
        return 128 + status["signal"]
    return status["code"] if status.get("code") is not None else 255


def main():
    p = argparse.ArgumentParser(description="Run a command in a sandboxd sandbox.")
    p.add_argument("--socket", default=os.environ.get("SANDBOXD_SOCKET",
                                                      "/run/sandboxd/sandboxd.sock"))
    p.add_argument("--timeout", type=float, metavar="SECS", help="wall-clock limit")
    p.add_argument("--memory", type=int, metavar="BYTES", help="memory limit")
    p.add_argument("argv", nargs=argparse.REMAINDER, metavar="-- CMD ARGS...")
    args = p.parse_args()
    argv = args.argv[1:] if args.argv[:1] == ["--"] else args.argv
    if not argv:
        p.error("no command given")
    limits = {}
    if args.timeout is not None:
        limits["timeout_ms"] = max(1, round(args.timeout * 1000))
    if args.memory is not None:
        limits["memory"] = args.memory

    try:
        conn = Conn(args.socket)
        status = run(conn, argv, limits, want_stdin=not sys.stdin.isatty())
    except DaemonError as e:
        print(f"sandbox_client: {e}", file=sys.stderr)
        return 125
    except BrokenPipeError:  # our stdout was closed; dropping the connection kills the sandbox
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except KeyboardInterrupt:  # before the run started
        return 130
    except OSError as e:
        print(f"sandbox_client: {args.socket}: {e}", file=sys.stderr)
        return 125
    return exit_code(status)


if __name__ == "__main__":
    sys.exit(main())
