"""Folded output: well formed, root first, allocator as leaf, and its values sum to the
JSON report's totals for every metric, in one session."""
from lib import launch, parse_folded, target, tmp

METRICS = {  # metric -> JSON site field
    "live-bytes": "live_bytes",
    "live-count": "live_count",
    "alloc-bytes": "alloc_bytes",
    "alloc-count": "alloc_count",
    "peak": "peak_live_bytes",
}


def test_folded_sums_equal_json_totals():
    for metric, field in METRICS.items():
        path = tmp(f"apis-{metric}.folded")
        r = launch([target("apis")], "-o", path, "--metric", metric)
        assert r.rc == 0, r.stderr
        with open(path) as f:
            rows = parse_folded(f.read())
        p = r.proc()
        assert sum(v for _, v in rows) == sum(s[field] for s in p["sites"]), metric
        assert len(rows) == sum(1 for s in p["sites"] if s[field]), metric
        for frames, _ in rows:
            # root first: main above the API function, allocator as the leaf
            assert frames.index("main") < len(frames) - 2, frames
            assert frames[-1] in {"malloc", "calloc", "realloc", "reallocarray", "posix_memalign",
                                  "aligned_alloc", "valloc", "pvalloc"}, frames


def test_folded_leak_line():
    path = tmp("leak.folded")
    r = launch([target("leak")], "-o", path)
    assert r.rc == 0
    with open(path) as f:
        text = f.read()
    assert text == "__libc_start_call_main;main;do_leaks;leak_here;malloc 4096000\n", text


def test_peak_per_site():
    # apis' realloc_grow: malloc(100) -> realloc 200 -> realloc 100000; the process peak
    # comes at the end (all 10 kept blocks live), when only the last realloc block lives.
    r = launch([target("apis")])
    p = r.proc()
    assert p["peak_bytes"] == p["live_bytes"] == 108154
    assert sum(s["peak_live_bytes"] for s in p["sites"]) == p["peak_bytes"]


def test_depth_cap_truncates_and_counts():
    path = tmp("leak-d2.folded")
    r = launch([target("leak")], "-D", "2", "-o", path)
    assert r.rc == 0, r.stderr
    s = r.proc()["sites"][0]
    assert s["truncated"] and [f["function"] for f in s["frames"]] == ["leak_here", "do_leaks"]
    assert r.report["loss"]["stacks_truncated"] == 1000
    with open(path) as f:
        assert f.read() == "[truncated];do_leaks;leak_here;malloc 4096000\n"
    assert "stacks truncated 1000" in r.stdout
