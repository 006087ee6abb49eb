"""Exact ground truth: each target's allocations (tests/targets/*.c headers) against what
heaptap reports when it launches the target (-- CMD), with both FP and no-FP builds where
the figures do not depend on stacks."""
from lib import frames_of, launch, marked_line, one_site, sites_with, target, totals


def test_leak_exact():
    r = launch([target("leak")])
    assert r.rc == 0, r.stderr
    p = r.proc()
    s = one_site(p, "leak_here", "malloc")
    assert (s["live_bytes"], s["live_count"]) == (4096 * 1000, 1000)
    assert (s["alloc_bytes"], s["alloc_count"]) == (4096 * 1000, 1000)
    assert (p["live_bytes"], p["live_count"], p["free_count"]) == (4096000, 1000, 0)
    # leak_here is the direct caller, at the marked line; do_leaks and main above it.
    f0 = s["frames"][0]
    assert f0["function"] == "leak_here", frames_of(s)
    assert f0["file"].endswith("tests/targets/leak.c"), f0
    assert f0["line"] == marked_line("leak.c", "/* LEAK_LINE */"), f0
    assert frames_of(s)[1:3] == ["do_leaks", "main"], frames_of(s)
    assert s["peak_live_bytes"] == 4096000 and p["peak_bytes"] == 4096000


def test_leak_nofp_counts():
    # Counts do not depend on frame pointers; the direct caller is still exact because the
    # stack is taken at the allocator's return, where the IP is in the caller.
    r = launch([target("leak-nofp")])
    p = r.proc()
    assert (p["live_bytes"], p["live_count"]) == (4096000, 1000)
    assert all(frames_of(s)[0] == "leak_here" for s in p["sites"]), p["sites"]


def test_churn_million_pairs():
    n = 1_000_000
    r = launch([target("churn"), str(n)], timeout=300)
    assert r.rc == 0, r.stderr
    p = r.proc()
    s = one_site(p, "churn_pair", "malloc")
    # size = 16 + (i % 256) * 16: the sum over n = 1e6 (tests/targets/churn.c)
    expect_bytes = sum(16 + (i % 256) * 16 for i in range(n))
    assert (s["alloc_count"], s["alloc_bytes"]) == (n, expect_bytes)
    assert (s["free_count"], s["live_count"], s["live_bytes"]) == (n, 0, 0)
    assert (p["alloc_count"], p["free_count"], p["live_count"]) == (n, n, 0)
    loss = r.report["loss"]
    assert loss["ringbuf_drops"] == 0 and loss["unknown_frees"] == 0, loss


APIS = {  # function -> (allocator, allocations, bytes, live count, live bytes)
    "calloc_kept": [("calloc", 1, 1000, 1, 1000)],
    "realloc_null": [("realloc", 1, 50, 1, 50)],
    "reallocarray_kept": [("reallocarray", 1, 128, 1, 128)],
    "posix_memalign_kept": [("posix_memalign", 1, 1000, 1, 1000)],
    # glibc's memalign is the same function as aligned_alloc: one probe, one name
    "aligned_alloc_kept": [("aligned_alloc", 1, 512, 1, 512)],
    "memalign_kept": [("aligned_alloc", 1, 300, 1, 300)],
    "valloc_kept": [("valloc", 1, 5000, 1, 5000)],
    "pvalloc_kept": [("pvalloc", 1, 100, 1, 100)],
    "realloc_fail": [("malloc", 1, 64, 1, 64)],  # the failed realloc kills nothing
    "realloc_zero": [("malloc", 1, 70, 0, 0)],   # realloc(p, 0) freed it
}


def check_apis(name):
    r = launch([target(name)])
    assert r.rc == 0, r.stderr
    p = r.proc()
    for fn, want in APIS.items():
        got = sorted((s["allocator"], s["alloc_count"], s["alloc_bytes"], s["live_count"],
                      s["live_bytes"]) for s in sites_with(p, fn))
        assert got == sorted(want), f"{fn}: {got} != {want}"
    grow = sorted((s["allocator"], s["alloc_bytes"], s["live_bytes"])
                  for s in sites_with(p, "realloc_grow"))
    assert grow == [("malloc", 100, 0), ("realloc", 200, 0), ("realloc", 100000, 100000)], grow
    assert (p["alloc_count"], p["alloc_bytes"]) == (13, 108524)
    assert (p["free_count"], p["free_bytes"]) == (3, 370)
    assert (p["live_count"], p["live_bytes"]) == (10, 108154)
    assert p["unknown_frees"] == 0
    loss = r.report["loss"]
    assert loss["returns_without_entry"] == 0 and loss["nesting_overflow"] == 0, loss


def test_apis_exact():
    check_apis("apis")


def test_apis_exact_nofp():
    check_apis("apis-nofp")


def cxx_sites(p, fn):
    return [s for s in p["sites"] if any((f["function"] or "").startswith(fn + "(")
                                         for f in s["frames"])]


def test_cxx_new_delete_exact():
    r = launch([target("cxx")])
    assert r.rc == 0, r.stderr
    p = r.proc()
    want = {
        "new_scalar": ("operator new", 100, 4800, 100, 4800),
        "new_array": ("operator new[]", 10, 10000, 0, 0),
        "new_aligned": ("operator new(align)", 5, 640, 3, 384),
        "new_nothrow": ("operator new[](nothrow)", 3, 231, 3, 231),
    }
    for fn, w in want.items():
        ss = cxx_sites(p, fn)
        assert len(ss) == 1, (fn, [(s["allocator"], frames_of(s)) for s in p["sites"]])
        s = ss[0]
        got = (s["allocator"], s["alloc_count"], s["alloc_bytes"], s["live_count"], s["live_bytes"])
        assert got == w, f"{fn}: {got} != {w}"
        # the function itself is the direct caller of operator new
        assert frames_of(s)[0].startswith(fn + "("), frames_of(s)
    # plus libstdc++'s emergency pool, malloc(72704) before main, never freed
    pool = [s for s in p["sites"] if s["allocator"] == "malloc"]
    assert [(s["alloc_count"], s["alloc_bytes"]) for s in pool] == [(1, 72704)], pool
    assert (p["alloc_count"], p["free_count"]) == (119, 12)
    assert (p["live_count"], p["live_bytes"]) == (107, 78119)
    assert p["unknown_frees"] == 0


def test_threads_every_allocation():
    r = launch([target("threads")])
    assert r.rc == 0, r.stderr
    p = r.proc()
    s = one_site(p, "thread_alloc", "malloc")
    # 4 threads x 10000 x malloc(100 * (id + 1)), the first of each thread included
    assert (s["alloc_count"], s["alloc_bytes"]) == (40000, 10_000_000)
    assert (s["live_count"], s["live_bytes"]) == (40, 10000)
    assert s["free_count"] == 39960
    # pthread_create's calloc(17, 16) per thread for the DTV: never freed
    dtv = [x for x in p["sites"] if x["allocator"] == "calloc"]
    assert totals(dtv, "alloc_count") == 4 and totals(dtv, "live_bytes") == 4 * 272, dtv
    # glibc's tcache teardown at each thread's exit frees 7 cached (already freed) chunks
    # and its own tcache block, never allocated through malloc: 8 unknown frees a thread.
    assert p["unknown_frees"] == 32, p["unknown_frees"]


def test_ctor_before_main():
    r = launch([target("ctor")])
    assert r.rc == 0, r.stderr
    s = one_site(r.proc(), "ctor_alloc", "malloc")
    assert (s["alloc_bytes"], s["live_bytes"]) == (12345, 12345)


def test_exit_status_passed_through():
    r = launch([target("exitcode")])
    assert r.rc == 7, (r.rc, r.stderr)
    p = r.proc()
    assert p["exited"] and p["exit_code"] == 7
    assert (p["live_count"], p["live_bytes"]) == (1, 10)


def test_static_and_nopie():
    for name in ("leak-static", "leak-nopie"):
        r = launch([target(name)])
        assert r.rc == 0, (name, r.stderr)
        s = one_site(r.proc(), "leak_here", "malloc")
        assert (s["live_count"], s["live_bytes"]) == (1000, 4096000), name
        assert frames_of(s)[:3] == ["leak_here", "do_leaks", "main"], (name, frames_of(s))


def test_direct_caller_in_every_fp_stack():
    # Every site of the FP-built targets starts with the function that called the
    # allocator (a known function of the target, or a libc/libstdc++ internal for their
    # own allocations).  Checked over all sites of all targets: 100%, not a sample.
    callers = {
        "leak": {"leak_here"},
        "apis": set(APIS) | {"realloc_grow"},
        "threads": {"thread_alloc", "calloc"},
        "ctor": {"ctor_alloc"},
        "exitcode": {"alloc_one"},
    }
    for name, allowed in callers.items():
        r = launch([target(name)])
        for s in r.proc()["sites"]:
            assert frames_of(s)[0] in allowed, (name, frames_of(s))


def test_sanitized_collector_traces_exactly():
    # `make SAN=1` builds heaptap with ASan/UBSan: it must trace a separate target process
    # exactly, with no sanitizer report (ASan's own malloc lives in heaptap, not the target).
    from lib import HEAPTAP_SAN, Skip
    import os
    if not os.path.exists(HEAPTAP_SAN):
        raise Skip("build-san/heaptap not built (make SAN=1)")
    r = launch([target("apis")], binary=HEAPTAP_SAN)
    assert r.rc == 0 and "Sanitizer" not in r.stderr, r.stderr
    p = r.proc()
    assert (p["alloc_count"], p["live_count"], p["live_bytes"]) == (13, 10, 108154)


def test_preloaded_allocators_bind_first():
    # LD_PRELOAD=jemalloc / tcmalloc: malloc and free are probed in the preloaded library
    # (first in lookup order), not in libc, and the program's own figures stay exact.
    import os
    from lib import Skip
    libs = [l for l in ("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2",
                        "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4") if os.path.exists(l)]
    if not libs:
        raise Skip("neither libjemalloc2 nor libtcmalloc-minimal4 installed")
    for lib in libs:
        r = launch([target("apis")], "-v", env={"LD_PRELOAD": lib})
        assert r.rc == 0, r.stderr
        probes = [l for l in r.stderr.splitlines() if "heaptap: probe " in l]
        for fn in ("malloc", "free", "calloc", "realloc"):
            line = next(l for l in probes if l.split()[2] == fn)
            assert os.path.basename(lib) in line, (fn, line)
        p = r.proc()
        for fn, want in APIS.items():
            if fn in ("memalign_kept", "aligned_alloc_kept"):
                want = [(None, 1, want[0][2], 1, want[0][4])]  # separate functions here
            got = sorted((s["alloc_count"], s["alloc_bytes"], s["live_count"], s["live_bytes"])
                         for s in sites_with(p, fn))
            assert got == sorted(w[1:] for w in want), (lib, fn, got, want)
