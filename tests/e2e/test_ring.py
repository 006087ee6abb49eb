"""The collector's ring reader (src/ringread.c) on a real BPF ring buffer: bench/ring_bench
writes heaptap's live-mode records from a BPF program at a steady rate into a small ring
(it wraps many times, so records straddle its end) while the collector drains it as a
session does.  Every record must be applied exactly once and in order: the FIFO pattern
(allocate a block, free the one allocated LIVE steps before) ends with exactly LIVE live
blocks only if no record was lost, repeated or reordered before its free."""
import os
import subprocess

from lib import ROOT, kv_line

RING_BENCH = os.path.join(ROOT, "build", "bench", "ring_bench")


def run_ring_bench(*args):
    # a bench binary, not part of `make all`: built on demand like the Go targets
    subprocess.run(["make", "-s", "-C", ROOT, "build/bench/ring_bench"], check=True,
                   capture_output=True)
    p = subprocess.run([RING_BENCH, *args], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return kv_line(p.stdout, "heaptap-ring")


def test_ring_reader_applies_every_record_once_in_order():
    # 1 MiB ring, ~10 MB/s of records for 4 s: ~40 wraps.  The ring holds ~100 ms, ten
    # drains; a machine busy enough to lose records still has to account for each one.
    r = run_ring_bench("-r", "200000", "-s", "4", "-l", "5000", "-m", "1")
    emitted, drops = int(r["emitted"]), int(r["drops"])
    assert emitted > 700000 and r["bad"] == "0", r
    if drops == 0:
        assert r["consistent"] == "yes" and r["live_end"] == "5000", r
        assert r["unknown_frees"] == "0", r
    else:  # a lost allocation turns its free into an unknown free, nothing else
        assert int(r["unknown_frees"]) <= drops, r
