"""heaptap -a: system-wide sessions.  Several targets at once (C, C++, static, started after
the session, forking, in a chroot with its own libc), exact figures per pid; unrelated
processes attributed to themselves; 200 short-lived processes with a bounded process table;
--comm and --cgroup; an allocator library (jemalloc) dlopened or preloaded after attach.

Every session ends with SIGINT once the targets are done (still alive at their 'done'
handshake unless a test wants them exited)."""
import ctypes
import os
import re
import shutil
import signal
import subprocess
import time

from lib import (OUT, ROOT, Skip, SystemWide, Waiting, WaitingArgv, frames_of, lines_until_done,
                 make_chroot, one_site, proc_or_none, read_line, run_heaptap, sites_with,
                 target, tmp)

JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
DLOPEN_ENV = {"GLIBC_TUNABLES": "glibc.rtld.optional_static_tls=65536"}

# functions of the targets: a site of one target's pid must never show another's
TARGET_FUNCS = {"leak_here", "do_leaks", "churn_pair", "do_churn", "parent_keep", "child_keep",
                "new_scalar", "new_array", "new_aligned", "new_nothrow"}

# cxx after attach (it allocates nothing before its handshake but libstdc++'s emergency
# pool): operator-level sites, (allocator, alloc_count, alloc_bytes, live_count, live_bytes)
CXX_WANT = {
    "new_scalar": ("operator new", 100, 4800, 100, 4800),
    "new_array": ("operator new[]", 10, 10000, 0, 0),
    "new_aligned": ("operator new(align)", 5, 640, 3, 384),
    "new_nothrow": ("operator new[](nothrow)", 3, 231, 3, 231),
}


def funcs(site):
    """Function names in a site's frames, C++ argument lists cut off."""
    return {(f or "").split("(")[0] for f in frames_of(site)}


def foreign_sites(p, own):
    """Sites of p whose frames hold a target function that is not one of p's own."""
    return [frames_of(s) for s in p["sites"] if (funcs(s) & TARGET_FUNCS) - set(own)]


def check_leak(p, allocator="glibc"):
    """A leak process traced from before its work: exactly 1000 x 4096 in leak_here."""
    s = one_site(p, "leak_here", "malloc")
    assert (s["alloc_count"], s["alloc_bytes"]) == (1000, 4096000), s
    assert (s["live_count"], s["live_bytes"]) == (1000, 4096000), s
    assert (p["alloc_count"], p["live_count"], p["live_bytes"]) == (1000, 1000, 4096000), p["pid"]
    assert p["unknown_frees"] == 0
    assert p["allocator"] == allocator, (p["pid"], p["allocator"])
    assert not foreign_sites(p, {"leak_here", "do_leaks"}), foreign_sites(p, {"leak_here"})


def check_cxx(p):
    for fn, w in CXX_WANT.items():
        ss = [s for s in p["sites"] if any((f or "").startswith(fn + "(") for f in frames_of(s))]
        assert len(ss) == 1, (fn, [(s["allocator"], frames_of(s)) for s in p["sites"]])
        s = ss[0]
        got = (s["allocator"], s["alloc_count"], s["alloc_bytes"], s["live_count"], s["live_bytes"])
        assert got == w, f"{fn}: {got} != {w}"
    assert (p["alloc_count"], p["free_count"]) == (118, 12), (p["alloc_count"], p["free_count"])
    assert (p["live_count"], p["live_bytes"]) == (106, 5415)
    assert p["unknown_frees"] == 0
    assert p["allocator"] == "glibc", p["allocator"]
    assert not foreign_sites(p, set(CXX_WANT))


def finish_all(ts):
    for t in ts:
        assert t.finish() == 0, t.pid


def cleanup(ts, s=None):
    for t in ts:
        t.kill()
    if s is not None:
        s.kill()


def test_system_several_targets_exact():
    root = make_chroot(target("leak"))
    ts, s = {}, None
    try:
        ts["leak"] = Waiting("leak")
        ts["cxx"] = Waiting("cxx")
        ts["static"] = Waiting("leak-static")
        ts["forker"] = Waiting("forker")
        ts["chroot"] = WaitingArgv(["chroot", root, "/leak"])
        s = SystemWide()
        ts["late"] = Waiting("leak")  # exec'd after the session began
        for t in ts.values():
            t.go()
        child = int(read_line(ts["forker"], r"child (\d+)").group(1))
        for t in ts.values():
            t.wait_done()
        r = s.stop()
        finish_all(ts.values())
    finally:
        cleanup(ts.values(), s)
        shutil.rmtree(root, ignore_errors=True)
    assert r.rc == 0, r.stderr
    pids = [p["pid"] for p in r.procs]
    assert len(pids) == len(set(pids)), "a pid listed twice"
    assert s.pid not in pids, "heaptap traced itself"
    for name in ("leak", "late", "chroot"):
        p = r.proc(ts[name].pid)
        assert p["comm"] == "leak" and not p["exited"], (name, p["comm"], p["exited"])
        check_leak(p)
    check_cxx(r.proc(ts["cxx"].pid))
    # static: its own malloc; glibc's startup allocations happened before the session
    st = r.proc(ts["static"].pid)
    check_leak(st, allocator="static")
    # forker: the parent keeps its 100 blocks; the child has its own 50, and its frees of
    # 10 inherited blocks are unknown frees in the child (its model starts empty at fork)
    par = r.proc(ts["forker"].pid)
    s_par = one_site(par, "parent_keep", "malloc")
    assert (s_par["alloc_count"], s_par["live_count"], s_par["live_bytes"]) == (100, 100, 100000)
    assert (par["alloc_count"], par["live_count"], par["live_bytes"]) == (100, 100, 100000)
    assert par["free_count"] == 0 and par["unknown_frees"] == 0
    assert not foreign_sites(par, {"parent_keep"}), foreign_sites(par, {"parent_keep"})
    ch = r.proc(child)
    assert ch["comm"] == "forker" and not ch["exited"]
    s_ch = one_site(ch, "child_keep", "malloc")
    assert (s_ch["alloc_count"], s_ch["live_count"], s_ch["live_bytes"]) == (50, 50, 100000)
    assert (ch["alloc_count"], ch["live_count"], ch["live_bytes"]) == (50, 50, 100000)
    assert ch["unknown_frees"] == 10, ch["unknown_frees"]
    assert sites_with(ch, "parent_keep") == [], "parent's blocks attributed to the child"
    assert not foreign_sites(ch, {"child_keep"}), foreign_sites(ch, {"child_keep"})
    # objects: the host's libc and the chroot's copy (another inode) are both attached,
    # and so is the static binary (it carries its own malloc)
    sysinfo = r.report["system"]
    names = [os.path.basename(o["path"]) for o in sysinfo["objects"]]
    assert names.count("libc.so.6") >= 2, sysinfo["objects"]
    assert "leak-static" in names, sysinfo["objects"]
    assert all(o["functions"] > 0 for o in sysinfo["objects"]), sysinfo["objects"]
    assert sysinfo["procs_seen"] >= 7, sysinfo
    assert "tracing system-wide" in r.stderr


def test_system_folded_has_process_root():
    t, s = Waiting("leak"), None
    folded = tmp(f"sys-{os.getpid()}.folded")
    try:
        s = SystemWide("-o", folded)
        t.go()
        t.wait_done()
        r = s.stop()
        finish_all([t])
    finally:
        cleanup([t], s)
    assert r.rc == 0, r.stderr
    with open(folded) as f:
        text = f.read()
    os.unlink(folded)
    # src/write_folded.c: "comm (pid)" is the root frame when the report holds several
    # processes (a system-wide report does on any real machine)
    root = f"leak ({t.pid})"
    mine = [line for line in text.splitlines() if line.startswith(root + ";")]
    assert len(r.procs) > 1 or not mine, "single-process report: no process root expected"
    if len(r.procs) > 1:
        assert len(mine) == 1, mine
        assert "leak_here" in mine[0] and mine[0].endswith(";malloc 4096000"), mine


def test_system_unrelated_processes_attributed_to_themselves():
    ts, s, sh = {}, None, None
    try:
        ts["leak"] = Waiting("leak")
        ts["cxx"] = Waiting("cxx")
        s = SystemWide()
        # unrelated work at the same time: a churning process and a shell running ls
        ts["churn"] = Waiting("churn", "200000")
        sh = subprocess.Popen(
            ["sh", "-c", "for i in 1 2 3 4 5 6 7 8 9 10; do "
                         "ls -lR /usr/share/doc >/dev/null & echo $!; wait; done"],
            stdout=subprocess.PIPE, text=True)
        for t in ts.values():
            t.go()
        for t in ts.values():
            t.wait_done()
        ls_pids = [int(x) for x in sh.communicate(timeout=120)[0].split()]
        r = s.stop()
        finish_all(ts.values())
    finally:
        cleanup(ts.values(), s)
        if sh is not None and sh.poll() is None:
            sh.kill()
            sh.wait()
    assert r.rc == 0, r.stderr
    check_leak(r.proc(ts["leak"].pid))
    check_cxx(r.proc(ts["cxx"].pid))
    ch = r.proc(ts["churn"].pid)
    s_ch = one_site(ch, "churn_pair", "malloc")
    assert (s_ch["alloc_count"], s_ch["free_count"], s_ch["live_count"]) == (200000, 200000, 0)
    assert not foreign_sites(ch, {"churn_pair", "do_churn"})
    assert len(ls_pids) == 10
    seen = [p for p in (proc_or_none(r, pid) for pid in ls_pids) if p is not None]
    assert seen, f"none of the ls processes {ls_pids} in the report"
    for p in seen:
        assert p["comm"] == "ls" and p["exited"] and p["alloc_count"] > 0, p["pid"]
        assert not foreign_sites(p, set()), foreign_sites(p, set())
    # no process other than the targets shows a target's functions
    target_pids = {t.pid for t in ts.values()}
    for p in r.procs:
        if p["pid"] not in target_pids and p["comm"] in ("leak", "cxx", "churn", "sh", "ls"):
            assert not foreign_sites(p, set()), (p["pid"], p["comm"], foreign_sites(p, set()))


def test_system_200_short_lived_processes_bounded_table():
    sp, s = None, None
    try:
        s = SystemWide("--max-procs", "50")
        sp = Waiting("spawner", "200", target("leak"))
        sp.go()
        lines = lines_until_done(sp)
        time.sleep(0.5)  # the last child's exit reaches heaptap
        r = s.stop(timeout=120)
        assert sp.finish() == 0
    finally:
        cleanup([sp] if sp else [], s)
    assert r.rc == 0, r.stderr
    kids = {int(m.group(1)) for m in (re.match(r"spawned (\d+)", x) for x in lines) if m}
    assert len(kids) == 200, lines[:5]
    assert len(r.procs) <= 50, len(r.procs)
    sysinfo = r.report["system"]
    assert sysinfo["procs_seen"] >= 201, sysinfo  # the spawner and its 200 children
    assert sysinfo["procs_exited"] >= 200, sysinfo
    assert sysinfo["procs_evicted"] >= 150, sysinfo
    assert len(r.procs) + sysinfo["procs_evicted"] <= sysinfo["procs_seen"], sysinfo
    # the stacks of evicted processes went with them (their ids are reused): every stack
    # kept is a site of a process still in the table
    assert r.report["stacks_tracked"] == sum(len(p["sites"]) for p in r.procs), \
        (r.report["stacks_tracked"], [(p["pid"], len(p["sites"])) for p in r.procs])
    kept = [p for p in r.procs if p["pid"] in kids]
    for p in kept:  # every exited leak child still in the table keeps its exact figures
        assert p["exited"] and p["comm"] == "leak", (p["pid"], p["comm"], p["exited"])
        check_leak(p)


def test_system_comm_filter():
    ts, s = {}, None
    try:
        ts["early"] = Waiting("leak")
        s = SystemWide("--comm", "leak,nosuchprog")
        ts["late"] = Waiting("leak")
        # pid-scoped: attached when its exec is handled (what comes before that is the
        # documented window); its allocations start after heaptap says it attached
        s.wait_stderr(f"attached to process {ts['late'].pid} (leak)")
        ts["cxx"] = Waiting("cxx")  # running at the same time, not selected
        for t in ts.values():
            t.go()
        for t in ts.values():
            t.wait_done()
        r = s.stop()
        finish_all(ts.values())
    finally:
        cleanup(ts.values(), s)
    assert r.rc == 0, r.stderr
    assert {p["comm"] for p in r.procs} == {"leak"}, [(p["pid"], p["comm"]) for p in r.procs]
    check_leak(r.proc(ts["early"].pid))
    check_leak(r.proc(ts["late"].pid))
    assert proc_or_none(r, ts["cxx"].pid) is None
    assert r.report["system"]["comm_unmatched"] == ["nosuchprog"]
    assert "no process named nosuchprog seen (still watching)" in r.stdout


def test_system_comm_matching_nothing():
    s = None
    try:
        s = SystemWide("--comm", "nosuchprog")
        time.sleep(1)
        r = s.stop()
    finally:
        if s is not None:
            s.kill()
    assert r.rc == 0, f"rc {r.rc}: {r.stderr} {r.stdout[-500:]}"
    assert r.procs == []
    assert r.report["system"]["comm_unmatched"] == ["nosuchprog"]
    assert "no process named nosuchprog seen (still watching)" in r.stdout


def test_system_cgroup_missing():
    path = "/sys/fs/cgroup/does/not/exist"
    r = run_heaptap("-a", "--cgroup", path, "-d", "1")
    assert r.returncode == 1, (r.returncode, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("heaptap: error: ") and path in lines[0], \
        r.stderr
    assert r.stdout == ""


# A target for dlopen after attach, built by the test (C, gnu11, handshake.h):
#   ready -> dlopen(libjemalloc) -> "opened", wait for SIGUSR1 -> je_keep: 20 x je
#   malloc(5000) -> je_release: je free of the first 5 -> done.
# jemalloc uses initial-exec TLS: a dlopen fails ("cannot allocate memory in static TLS
# block") unless glibc reserves more optional static TLS (DLOPEN_ENV).
# Ground truth at je_keep: malloc (jemalloc's) 20 x 5000 = 100000 allocated, 15 x 5000 =
# 75000 live.  dlopen itself allocates with glibc's malloc (not asserted).
DLOPEN_SRC = r"""
#include <dlfcn.h>
#include "handshake.h"

static void *(*je_malloc)(size_t);
static void (*je_free)(void *);
void *volatile g_je[20];
void je_keep(void);
void je_release(void);

HT_NOINLINE void je_keep(void)
{
	for (int i = 0; i < 20; i++)
		g_je[i] = je_malloc(5000);
}

HT_NOINLINE void je_release(void)
{
	for (int i = 0; i < 5; i++)
		je_free(g_je[i]);
}

int main(int argc, char **argv)
{
	void *h;

	(void)argc;
	ht_init();
	ht_ready();
	h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return 1;
	je_malloc = (void *(*)(size_t))dlsym(h, "malloc");
	je_free = (void (*)(void *))dlsym(h, "free");
	if (!je_malloc || !je_free)
		return 1;
	ht_write("opened\n");
	if (ht_waiting())
		ht_wait_usr1();
	je_keep();
	je_release();
	ht_done();
	return 0;
}
"""


def build_dlopen_target():
    if not os.path.exists(JEMALLOC):
        raise Skip(f"{JEMALLOC} not installed (scripts/install-deps.sh: libjemalloc2)")
    if shutil.which("gcc") is None:
        raise Skip("no gcc to build the dlopen target")
    os.makedirs(OUT, exist_ok=True)
    src, exe = os.path.join(OUT, "dlopen_je.c"), os.path.join(OUT, "dlopen_je")
    with open(src, "w") as f:
        f.write(DLOPEN_SRC)
    subprocess.run(["gcc", "-std=gnu11", "-D_GNU_SOURCE", "-Wall", "-Werror", "-O1", "-g",
                    "-fno-omit-frame-pointer", "-fno-inline", "-fno-optimize-sibling-calls",
                    "-I", os.path.join(ROOT, "tests", "targets"), "-o", exe, src, "-ldl"],
                   check=True, capture_output=True, text=True)
    return exe


def trace_until_jemalloc_attached(argv, env, dlopens=False):
    """Runs argv (a WaitingArgv target) under a system-wide session; the target goes on only
    once heaptap has attached libjemalloc (which it notices asynchronously; -v names the
    objects it attaches).  dlopens: the target loads it at its first go, saying "opened".
    Returns the report and the target's pid."""
    t, s = None, None
    try:
        s = SystemWide()
        t = WaitingArgv(argv, env=env)
        if dlopens:
            t.go()
            read_line(t, r"opened")
        if not s.wait_stderr("libjemalloc", timeout=10):
            time.sleep(2)
        t.go()
        t.wait_done()
        r = s.stop()
        assert t.finish() == 0
    finally:
        cleanup([t] if t else [], s)
    assert r.rc == 0, r.stderr
    return r, t.pid


def test_system_dlopen_allocator_after_attach():
    exe = build_dlopen_target()
    r, pid = trace_until_jemalloc_attached([exe, JEMALLOC], DLOPEN_ENV, dlopens=True)
    p = r.proc(pid)
    site = one_site(p, "je_keep", "malloc")
    assert (site["alloc_count"], site["alloc_bytes"]) == (20, 100000), site
    assert (site["live_count"], site["live_bytes"]) == (15, 75000), site
    paths = [o["path"] for o in r.report["system"]["objects"]]
    assert any(os.path.basename(x) == "libjemalloc.so.2" for x in paths), paths


def check_leak_under_jemalloc(p):
    """The leak target's process, its malloc served by jemalloc: every block seen."""
    assert p["allocator"] == "jemalloc", p["allocator"]
    s_leak = one_site(p, "leak_here", "malloc")
    assert (s_leak["alloc_count"], s_leak["live_count"], s_leak["live_bytes"]) == \
        (1000, 1000, 4096000), s_leak


def test_system_preloaded_jemalloc_process():
    if not os.path.exists(JEMALLOC):
        raise Skip(f"{JEMALLOC} not installed (scripts/install-deps.sh: libjemalloc2)")
    r, pid = trace_until_jemalloc_attached([target("leak")], {"LD_PRELOAD": JEMALLOC})
    p = r.proc(pid)
    check_leak_under_jemalloc(p)


class StoppedAtExec(Waiting):
    """argv (a HT_WAIT target), held stopped right after its exec, before its dynamic
    linker ran (ptrace's exec stop): a map read now shows the executable and ld.so only,
    what a collector waking faster than ld.so works would see.  release() lets it run."""

    def __init__(self, argv, env=None):
        libc = ctypes.CDLL(None, use_errno=True)
        self.ptrace = libc.ptrace
        self.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
        self.p = subprocess.Popen(list(argv), stdout=subprocess.PIPE, text=True,
                                  env=dict(os.environ, HT_WAIT="1", **(env or {})),
                                  preexec_fn=lambda: self.ptrace(0, 0, None, None))  # TRACEME
        _, status = os.waitpid(self.p.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status) and os.WSTOPSIG(status) == signal.SIGTRAP, status
        self.pid = self.p.pid

    def release(self):
        assert self.ptrace(17, self.pid, None, None) == 0, ctypes.get_errno()  # DETACH
        m = re.match(r"ready (\d+)", self.p.stdout.readline())
        assert m and int(m.group(1)) == self.pid, m


def test_system_allocator_mapped_after_the_exec_is_attached():
    # The exec record is handled while the program is held before ld.so ran; its preloaded
    # jemalloc (never seen by this session) is mapped only after: the map must be read again
    # (every process: attached globally; --comm: the pid-scoped probes bound again).
    if not os.path.exists(JEMALLOC):
        raise Skip(f"{JEMALLOC} not installed (scripts/install-deps.sh: libjemalloc2)")
    for args in ((), ("--comm", "leak")):
        check_allocator_mapped_after_the_exec(args)


def check_allocator_mapped_after_the_exec(args):
    t, s = None, None
    try:
        s = SystemWide(*args)
        t = StoppedAtExec([target("leak")], {"LD_PRELOAD": JEMALLOC})
        time.sleep(0.5)  # the exec record wakes heaptap at once: it reads the map now
        if args:  # attached from the objects known at the exec, while still held
            assert s.wait_stderr(f"attached to process {t.pid} (leak)"), s.stderr()[-2000:]
        assert "libjemalloc" not in s.stderr()
        t.release()
        assert s.wait_stderr("libjemalloc", timeout=10), s.stderr()[-2000:]
        t.go()
        t.wait_done()
        r = s.stop()
        assert t.finish() == 0
    finally:
        cleanup([t] if t else [], s)
    assert r.rc == 0, r.stderr
    p = r.proc(t.pid)
    check_leak_under_jemalloc(p)
    assert r.report["system"]["late_attaches"] >= 1, r.report["system"]
    assert not p["unknown_frees"], p


def make_cgroup():
    """A fresh cgroup (v2 if mounted, else the v1 pids hierarchy); Skip if none is usable."""
    for base in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        if os.path.exists(os.path.join(base, "cgroup.procs")):
            path = os.path.join(base, f"heaptap-test-{os.getpid()}")
            try:
                os.mkdir(path)
                return path
            except OSError:
                continue
    raise Skip("no writable cgroup hierarchy")


def test_system_cgroup_selects_only_its_processes():
    cg = make_cgroup()
    ts, s = {}, None
    try:
        ts["inside"] = Waiting("leak")
        with open(os.path.join(cg, "cgroup.procs"), "w") as f:
            f.write(str(ts["inside"].pid))
        ts["outside"] = Waiting("leak")
        s = SystemWide("--cgroup", cg)
        # a process that joins the cgroup and then execs is selected at its exec
        ts["late"] = WaitingArgv(["sh", "-c", f"echo $$ > {cg}/cgroup.procs && exec "
                                  f"{os.path.join(ROOT, 'build', 'targets', 'leak')}"])
        s.wait_stderr(f"attached to process {ts['late'].pid} (leak)")
        for t in ts.values():
            t.go()
        for t in ts.values():
            t.wait_done()
        r = s.stop()
        finish_all(ts.values())
    finally:
        cleanup(ts.values(), s)
        for _ in range(50):
            try:
                os.rmdir(cg)
                break
            except OSError:
                time.sleep(0.1)
    assert r.rc == 0, r.stderr
    assert sorted(p["pid"] for p in r.procs) == sorted([ts["inside"].pid, ts["late"].pid])
    check_leak(r.proc(ts["inside"].pid))
    check_leak(r.proc(ts["late"].pid))
    assert r.report["system"]["pid_scoped"]


def test_system_go_programs_before_and_after_start():
    # A Go executable carries its own allocator: attached at discovery (running before the
    # session) or at its exec (after), with its per-process settings (MemProfileRate).
    r = subprocess.run(["make", "-s", "go-targets-1.19"], cwd=ROOT, capture_output=True,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    exe = os.path.join(ROOT, "build", "targets", "go", "1.19", "gotarget")
    env = {"HT_MEMRATE": "1"}
    ts, s = {}, None
    try:
        ts["before"] = WaitingArgv([exe, "sampled"], env=env)
        s = SystemWide()
        ts["after"] = WaitingArgv([exe, "sampled"], env=env)
        s.wait_stderr(f"attached {exe}", timeout=10)  # a new object, at its exec
        for t in ts.values():
            t.go()
        for t in ts.values():
            t.wait_done()
        r = s.stop()
        finish_all(ts.values())
    finally:
        cleanup(ts.values(), s)
    assert r.rc == 0, r.stderr
    for name, t in ts.items():
        p = r.proc(t.pid)
        assert p["allocator"] == "go" and p["go"] and p["go"]["mem_profile_rate"] == 1, \
            (name, p["allocator"], p["go"])
        hot = [s_ for s_ in p["sites"] if "main.hotAlloc" in frames_of(s_)]
        assert sum(x["alloc_count"] for x in hot) == 20000, (name, hot)
        assert sum(x["live_count"] for x in hot) == 20000, name


def test_second_session_during_system_wide_chooses_the_same_sites():
    # The system-wide probes are written into every mapping of libc, heaptap's own too:
    # a second session must still decode the file's instructions, not the breakpoints.
    alone = subprocess.run([os.path.join(ROOT, "build", "heaptap"), "-v", "-q", "--",
                            target("leak")], capture_output=True, text=True, timeout=120)
    s = None
    try:
        s = SystemWide()
        during = subprocess.run([os.path.join(ROOT, "build", "heaptap"), "-v", "-q", "--",
                                 target("leak")], capture_output=True, text=True, timeout=120)
        s.stop()
    finally:
        if s is not None:
            s.kill()

    def sites(r):
        assert r.returncode == 0, r.stderr
        return [line for line in r.stderr.splitlines() if line.startswith("heaptap: probe ")]

    assert sites(alone) and sites(during) == sites(alone), (sites(alone), sites(during))
    assert not [line for line in sites(during) if "int3" in line]
