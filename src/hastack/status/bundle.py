"""One command per host: a fixed python3 script that runs every probe of that host at once.

Why: status must read a whole cloud in well under two seconds. One SSH session per probe would
cost a round trip each and run them one after the other; instead each host gets one session
running `python3 -c BUNDLE_SCRIPT`, which starts every task in its own thread and returns all
the answers as one JSON document. A task is
- `run`: an argv, normally a fact's exact argv, so its answer goes through that fact's own
  tested parser (`Section.result` is the `Result` the fact would have seen);
- `http`: an HTTP/1.0 GET on the host itself (the RabbitMQ management API), with basic auth:
  exit 0 and the body for a 200, exit 1 with the body and the status line on stderr otherwise,
  exit 2 when nothing listens;
- `tcp` / `unix`: a short exchange with a TCP service (memcached's `stats`) or a unix socket
  (HAProxy's `show stat`, answered like the fact's own script: exit 3 when nothing listens).

Secrets travel only on stdin (the task list is a JSON document on stdin, never an argv). Each
task has its own timeout; the script kills a command that outlives it (its whole process
group) and answers anyway, so one hung daemon never hides the others. A host without python3
falls back to running the `run` tasks one by one (`run_tasks`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit

from hastack.facts.base import Fact
from hastack.transport.base import CommandTimeout, HostError, Result, Transport

TaskKind = Literal["run", "http", "tcp", "unix"]
NO_PYTHON_EXIT = 127
TIMED_OUT_EXIT = 124
"""Exit status a section gets when its task outlived its timeout (like timeout(1))."""

BUNDLE_SCRIPT = r"""
import json, os, signal, socket, subprocess, sys, threading, time

def run(t):
    try:
        p = subprocess.Popen(t["argv"], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, start_new_session=True, env=dict(os.environ, LC_ALL="C"))
    except OSError as e:
        return {"exit": 127, "err": "%s: %s\n" % (t["argv"][0], e.strerror or e)}
    try:
        out, err = p.communicate(timeout=t["timeout"])
        timed_out = False
    except subprocess.TimeoutExpired:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            out, err = p.communicate(timeout=2)
        except subprocess.TimeoutExpired:
            out, err = b"", b""
        timed_out = True
    return {"exit": 124 if timed_out else p.returncode, "out": out.decode("utf-8", "replace"),
            "err": err.decode("utf-8", "replace"), "timeout": timed_out}

def http(t):
    import base64
    head = "GET %s HTTP/1.0\r\nHost: %s:%d\r\nAccept: application/json\r\n" % (t["path"], t["host"], t["port"])
    if t.get("auth"):
        head += "Authorization: Basic %s\r\n" % base64.b64encode(("%s:%s" % tuple(t["auth"])).encode()).decode()
    r = exchange(dict(t, send=head + "\r\n", until=""), socket.socket(socket.AF_INET, socket.SOCK_STREAM), 2)
    if r["exit"] != 0:
        return r
    status, _, rest = r["out"].partition("\r\n")
    body = rest.partition("\r\n\r\n")[2]
    if status.split(" ")[1:2] != ["200"]:
        return {"exit": 1, "out": body, "err": "%s\n" % (status or "no HTTP answer")}
    return {"exit": 0, "out": body}

def exchange(t, s, refused):
    try:
        s.settimeout(t["timeout"])
        s.connect(t["address"] if "address" in t else (t["host"], t["port"]))
    except socket.timeout:
        return {"exit": 124, "err": "no answer within %gs\n" % t["timeout"], "timeout": True}
    except OSError as e:
        return {"exit": refused, "err": "cannot connect: %s\n" % (e.strerror or e)}
    try:
        s.sendall(t["send"].encode())
        buf = b""
        while not t["until"] or t["until"].encode() not in buf:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        return {"exit": 124, "err": "no answer within %gs\n" % t["timeout"], "timeout": True}
    except OSError as e:
        return {"exit": 1, "err": "%s\n" % (e.strerror or e)}
    finally:
        s.close()
    done = not t["until"] or t["until"].encode() in buf
    return {"exit": 0 if done else 1, "out": buf.decode("utf-8", "replace")}

def tcp(t):
    return exchange(t, socket.socket(socket.AF_INET, socket.SOCK_STREAM), 2)

def unix(t):
    return exchange(t, socket.socket(socket.AF_UNIX, socket.SOCK_STREAM), 3)

results = {}

def work(t):
    t0 = time.monotonic()
    try:
        r = {"run": run, "http": http, "tcp": tcp, "unix": unix}[t["kind"]](t)
    except Exception as e:
        r = {"exit": 125, "err": "%s: %s\n" % (type(e).__name__, e)}
    r["ms"] = int((time.monotonic() - t0) * 1000)
    if t["kind"] == "run":
        r["argv"] = t["argv"]
    results[t["name"]] = r

spec = json.loads(sys.stdin.read())
threads = [threading.Thread(target=work, args=(t,), daemon=True) for t in spec["tasks"]]
for th in threads:
    th.start()
deadline = time.monotonic() + spec["budget"]
for th in threads:
    th.join(max(0.0, deadline - time.monotonic()))
for t in spec["tasks"]:
    if t["name"] not in results:
        results[t["name"]] = {"exit": 124, "err": "no answer within %gs\n" % spec["budget"], "timeout": True}
sys.stdout.write(json.dumps({"v": 1, "results": results}))
"""
"""Standard library only (Debian's python3-minimal plus urllib), Python 3.5+ syntax."""

BUNDLE_ARGV: tuple[str, ...] = ("python3", "-S", "-c", BUNDLE_SCRIPT)
"""-S: no site-packages to scan, only the standard library is used (and it starts faster)."""


@dataclass(frozen=True)
class Task:
    name: str
    kind: TaskKind
    timeout: float
    argv: tuple[str, ...] = ()
    url: str = ""
    auth: tuple[str, str] | None = field(default=None, repr=False)
    host: str = ""
    port: int = 0
    path: str = ""
    send: str = ""
    until: str = ""
    """Read until this text arrived ("" = until the peer closes)."""
    shown_as: tuple[str, ...] = ()
    """The argv its Result names (a unix task standing in for a fact's script names that fact)."""

    @classmethod
    def of_fact(cls, name: str, fact: Fact[Any], timeout: float) -> Task:
        """A fact's exact argv, so its answer can go through the fact's own parser."""
        return cls(name, "run", min(timeout, fact.timeout), argv=fact.argv)

    @property
    def shown(self) -> tuple[str, ...]:
        """What a Result of this task names as its command (never the credentials)."""
        if self.shown_as:
            return self.shown_as
        if self.kind == "run":
            return self.argv
        if self.kind == "http":
            return ("GET", self.url)
        if self.kind == "unix":
            return ("unix", self.path)
        return ("tcp", f"{self.host}:{self.port}")

    def spec(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "timeout": self.timeout}
        if self.kind == "run":
            out["argv"] = list(self.argv)
        elif self.kind == "http":
            u = urlsplit(self.url)
            out.update(host=u.hostname, port=u.port or 80, path=u.path + (f"?{u.query}" if u.query else ""),
                       auth=list(self.auth) if self.auth else None)
        elif self.kind == "unix":
            out.update(address=self.path, send=self.send, until=self.until)
        else:
            out.update(host=self.host, port=self.port, send=self.send, until=self.until)
        return out


@dataclass(frozen=True)
class Section:
    """One task's answer: the Result a fact parser takes, and whether it was cut short."""

    result: Result
    timed_out: bool = False
    seconds: float = 0.0

    @property
    def problem(self) -> str:
        """Why this section has no usable answer ("" when it has one)."""
        if self.timed_out:
            return (self.result.stderr.strip() or "timed out").splitlines()[0]
        return ""


def budget(tasks: Sequence[Task]) -> float:
    """The bundle's own deadline: the slowest task's timeout plus time to start and answer."""
    return max((t.timeout for t in tasks), default=0.0) + 0.5


def stdin_of(tasks: Sequence[Task]) -> bytes:
    return json.dumps({"tasks": [t.spec() for t in tasks], "budget": budget(tasks)}).encode()


def parse_bundle(host: str, tasks: Sequence[Task], text: str) -> dict[str, Section]:
    """The script's JSON -> a Section per task (a task the output lacks is an error). A `run` task's
    answer names the argv it ran, so a reader never pairs an answer with another command."""
    doc = json.loads(text)
    if not isinstance(doc, dict) or doc.get("v") != 1 or not isinstance(doc.get("results"), dict):
        raise ValueError("not a hastack status bundle answer")
    out = {}
    for t in tasks:
        r = doc["results"].get(t.name)
        if not isinstance(r, dict):
            raise ValueError(f"no answer for task {t.name}")
        argv = tuple(str(a) for a in r["argv"]) if isinstance(r.get("argv"), list) else t.shown
        result = Result(host, argv, int(r.get("exit", 1)), str(r.get("out", "")), str(r.get("err", "")))
        out[t.name] = Section(result, bool(r.get("timeout", False)), int(r.get("ms", 0)) / 1000)
    return out


async def run_bundle(transport: Transport, tasks: Sequence[Task]) -> dict[str, Section]:
    """Run every task on one host in one session; fall back to one command per task without python3."""
    if not tasks:
        return {}
    limit = budget(tasks) + 1.0
    result = await transport.run(BUNDLE_ARGV, stdin=stdin_of(tasks), timeout=limit)
    if result.exit_status == NO_PYTHON_EXIT and not result.stdout.strip():
        return await run_tasks(transport, tasks)
    if result.exit_status != 0:
        tail = result.tail(3).replace("\n", " | ")
        raise HostError(transport.host, f"the status probe failed (exit {result.exit_status}): {tail}")
    try:
        return parse_bundle(transport.host, tasks, result.stdout)
    except (ValueError, TypeError) as exc:
        raise HostError(transport.host, f"the status probe's answer is unreadable: {exc}") from exc


async def run_tasks(transport: Transport, tasks: Sequence[Task]) -> dict[str, Section]:
    """Without python3 on the host: each `run` task as its own command, one after the other;
    the `http` and `tcp` tasks need the script and are reported as not run."""
    out = {}
    for t in tasks:
        t0 = time.monotonic()
        if t.kind != "run":
            out[t.name] = Section(Result(transport.host, t.shown, NO_PYTHON_EXIT, "", "python3 is not installed\n"))
            continue
        try:
            r = await transport.run(t.argv, timeout=t.timeout)
        except CommandTimeout as exc:
            r = Result(transport.host, t.argv, TIMED_OUT_EXIT, "", f"{exc.message}\n")
            out[t.name] = Section(r, True, time.monotonic() - t0)
            continue
        out[t.name] = Section(r, False, time.monotonic() - t0)
    return out
