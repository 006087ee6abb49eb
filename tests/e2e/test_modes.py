"""--mode rate (entry probes only), the floor modes, and --sample (byte sampling in BPF)."""
from lib import frames_of, launch, one_site, target

CHURN_N = 1_000_000
CHURN_BYTES = sum(16 + (i % 256) * 16 for i in range(CHURN_N))  # tests/targets/churn.c


def test_rate_mode_counts_calls_with_callers():
    r = launch([target("cxx")], "--mode", "rate")
    assert r.rc == 0, r.stderr
    p = r.proc()
    assert r.report["mode"] == "rate"
    # The same 119 allocations as live mode: operator new's inner malloc (caller inside
    # operator new) and new[] -> new tail calls are recognised and not counted twice.
    assert (p["alloc_count"], p["alloc_bytes"]) == (119, 88375)
    assert p["live_count"] == 0 and p["free_count"] == 0 and p["unknown_frees"] == 0
    want = {"new_scalar": ("operator new", 100), "new_array": ("operator new[]", 10),
            "new_aligned": ("operator new(align)", 5), "new_nothrow": ("operator new[](nothrow)", 3)}
    for fn, (alloc, n) in want.items():
        ss = [s for s in p["sites"] if frames_of(s) and (frames_of(s)[0] or "").startswith(fn + "(")]
        assert [(s["allocator"], s["alloc_count"]) for s in ss] == [(alloc, n)], (fn, ss)
    r = launch([target("leak")], "--mode", "rate")
    s = one_site(r.proc(), "leak_here")
    # the direct caller is restored at entry (read at [rsp]), the chain above it intact
    assert frames_of(s)[:3] == ["leak_here", "do_leaks", "main"], frames_of(s)
    assert (s["alloc_count"], s["alloc_bytes"]) == (1000, 4096000)
    assert "rate mode" in r.stdout


def test_floor_modes_record_nothing():
    for mode in ("floor-live", "floor-rate"):
        r = launch([target("leak")], "--mode", mode)
        assert r.rc == 0, (mode, r.stderr)
        assert r.report["mode"] == mode and r.report["events"] == 0 and not r.procs, mode


def test_sampled_estimate_within_5_percent():
    # Default sampling rate 512 KiB (Go's MemProfileRate): ~3900 samples over 2 GB, so the
    # byte estimate's standard error is ~1.6% and 5% is > 3 sigma.  The sampler's draws
    # come from the kernel's bpf_get_prandom_u32 (not seedable); the collector's rounding
    # of weights uses a fixed seed.
    r = launch([target("churn"), str(CHURN_N)], "--sample", "524288", timeout=300)
    assert r.rc == 0, r.stderr
    p = r.proc()
    assert r.report["sample_bytes"] == 524288
    est = p["alloc_bytes"] / CHURN_BYTES
    assert 0.95 < est < 1.05, f"byte estimate {est:.4f} of exact"
    cnt = p["alloc_count"] / CHURN_N
    assert 0.90 < cnt < 1.10, f"count estimate {cnt:.4f} of exact"
    # every sampled block was freed: nothing live, and no free of an unsampled block leaked
    # into the figures as an unknown free
    assert (p["live_count"], p["live_bytes"], p["unknown_frees"]) == (0, 0, 0)
    loss = r.report["loss"]
    assert loss["unsampled"] > 0.99 * CHURN_N and loss["sample_map_full"] == 0, loss
    assert "figures are estimates" in r.stdout


def test_sampling_large_blocks_exact():
    # Blocks much larger than the rate are always sampled with weight ~1: leak's 4096-byte
    # blocks at --sample 64 are exact to within rounding.
    r = launch([target("leak")], "--sample", "64")
    s = one_site(r.proc(), "leak_here")
    assert (s["live_count"], s["live_bytes"]) == (1000, 4096000), s
