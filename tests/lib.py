"""Helpers for heaptap's end-to-end tests: run heaptap on targets, read its JSON report,
find sites by function, drive the targets' SIGUSR1 handshake (tests/targets/handshake.h)."""
import json
import os
import re
import signal
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HEAPTAP = os.path.join(ROOT, "build", "heaptap")
HEAPTAP_SAN = os.path.join(ROOT, "build-san", "heaptap")
TARGETS = os.path.join(ROOT, "build", "targets")
OUT = os.path.join(ROOT, "tests", "out")


class Skip(Exception):
    """Raised by a test that cannot run here (a missing kernel feature, say)."""


def target(name):
    path = os.path.join(TARGETS, name)
    assert os.path.exists(path), f"target {name} not built (make targets)"
    return path


def tmp(name):
    os.makedirs(OUT, exist_ok=True)
    return os.path.join(OUT, name)


class Result:
    def __init__(self, rc, stdout, stderr, report):
        self.rc, self.stdout, self.stderr, self.report = rc, stdout, stderr, report

    @property
    def procs(self):
        return self.report["processes"]

    def proc(self, pid=None):
        ps = self.procs if pid is None else [p for p in self.procs if p["pid"] == pid]
        assert len(ps) == 1, f"expected one process, got {[p['pid'] for p in self.procs]}"
        return ps[0]


def load_json(path):
    with open(path) as f:
        return json.load(f)


def launch(argv, *heaptap_args, env=None, timeout=120, json_out=True, binary=HEAPTAP):
    """heaptap [args] --json F -- argv; returns Result (report None if no JSON)."""
    jpath = tmp(f"r-{os.getpid()}-{time.monotonic_ns()}.json")
    args = [binary, *heaptap_args]
    if json_out:
        args += ["--json", jpath]
    args += ["--", *argv]
    r = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    report = load_json(jpath) if json_out and os.path.exists(jpath) else None
    if report is not None:
        os.unlink(jpath)
    return Result(r.returncode, r.stdout, r.stderr, report)


def frames_of(site):
    return [f["function"] for f in site["frames"]]


def sites_with(proc, function, allocator=None):
    """Sites whose stack contains function (and made by allocator, if given)."""
    return [s for s in proc["sites"]
            if function in frames_of(s) and (allocator is None or s["allocator"] == allocator)]


def one_site(proc, function, allocator=None):
    ss = sites_with(proc, function, allocator)
    assert len(ss) == 1, (f"expected 1 site with {function}/{allocator}, got {len(ss)}: "
                          f"{[(s['allocator'], frames_of(s)[:4]) for s in proc['sites']]}")
    return ss[0]


def totals(sites, key):
    return sum(s[key] for s in sites)


def marked_line(src, marker):
    with open(os.path.join(ROOT, "tests", "targets", src)) as f:
        for i, line in enumerate(f, 1):
            if marker in line:
                return i
    raise AssertionError(f"{marker} not in {src}")


class Waiting:
    """A target started with HT_WAIT=1: it prints 'ready PID', waits for SIGUSR1, does its
    work, prints 'done', waits for SIGUSR1 again, exits."""

    def __init__(self, name, *args):
        self.p = subprocess.Popen([target(name), *args], stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, HT_WAIT="1"))
        line = self.p.stdout.readline()
        m = re.match(r"ready (\d+)", line)
        assert m, f"target said {line!r}"
        self.pid = int(m.group(1))

    def go(self):
        os.kill(self.pid, signal.SIGUSR1)

    def wait_done(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.p.stdout.readline()
            if line.startswith("done"):
                return
            if not line and self.p.poll() is not None:
                raise AssertionError(f"target exited {self.p.returncode} before 'done'")
        raise AssertionError("target never said done")

    def finish(self, timeout=30):
        os.kill(self.pid, signal.SIGUSR1)
        return self.p.wait(timeout=timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Attached:
    """heaptap -p PID running in the background; ready once it logged that it traces."""

    def __init__(self, pid, *args, json_out=True, binary=HEAPTAP):
        self.json = tmp(f"a-{pid}-{time.monotonic_ns()}.json") if json_out else None
        argv = [binary, "-v", "-p", str(pid), *args]
        if self.json:
            argv += ["--json", self.json]
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            self.err.seek(0)
            text = self.err.read()
            if "tracing pid" in text:
                return
            if self.p.poll() is not None:
                raise AssertionError(f"heaptap exited {self.p.returncode}: {text}")
            time.sleep(0.02)
        raise AssertionError("heaptap did not attach in 30 s")

    def wait(self, timeout=60):
        out, _ = self.p.communicate(timeout=timeout)
        self.err.seek(0)
        report = load_json(self.json) if self.json and os.path.exists(self.json) else None
        return Result(self.p.returncode, out, self.err.read(), report)

    def stop(self, sig=signal.SIGINT, timeout=60):
        self.p.send_signal(sig)
        return self.wait(timeout)


def run_heaptap(*args, timeout=60, **kw):
    return subprocess.run([HEAPTAP, *args], capture_output=True, text=True, timeout=timeout, **kw)


def parse_folded(text):
    """[(frames root-first, value)]; asserts every line is well formed."""
    out = []
    for line in text.splitlines():
        stack, _, value = line.rpartition(" ")
        assert stack and value.isdigit(), f"bad folded line {line!r}"
        out.append((stack.split(";"), int(value)))
    return out


# --- system-wide sessions (heaptap -a) -------------------------------------------------


class WaitingArgv(Waiting):
    """Like Waiting, for any command line (e.g. ["chroot", DIR, "/leak"]) and extra
    environment; the program must do the HT_WAIT handshake."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(list(argv), stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, HT_WAIT="1", **(env or {})))
        line = self.p.stdout.readline()
        m = re.match(r"ready (\d+)", line)
        assert m, f"{argv[0]} said {line!r}"
        self.pid = int(m.group(1))


def read_line(w, pattern):
    """Read a Waiting target's stdout up to the first line matching pattern (re.match);
    returns the match.  Lines before it are dropped."""
    while True:
        line = w.p.stdout.readline()
        if not line:
            raise AssertionError(f"target ended (rc {w.p.poll()}) before a line {pattern!r}")
        m = re.match(pattern, line)
        if m:
            return m


def lines_until_done(w):
    """Read a Waiting target's stdout up to its 'done' line; returns the lines before."""
    out = []
    while True:
        line = w.p.stdout.readline()
        if not line:
            raise AssertionError(f"target ended (rc {w.p.poll()}) before 'done'")
        if line.startswith("done"):
            return out
        out.append(line.rstrip("\n"))


class SystemWide(Attached):
    """heaptap -v -a [args] --json F in the background; ready once it logged
    'tracing system-wide'.  stop() (SIGINT) ends it with the final report."""

    def __init__(self, *args, json_out=True, binary=HEAPTAP, timeout=120):
        self.json = tmp(f"sys-{os.getpid()}-{time.monotonic_ns()}.json") if json_out else None
        argv = [binary, "-v", "-a", *args]
        if self.json:
            argv += ["--json", self.json]
        self.err = tempfile.TemporaryFile(mode="w+")
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=self.err, text=True)
        self.pid = self.p.pid
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if "tracing system-wide" in self.stderr():
                return
            if self.p.poll() is not None:
                raise AssertionError(f"heaptap -a exited {self.p.returncode}: {self.stderr()}")
            time.sleep(0.05)
        self.p.kill()
        self.p.wait()
        raise AssertionError(f"heaptap -a did not start tracing in {timeout} s")

    def stderr(self):
        """What heaptap wrote to stderr so far."""
        self.err.seek(0)
        return self.err.read()

    def wait_stderr(self, text, timeout=10):
        """Wait until stderr contains text; True if it did within timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.stderr():
                return True
            if self.p.poll() is not None:
                return False
            time.sleep(0.05)
        return False

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


def proc_or_none(result, pid):
    """The report's process with this pid, or None."""
    ps = [p for p in result.procs if p["pid"] == pid]
    assert len(ps) <= 1, f"pid {pid} listed {len(ps)} times"
    return ps[0] if ps else None


def make_chroot(exe, root=None):
    """A minimal chroot tree holding a copy of exe as /NAME and copies of every object
    `ldd exe` names (the dynamic linker included), at the same paths: `chroot ROOT /NAME`
    runs it with its own libc (a different inode from the host's).  Returns ROOT; the
    caller removes it (shutil.rmtree)."""
    import shutil

    root = root or tempfile.mkdtemp(prefix="heaptap-chroot-", dir="/tmp")
    shutil.copy2(exe, os.path.join(root, os.path.basename(exe)))
    r = subprocess.run(["ldd", exe], capture_output=True, text=True, check=True)
    for line in r.stdout.splitlines():
        m = re.search(r"(/\S+) \(0x", line)
        if not m:
            continue
        src = m.group(1)
        dst = os.path.join(root, src.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        shutil.copy2(os.path.realpath(src), dst)  # a real file, not a link to the host's
    return root


def kv_line(text, tag):
    """The key=value fields of the line of text that starts with tag (bench binaries' output)."""
    for line in text.splitlines():
        if line.startswith(tag + " "):
            return dict(f.split("=", 1) for f in line.split()[1:])
    raise AssertionError(f"no {tag} line in {text!r}")
