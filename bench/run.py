#!/usr/bin/env python3
"""heaptap benchmark runner: `make bench`, or `python3 bench/run.py [options]` from the repo root.

Measures, side by side in one run, what tracing costs each workload in bench/workloads/:
untraced; heaptap's floors (--mode floor-live / floor-rate: empty BPF programs at the probe
sites the real modes use); heaptap live, rate, and live with byte sampling; and bpftrace
running bench/live.bt (the same job as live mode).  The Go workload (bench/go, built into
build/bench/gobench) has its own configurations: untraced; heaptap's default for Go (probes
on Go's own sampler, runtime.profilealloc/freeSpecial); --go-exact (a probe per
allocation); --go-exact --sample 524288; bpftrace has no equivalent (n/a).  Every
configuration of every workload runs once per repetition, the order rotating between
repetitions, and the table shows medians (ratios: medians of the per-repetition ratios).
--only selects workloads by name (--only go: just the Go rows).  Then a sustained-rate
check (the 2-thread microbenchmark under heaptap for a minute: what event rate uprobes
reach here, and whether the ring buffer drops), the collector draining a BPF ring buffer
fed at 1 M records/s by a BPF generator (build/bench/ring_bench), and the collector replay
benchmark (build/bench/collector_bench).

CPU time is the workload's own (user+sys from its getrusage at exit, printed on stderr by
bench/workloads/report.h): uprobe traps and BPF programs run in its context and are
charged to it.  The tracer's own CPU is the tracer's wait4() rusage (which includes the
children it reaped) minus the workload's.  The tracer's peak RSS is the wait4() maxrss when
that exceeds the workload's (a child inherits its parent's high-water mark at fork), else
the highest VmHWM read from /proc while it ran (shown with >=).

Benchmarks report; they never fail: the exit status is 0 unless the options are wrong.
Output: the markdown table on stdout, progress on stderr, a copy in build/bench/results.md;
--update-readme replaces README.md's "## Benchmarks" section with it.
"""

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_DIR = os.path.join(ROOT, "build", "bench")
LIVE_BT = os.path.join(ROOT, "bench", "live.bt")
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"  # the path live.bt probes
BT_LIBDIR = os.path.join(BENCH_DIR, "bt-lib")
RUN_TIMEOUT = 600  # seconds; a run that takes longer is killed and reported as failed

# name, argv (relative to build/bench), what one op is, configurations (below).  Sizes
# chosen so a traced run takes a few seconds here (a uprobe trap costs several microseconds
# on this kind of VM).  gobench: ~127 allocations a round; untraced 0.1 s, but --go-exact
# costs ~20 µs of CPU per allocation here (some 15 s a run), hence not more.
WORKLOADS = [
    ("malloc 1T", ["malloc_pairs", "{pairs}", "1"], "malloc+free pair", "c"),
    ("malloc 2T", ["malloc_pairs", "{pairs}", "2"], "malloc+free pair", "c"),
    ("strtab", ["strtab", "{events}"], "allocator call", "c"),
    ("c++ growth", ["cxx_growth", "{rounds}"], "new or delete", "c"),
    ("go", ["gobench", "{go_rounds}"], "Go heap allocation", "go"),
]
SIZES = {"pairs": 100000, "events": 25000, "rounds": 500, "go_rounds": 5000}

# name, heaptap arguments (None: not heaptap), the floor it is compared with.
CONFIGS = [
    ("untraced", None, None),
    ("floor-live", ["--mode", "floor-live"], None),
    ("floor-rate", ["--mode", "floor-rate"], None),
    ("live", [], "floor-live"),
    ("rate", ["--mode", "rate"], "floor-rate"),
    ("live --sample 524288", ["--sample", "524288"], "floor-live"),
    # Code without frame pointers: a copy of the stack per record, unwound in userspace.
    ("live --unwind dwarf", ["--unwind", "dwarf"], "floor-live"),
    ("bpftrace live.bt", None, "floor-live"),
]
BPFTRACE = "bpftrace live.bt"

# The Go workload's configurations (same layout; no floors: heaptap has no Go floor mode).
# bpftrace: live.bt probes libc's allocator, which a Go program's heap never calls, and
# there is no bpftrace script for Go's: listed, not run.
GO_DEFAULT = "default (Go's sampler)"
GO_CONFIGS = [
    ("untraced", None, None),
    (GO_DEFAULT, [], None),
    ("--go-exact", ["--go-exact"], None),
    ("--go-exact --sample 524288", ["--go-exact", "--sample", "524288"], None),
    (BPFTRACE, None, None),
]
CONFIG_SETS = {"c": CONFIGS, "go": GO_CONFIGS}
NOT_APPLICABLE = {("go", BPFTRACE): "n/a: no Go equivalent (live.bt probes libc malloc, "
                                    "which Go's heap never calls)"}
# The tiny run each set's configurations are tried on.
PROBE_CMDS = {"c": ["malloc_pairs", "10", "1"], "go": ["gobench", "10"]}

BENCH_LINE = re.compile(r"^heaptap-bench (.*)$", re.M)
COLLECTOR_LINE = re.compile(r"^heaptap-collector (.*)$", re.M)
RING_LINE = re.compile(r"^heaptap-ring (.*)$", re.M)
# ring_bench runs: live blocks in the FIFO (the block table's size decides its cost).
RING_LIVE = [100000, 1000000]


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def kv(text):
    return dict(f.split("=", 1) for f in text.split())


def machine():
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "kernel": platform.release(),
        "cpu": "%s, %d vCPUs" % (model, os.cpu_count() or 0),
        "bpftrace": first_line(["bpftrace", "--version"]),
        "load": loadavg(),
        "commit": commit(),
    }


def commit():
    """The heaptap commit measured: HEAPTAP_BENCH_COMMIT, else git's HEAD (+ "-dirty" when
    src/ or bpf/ have uncommitted changes)."""
    if os.environ.get("HEAPTAP_BENCH_COMMIT"):
        return os.environ["HEAPTAP_BENCH_COMMIT"]
    try:
        head = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "bpf"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return head.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def loadavg():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def first_line(argv):
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
        return out.strip().splitlines()[0] if out.strip() else "?"
    except (OSError, subprocess.SubprocessError):
        return "not installed"


def read_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


class Run:
    """One execution of one configuration of one workload."""

    def __init__(self):
        self.ok = False
        self.error = ""
        self.ops = 0
        self.work_cpu_s = 0.0      # the workload's own user+sys
        self.tracer_cpu_s = None   # the tracer's own (None: untraced)
        self.tracer_rss_kb = None
        self.rss_exact = True
        self.wall_s = 0.0
        self.json = None           # heaptap --json report


def execute(argv, env=None, traced=True, json_path=None):
    """Runs argv (the tracer, or the workload itself), returns a Run."""
    r = Run()
    hwm = [0]
    t0 = time.monotonic()
    try:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, env=env, start_new_session=True)
    except OSError as e:
        r.error = str(e)
        return r
    stderr_chunks = []
    reader = threading.Thread(target=lambda: stderr_chunks.append(p.stderr.read()))
    reader.start()
    done = threading.Event()

    def poll_hwm():
        while not done.wait(0.02):
            hwm[0] = max(hwm[0], read_hwm_kb(p.pid))

    poller = threading.Thread(target=poll_hwm) if traced else None
    if poller:
        poller.start()
    timer = threading.Timer(RUN_TIMEOUT, lambda: os.killpg(p.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
        done.set()
    p.returncode = os.waitstatus_to_exitcode(status)
    reader.join()
    if poller:
        poller.join()
    r.wall_s = time.monotonic() - t0
    err = (stderr_chunks[0] if stderr_chunks else b"").decode(errors="replace")
    m = BENCH_LINE.search(err)
    if p.returncode != 0 or not m:
        lines = [l for l in err.splitlines() if l.strip() and not l.startswith("heaptap-bench")]
        r.error = "exit %d%s" % (p.returncode, (": " + lines[-1]) if lines else "")
        return r
    f = kv(m.group(1))
    r.ops = int(f["ops"])
    r.work_cpu_s = (int(f["user_us"]) + int(f["sys_us"])) / 1e6
    if traced:
        total = ru.ru_utime + ru.ru_stime
        r.tracer_cpu_s = max(0.0, total - r.work_cpu_s)
        if ru.ru_maxrss > int(f["maxrss_kb"]):
            r.tracer_rss_kb = ru.ru_maxrss
        else:
            r.tracer_rss_kb, r.rss_exact = hwm[0], False
    if json_path:
        try:
            with open(json_path) as jf:
                r.json = json.load(jf)
        except (OSError, ValueError) as e:
            r.error = "no JSON report: %s" % e
            return r
    r.ok = True
    return r


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = tempfile.mkdtemp(prefix="heaptap-bench-")
        self.json_path = os.path.join(self.tmp, "report.json")
        self.supported = {}   # config name -> (True, uses_json) or (False, note)
        self.missing = {}     # workload name -> why it is not run (its binary is missing)
        self.env_bt = dict(os.environ, BPFTRACE_MAP_KEYS_MAX="1048576")
        self.bt_script = self.private_libc_script()

    def private_libc_script(self):
        """
        bpftrace 0.17 attaches uprobes to the library file for every process, even with -c
        or -p: on a shared machine every malloc anywhere would trap while it runs.  So the
        workload it traces loads a private copy of libc (LD_LIBRARY_PATH) and the script
        probes the copy: same code, same traps, only this process pays them.
        """
        try:
            os.makedirs(BT_LIBDIR, exist_ok=True)
            copy = os.path.join(BT_LIBDIR, "libc.so.6")
            real = os.path.realpath(LIBC)
            if not os.path.exists(copy) or os.path.getmtime(copy) < os.path.getmtime(real):
                shutil.copy2(real, copy + ".tmp")
                os.replace(copy + ".tmp", copy)
            with open(LIVE_BT) as f:
                text = f.read()
            script = os.path.join(self.tmp, "live.bt")
            with open(script, "w") as f:
                f.write(text.replace(LIBC, copy))
            return script
        except OSError as e:
            log("bench: no private libc copy (%s): bpftrace probes the shared one" % e)
            return None

    def bpftrace_argv(self, cmd):
        if not self.bt_script:
            return ["bpftrace", LIVE_BT, "-c", shlex.join(cmd)]
        return ["bpftrace", self.bt_script, "-c",
                shlex.join(["/usr/bin/env", "LD_LIBRARY_PATH=" + BT_LIBDIR] + cmd)]

    def heaptap_argv(self, extra, cmd, use_json):
        argv = [self.args.heaptap, "-q"] + extra
        if use_json:
            argv += ["--json", self.json_path]
        return argv + ["--"] + cmd

    def config_argv(self, name, extra, cmd):
        if name == "untraced":
            return cmd, None, False
        if name == BPFTRACE:
            return self.bpftrace_argv(cmd), self.env_bt, True
        _, use_json = self.supported[name]
        return self.heaptap_argv(extra, cmd, use_json), None, True

    def probe_configs(self, kinds):
        """Which configurations this heaptap and this machine accept (tried on a tiny run),
        for the configuration sets of the workloads selected (kinds)."""
        for kind in kinds:
            self.probe_set(kind)
        for name, (ok, note) in self.supported.items():
            if not ok:
                log("skipping %s: %s" % (name, note))

    def probe_set(self, kind):
        tiny = [os.path.join(BENCH_DIR, PROBE_CMDS[kind][0])] + PROBE_CMDS[kind][1:]
        for name, extra, _ in CONFIG_SETS[kind]:
            if name in self.supported or (kind, name) in NOT_APPLICABLE:
                continue
            if name == "untraced":
                self.supported[name] = (True, False)
                continue
            if not os.access(tiny[0], os.X_OK):
                self.supported[name] = (False, "%s not built" % os.path.relpath(tiny[0], ROOT))
                continue
            if name == BPFTRACE:
                r = execute(self.bpftrace_argv(tiny), env=self.env_bt)
                self.supported[name] = (True, False) if r.ok else (False, "bpftrace: " + r.error)
                continue
            note = ""
            for use_json in (True, False):
                r = execute(self.heaptap_argv(extra, tiny, use_json),
                            json_path=self.json_path if use_json else None)
                if r.ok:
                    self.supported[name] = (True, use_json)
                    break
                note = note or r.error
            else:
                self.supported[name] = (False, "heaptap %s: %s" % (" ".join(extra), note))
            if os.path.exists(self.json_path):
                os.unlink(self.json_path)

    def workloads(self):
        sizes = {k: max(1, int(v * self.args.scale)) for k, v in SIZES.items()}
        out = []
        for name, argv, unit, kind in WORKLOADS:
            if self.args.only and not any(o in name for o in self.args.only):
                continue
            cmd = [os.path.join(BENCH_DIR, argv[0])] + [a.format(**sizes) for a in argv[1:]]
            if not os.access(cmd[0], os.X_OK):
                self.missing[name] = "%s not built" % os.path.relpath(cmd[0], ROOT)
                continue
            out.append((name, cmd, unit, kind))
        return out

    def configs(self, kind):
        """The configurations of one set that run: supported, and not n/a."""
        return [c for c in CONFIG_SETS[kind] if (kind, c[0]) not in NOT_APPLICABLE
                and self.supported.get(c[0], (False,))[0]]

    def overhead(self):
        wls = self.workloads()
        results = {(w[0], c[0]): [] for w in wls for c in self.configs(w[3])}
        for rep in range(self.args.reps):
            for wi, (wname, cmd, _, kind) in enumerate(wls):
                configs = self.configs(kind)
                # Rotate the order so no configuration always runs first or last.
                k = (rep + wi) % len(configs)
                for name, extra, _ in configs[k:] + configs[:k]:
                    argv, env, traced = self.config_argv(name, extra, cmd)
                    use_json = traced and name != BPFTRACE and self.supported[name][1]
                    if use_json and os.path.exists(self.json_path):
                        os.unlink(self.json_path)
                    r = execute(argv, env=env, traced=traced,
                                json_path=self.json_path if use_json else None)
                    results[(wname, name)].append(r)
                    log("rep %d/%d  %-10s %-22s %s" % (
                        rep + 1, self.args.reps, wname, name,
                        "%.3f us/op, %.1f s" % (r.work_cpu_s / r.ops * 1e6, r.wall_s)
                        if r.ok else "FAILED " + r.error))
        return wls, results

    def sustained(self, extra, label):
        """The 2-thread microbenchmark under heaptap for --sustained seconds."""
        secs = self.args.sustained
        cmd = [os.path.join(BENCH_DIR, "malloc_pairs"), "2000", "2", str(secs)]
        argv = self.heaptap_argv(extra, cmd, True)
        if os.path.exists(self.json_path):
            os.unlink(self.json_path)
        log("sustained: %s for %d s" % (label, secs))
        r = execute(argv, json_path=self.json_path)
        return r

    def cpu_available(self, secs=5):
        """CPUs the 2-thread microbenchmark gets untraced right now (the machine is shared)."""
        cmd = [os.path.join(BENCH_DIR, "malloc_pairs"), "2000", "2", str(secs)]
        r = execute(cmd, traced=False)
        return r.work_cpu_s / r.wall_s if r.ok and r.wall_s else None

    def ring(self, live):
        """ring_bench: the collector draining a BPF ring at --ring-rate for --ring seconds."""
        exe = os.path.join(BENCH_DIR, "ring_bench")
        argv = [exe, "-r", str(self.args.ring_rate), "-s", str(self.args.ring), "-l", str(live)]
        log("ring_bench %s" % " ".join(argv[1:]))
        try:
            p = subprocess.run(argv, capture_output=True, text=True,
                               timeout=self.args.ring + RUN_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as e:
            return None, str(e)
        m = RING_LINE.search(p.stdout)
        if p.returncode != 0 or not m:
            return None, "ring_bench exit %d: %s" % (p.returncode, p.stderr.strip()[-200:])
        return kv(m.group(1)), ""

    def collector(self):
        exe = os.path.join(BENCH_DIR, "collector_bench")
        log("collector_bench %d runs" % self.args.reps)
        try:
            p = subprocess.run([exe, str(self.args.reps)], capture_output=True, text=True,
                               timeout=RUN_TIMEOUT)
        except (OSError, subprocess.SubprocessError) as e:
            return None, str(e)
        rows = [kv(m.group(1)) for m in COLLECTOR_LINE.finditer(p.stdout)]
        if p.returncode != 0 or not rows:
            return None, "collector_bench exit %d: %s" % (p.returncode, p.stderr.strip()[-200:])
        return rows, ""


def med(xs):
    return statistics.median(xs) if xs else None


def fmt(x, spec, none="–"):
    return none if x is None else format(x, spec)


def loss(js):
    return js.get("loss", {}).get("ringbuf_drops", 0) if js else None


def per_op_us(r):
    return r.work_cpu_s / r.ops * 1e6 if r.ok else None


def paired(results, wname, a, b):
    """Per-repetition ratios a/b: runs of one repetition are seconds apart, so slow changes
    in the machine's load cancel out, which they do not in a ratio of medians."""
    ra, rb = results.get((wname, a), []), results.get((wname, b), [])
    return [per_op_us(x) / per_op_us(y) for x, y in zip(ra, rb)
            if x.ok and y.ok and per_op_us(y) > 0]


def ratio_fmt(x):
    """× untraced: whole numbers for the large ratios, two decimals for the small ones."""
    return fmt(x, ".0f" if x is not None and x >= 10 else ".2f")


def overhead_table(b, wls, results):
    out = []
    out.append("| workload (op) | configuration | CPU µs/op | spread | × untraced | × floor "
               "| above floor µs/op | tracer CPU ms | tracer peak RSS MiB | records/op "
               "| ring drops |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    summary = []
    for wname, _, unit, kind in wls:
        configs = b.configs(kind)
        per_op = {}
        for name, _, _ in configs:
            per_op[name] = med([per_op_us(r) for r in results[(wname, name)] if r.ok])
        for name, _, floor in CONFIG_SETS[kind]:
            if (kind, name) in NOT_APPLICABLE:
                out.append("| %s (%s) | %s | %s | | | | | | | | |" % (
                    wname, unit, name, NOT_APPLICABLE[(kind, name)]))
                continue
            if name not in per_op:
                continue  # not supported here: noted below the table
            all_runs = results[(wname, name)]
            runs = [r for r in all_runs if r.ok]
            failed = len(all_runs) - len(runs)
            if not runs:
                out.append("| %s (%s) | %s | failed: %s | | | | | | | | |" % (
                    wname, unit, name, all_runs[0].error if all_runs else "?"))
                continue
            xs = [per_op_us(r) for r in runs]
            m = per_op[name]
            fl = per_op.get(floor) if floor else None
            spread = (max(xs) - min(xs)) / m * 100 if m else 0
            tcpu = med([r.tracer_cpu_s * 1e3 for r in runs]) if runs[0].tracer_cpu_s is not None else None
            rss = None
            exact = True
            if runs[0].tracer_rss_kb is not None:
                rss = max(r.tracer_rss_kb for r in runs) / 1024
                exact = all(r.rss_exact for r in runs)
            js = [r.json for r in runs if r.json]
            recs = med([r.json.get("events", 0) / r.ops for r in runs if r.json])
            drops = max(loss(j) for j in js) if js else None
            out.append("| %s (%s) | %s%s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                wname, unit, name, " (%d failed)" % failed if failed else "",
                fmt(m, ".2f"), "%.0f%%" % spread,
                ratio_fmt(med(paired(results, wname, name, "untraced"))),
                fmt(med(paired(results, wname, name, floor)) if floor else None, ".2f"),
                fmt(m - fl if fl else None, ".2f"),
                fmt(tcpu, ".0f"), ("" if exact else "≥") + fmt(rss, ".0f") if rss else "–",
                fmt(recs, ".2f"), fmt(drops, "d")))
        summary.append((wname, per_op))
    return out, summary


def summary_lines(wls, results):
    def ratio(wname, a, b):
        xs = paired(results, wname, a, b)
        if not xs:
            return "–"
        return "%.2f (%.2f–%.2f)" % (med(xs), min(xs), max(xs))

    out = []
    c_wls = [w for w in wls if w[3] == "c"]
    if c_wls:
        out += ["| workload | live / floor-live (target ≤ 1.25) | rate / floor-rate (≤ 1.3) "
                "| bpftrace / live (≥ 3) | bpftrace / floor-live | live --sample 524288 / live |",
                "|---|---:|---:|---:|---:|---:|"]
        for wname, _, _, _ in c_wls:
            out.append("| %s | %s | %s | %s | %s | %s |" % (
                wname, ratio(wname, "live", "floor-live"), ratio(wname, "rate", "floor-rate"),
                ratio(wname, BPFTRACE, "live"), ratio(wname, BPFTRACE, "floor-live"),
                ratio(wname, "live --sample 524288", "live")))
        out += ["", "bpftrace / floor-live is the most any live mode could gain on bpftrace: "
                "what bpftrace costs over the traps alone, at heaptap's probe sites."]
    go_wls = [w for w in wls if w[3] == "go"]
    if go_wls:
        if out:
            out.append("")
        out += ["| workload | %s / untraced | --go-exact / untraced | --go-exact --sample "
                "524288 / untraced | --go-exact --sample 524288 / --go-exact |" % GO_DEFAULT,
                "|---|---:|---:|---:|---:|"]
        for wname, _, _, _ in go_wls:
            out.append("| %s | %s | %s | %s | %s |" % (
                wname, ratio(wname, GO_DEFAULT, "untraced"),
                ratio(wname, "--go-exact", "untraced"),
                ratio(wname, "--go-exact --sample 524288", "untraced"),
                ratio(wname, "--go-exact --sample 524288", "--go-exact")))
    return out


def sustained_section(b, summary):
    secs = b.args.sustained
    ncpu = os.cpu_count() or 1
    out = ["**Sustained rate** — `malloc_pairs 2000 2 %d` (2 threads of malloc+free pairs, "
           "as fast as they go) under heaptap for %d s; workload CPU is its own user+sys per "
           "pair, CPU busy the workload's and heaptap's CPU over the elapsed time "
           "(%d CPUs here):" % (secs, secs, ncpu), "",
           "| mode | pairs/s | records/s | ring drops | other losses | workload CPU µs/pair "
           "| CPU busy | heaptap CPU % of one CPU | heaptap CPU ns/record | heaptap peak RSS MiB |",
           "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    avail_before = b.cpu_available()
    modes = [("live", [])]
    if b.supported.get("rate", (False,))[0]:
        modes.append(("rate", ["--mode", "rate"]))
    for label, extra in modes:
        r = b.sustained(extra, label)
        if not r.ok:
            out.append("| %s | failed: %s |" % (label, r.error) + " |" * 8)
            continue
        lo = r.json.get("loss", {})
        other = sum(v for k, v in lo.items()
                    if k not in ("ringbuf_drops", "nested_calls_folded", "unknown_frees",
                                 "stacks_truncated"))
        el = r.json.get("elapsed_s") or r.wall_s
        events = r.json.get("events", 0)
        out.append("| %s | %.0f | %.0f | %d | %d | %.2f | %.2f | %.1f | %s | %s%.0f |" % (
            label, r.ops / el, events / el, lo.get("ringbuf_drops", 0), other,
            r.work_cpu_s / r.ops * 1e6, (r.work_cpu_s + r.tracer_cpu_s) / el,
            r.tracer_cpu_s / el * 100,
            fmt(r.tracer_cpu_s * 1e9 / events if events else None, ".0f"),
            "" if r.rss_exact else "≥", (r.tracer_rss_kb or 0) / 1024))
    out.append("")
    avail_after = b.cpu_available()
    out.append("Untraced, the same 2 threads got %s and %s CPUs (5 s just before and just "
               "after): CPU busy well below that means the tracing itself, not the machine, "
               "held the rate down." % (fmt(avail_before, ".2f"), fmt(avail_after, ".2f")))
    out.append("")
    floors = dict(summary).get("malloc 2T", {})
    fl, fr = floors.get("floor-live"), floors.get("floor-rate")
    if fl and fr:
        out.append("Ceiling: with empty programs at live mode's probe sites a malloc+free pair "
                   "costs %.1f µs of CPU here (%.1f µs at rate mode's), so %d CPUs can push at "
                   "most ~%.0f k live-mode records/s (2 per pair), or ~%.0f k rate-mode records/s "
                   "(1 per pair), through uprobes, before the program does anything and with "
                   "nothing left for the program being traced." % (
                       fl, fr, ncpu, 2 * ncpu * 1e3 / fl, ncpu * 1e3 / fr))
        out.append("")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=7, help="repetitions (median; default 7)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply workload sizes")
    ap.add_argument("--only", action="append", help="workloads whose name contains this")
    ap.add_argument("--heaptap", default=os.path.join(ROOT, "heaptap"))
    ap.add_argument("--sustained", type=int, default=60,
                    help="seconds of the sustained-rate check (0: skip)")
    ap.add_argument("--ring", type=int, default=60,
                    help="seconds of each ring_bench run (0: skip)")
    ap.add_argument("--ring-rate", type=int, default=1000000,
                    help="records/s ring_bench generates")
    ap.add_argument("--no-overhead", action="store_true", help="skip the workload table")
    ap.add_argument("--no-collector", action="store_true")
    ap.add_argument("--update-readme", action="store_true",
                    help="replace README.md's '## Benchmarks' section with the result")
    args = ap.parse_args()
    if args.reps < 1 or args.scale <= 0:
        ap.error("--reps and --scale must be positive")

    cmdline = "python3 bench/run.py" + "".join(" " + shlex.quote(a) for a in sys.argv[1:])
    if os.environ.get("HEAPTAP_BENCH_CMD"):
        cmdline = os.environ["HEAPTAP_BENCH_CMD"]
    info = machine()
    out = ["Measured %s, heaptap commit %s, on Linux %s, %s; %s; load average at start %s, "
           "at end {load_end}.  Command: `%s`." % (
               info["date"], info["commit"], info["kernel"], info["cpu"], info["bpftrace"],
               info["load"], cmdline), ""]

    if os.geteuid() != 0:
        log("bench: needs root (BPF); nothing measured")
        return 0
    if not os.access(args.heaptap, os.X_OK):
        log("bench: %s not found (make heaptap)" % args.heaptap)
        return 0
    b = Bench(args)
    started = time.monotonic()
    b.probe_configs(sorted({w[3] for w in b.workloads()}))
    summary = []

    if not args.no_overhead:
        wls, results = b.overhead()
        out.append("**Tracing overhead** — CPU time of the traced process per op (user+sys), "
                   "median of %d interleaved runs; spread = (max−min)/median.  × untraced and "
                   "× floor (the matching floor: empty BPF programs at the same probe sites) "
                   "are medians of the ratios within each repetition, below with their "
                   "min–max; above floor = difference of the medians.  Tracer CPU = the "
                   "tracer's own (attach, draining, symbolization, report); records/op from "
                   "heaptap's JSON `events`.  Go rows: one op is one heap allocation "
                   "(the workload's runtime.MemStats.Mallocs growth); heaptap has no Go "
                   "floor." % args.reps)
        out.append("")
        table, summary = overhead_table(b, wls, results)
        out += table
        out.append("")
        out += summary_lines(wls, results)
        skipped = [(n, note) for n, (ok, note) in b.supported.items() if not ok]
        skipped += sorted(b.missing.items())
        for n, note in skipped:
            out.append("")
            out.append("*%s: not measured — %s*" % (n, note))
        out.append("")
        out.append("Workloads (build/bench/): " + "; ".join(
            "%s = `%s`" % (w[0], " ".join([os.path.basename(w[1][0])] + w[1][1:])) for w in wls)
            + ".")
        out.append("")

    if args.sustained > 0:
        out += sustained_section(b, summary)

    if args.ring > 0:
        out.append("**Ring buffer at %d records/s** — `build/bench/ring_bench -r %d -s %d -l "
                   "LIVE`: heaptap's live-mode records written by a BPF program "
                   "(bench/ring_gen.bpf.c, run every millisecond by BPF_PROG_TEST_RUN; uprobes "
                   "cannot reach this rate here) into a 16 MiB ring buffer, drained by the "
                   "collector as a session drains it.  Each step allocates a block and frees "
                   "the one allocated LIVE steps before (the oldest: a random slot of the "
                   "block table).  Consistent = the model ends with exactly LIVE blocks, no "
                   "unknown frees, every record handled; CPU is the collector thread's "
                   "(user+sys) over the timed phase:" % (args.ring_rate, args.ring_rate,
                                                          args.ring))
        out.append("")
        out.append("| live blocks | records | ring drops | consistent | collector ns/record | "
                   "collector CPU % of one CPU | generator CPU % | max ring fill % |")
        out.append("|---:|---:|---:|---|---:|---:|---:|---:|")
        for live in RING_LIVE:
            row, err = b.ring(live)
            if row is None:
                out.append("| %d | failed: %s |" % (live, err) + " |" * 6)
                continue
            out.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                row["live"], row["records"], row["drops"], row["consistent"],
                row["collector_ns_per_record"], row["collector_cpu_pct"],
                row["generator_cpu_pct"], row["max_fill_pct"]))
        out.append("")

    if not args.no_collector:
        rows, err = b.collector()
        out.append("**Collector** — `build/bench/collector_bench %d`: synthetic records "
                   "(12-frame stacks, 300 distinct) replayed through `events__prefetch()` and "
                   "`events__handle()` as the ring reader calls them, from a staging area "
                   "the records are copied into first (in cache, as the BPF side leaves "
                   "them), CPU ns per record, median of %d:" % (args.reps, args.reps))
        out.append("")
        if rows is None:
            out.append("*failed: %s*" % err)
        else:
            out.append("| scenario | records | live blocks | ns/record | min–max | model bytes "
                       "per live block |")
            out.append("|---|---:|---:|---:|---:|---:|")
            for row in rows:
                out.append("| %s | %s | %s | %s | %s–%s | %s |" % (
                    row["scenario"], row["records"], row["live"], row["ns_per_record"],
                    row["min"], row["max"], row["heap_bytes_per_live"]))
        out.append("")

    shutil.rmtree(b.tmp, ignore_errors=True)
    log("bench: %.0f s" % (time.monotonic() - started))
    out[0] = out[0].replace("{load_end}", loadavg())
    text = "\n".join(out).rstrip() + "\n"
    sys.stdout.write(text)
    os.makedirs(BENCH_DIR, exist_ok=True)
    with open(os.path.join(BENCH_DIR, "results.md"), "w") as f:
        f.write(text)
    if args.update_readme:
        update_readme(text)
    return 0


def update_readme(text):
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        readme = f.read()
    head = "## Benchmarks\n"
    intro = ("`make bench` (bench/run.py; `make bench BENCH_ARGS=--help` lists its options) "
             "measures what tracing costs a process.  The workloads in bench/workloads/ run "
             "untraced; under heaptap's floors (`--mode floor-live`, `floor-rate`: empty BPF "
             "programs at the probe sites of live and rate mode, the cost of the traps "
             "alone); under heaptap `live`, `rate`, `live --sample 524288` and `live --unwind "
             "dwarf`; and under bpftrace running bench/live.bt, the same job as live mode "
             "written as a bpftrace user would.  A Go workload (bench/go) runs untraced, "
             "under heaptap's default for Go (probes on Go's own sampler), `--go-exact` (a "
             "probe per allocation) and `--go-exact --sample 524288`; bpftrace has no Go "
             "equivalent.  Every configuration runs once per "
             "repetition, interleaved; the table shows medians.  Then a sustained-rate run "
             "of the 2-thread microbenchmark, the collector draining a ring buffer at 1 M "
             "records/s (bench/ring_bench.c) and the collector's replay benchmark "
             "(bench/collector_bench.c).  It takes about 13 minutes and never fails the "
             "build; `BENCH_ARGS=--update-readme` rewrites this section.  The machine below "
             "is a shared 2-vCPU VM where a uprobe trap costs several microseconds: compare "
             "ratios within one run, and expect 10-30% spread between runs.\n\n"
             "Latest run:\n\n")
    # Prose wrapped like the rest of the README; table rows stay whole.
    text = "\n".join(l if l.startswith("|") or not l else textwrap.fill(l, 90)
                     for l in (intro + text).split("\n"))
    section = head + "\n" + text
    i = readme.find("\n" + head)
    if i < 0:
        readme = readme.rstrip("\n") + "\n\n" + section
    else:
        # Replace the section up to the next heading of the same level, if any.
        j = readme.find("\n## ", i + 1)
        readme = readme[:i + 1] + section + (readme[j:] if j >= 0 else "")
    with open(path + ".tmp", "w") as f:
        f.write(readme)
    os.replace(path + ".tmp", path)
    log("bench: README.md updated")


if __name__ == "__main__":
    sys.exit(main())
