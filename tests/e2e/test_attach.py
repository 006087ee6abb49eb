"""heaptap -p PID: attaching to running targets (SIGUSR1 handshake), frees of blocks born
before attach, interval reports, --min-age, -d, and every way a session can end."""
import os
import signal
import time

from lib import Attached, Waiting, frames_of, one_site, run_heaptap


def test_attach_running_leak():
    t = Waiting("leak")
    try:
        a = Attached(t.pid)
        t.go()
        t.wait_done()
        assert t.finish() == 0
        r = a.wait()
    finally:
        t.kill()
    assert r.rc == 0, r.stderr
    p = r.proc()
    s = one_site(p, "leak_here", "malloc")
    assert (s["live_count"], s["live_bytes"]) == (1000, 4096000)
    assert p["exited"] and p["exit_code"] is None  # not our child: status unknown
    assert "=== heaptap final report" in r.stdout and "leak_here" in r.stdout


def test_free_before_attach_is_unknown_free():
    t = Waiting("prefree")  # 10 x 333 allocated before 'ready', freed after
    try:
        a = Attached(t.pid)
        t.go()
        t.wait_done()
        r = a.stop()
        assert t.finish() == 0
    finally:
        t.kill()
    assert r.rc == 0, r.stderr
    p = r.proc()
    assert p["unknown_frees"] == 10 and r.report["loss"]["unknown_frees"] == 10
    s = one_site(p, "late_alloc", "malloc")
    assert (s["live_count"], s["live_bytes"]) == (5, 5 * 444)
    assert "unknown frees 10" in r.stdout


def test_sigterm_and_sigint_detach_cleanly():
    # heaptap ends with the final report on either signal; the target is unharmed and,
    # after the detach, runs to its normal end.
    for sig in (signal.SIGINT, signal.SIGTERM):
        t = Waiting("churn", "200000")
        try:
            a = Attached(t.pid)
            r = a.stop(sig)
            t.go()
            t.wait_done()
            assert t.finish() == 0
        finally:
            t.kill()
        assert r.rc == 0, (sig, r.stderr)
        assert "=== heaptap final report" in r.stdout
        assert not r.proc()["exited"] if r.procs else True


def test_target_exits_mid_trace():
    t = Waiting("churn", "300000")
    try:
        a = Attached(t.pid, "-d", "600")
        t.go()
        time.sleep(0.3)
        t.p.kill()  # dies mid-churn, without warning
        t.p.wait()
        r = a.wait(timeout=60)
    finally:
        t.kill()
    assert r.rc == 0, r.stderr
    p = r.proc()
    assert p["exited"] and p["alloc_count"] > 0
    assert "=== heaptap final report" in r.stdout


def test_duration_and_interval_reports():
    t = Waiting("demo")
    try:
        a = Attached(t.pid, "-d", "1.5", "-i", "0.5")
        t.go()
        r = a.wait(timeout=30)
        t.wait_done()
        t.finish()
    finally:
        t.kill()
    assert r.rc == 0, r.stderr
    assert r.stdout.count("=== heaptap interval report") >= 2, r.stdout[:2000]
    assert r.stdout.count("=== heaptap final report") == 1
    assert 1.4 < r.report["elapsed_s"] < 3.0, r.report["elapsed_s"]
    p = r.proc()
    assert not p["exited"]
    leaky = one_site(p, "cache_insert_leaky")
    # the demo leaks 1 KiB every 10 ms: about 100 per second traced, all still live
    assert leaky["live_count"] == leaky["alloc_count"] > 50
    assert leaky["rate_allocs_per_s"] > 0


def test_min_age_shows_only_old_blocks():
    t = Waiting("leak")
    try:
        a_old = Attached(t.pid, "--min-age", "1")
        a_young = Attached(t.pid, "--min-age", "60")
        t.go()
        t.wait_done()
        time.sleep(1.5)  # the leaked blocks are now > 1 s old and < 60 s
        r_old, r_young = a_old.stop(), a_young.stop()
        t.finish()
    finally:
        t.kill()
    s = one_site(r_old.proc(), "leak_here")
    assert (s["aged_live_count"], s["aged_live_bytes"]) == (1000, 4096000)
    s = one_site(r_young.proc(), "leak_here")
    assert (s["aged_live_count"], s["aged_live_bytes"]) == (0, 0)
    assert s["live_count"] == 1000  # the plain live figure is still there


def test_unknown_pid():
    # a pid above pid_max cannot exist
    with open("/proc/sys/kernel/pid_max") as f:
        pid = int(f.read()) + 1
    r = run_heaptap("-p", str(pid))
    assert r.returncode == 1 and r.stderr.strip() == f"heaptap: error: no process with pid {pid}"
    assert r.stdout == ""
