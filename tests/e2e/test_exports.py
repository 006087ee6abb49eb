"""Exports: the pprof profile read back by Go's pprof (exact totals of known targets for all
four sample types, the leak's file:line, inline frames, no warning), the SVG flame graph
(valid XML, driven in headless Chromium: a search for leak_here and its share, a
screenshot in tests/out/), JSON -> `heaptap report` giving the very outputs the session
wrote, bad input and bad output paths, several outputs in one session, and a libFuzzer
smoke run of the JSON reader.

Needs Debian's golang-go (go tool pprof), chromium and libclang-rt-14-dev; each test
skips only when its tool is missing."""
import gzip
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

from lib import (HEAPTAP, ROOT, Skip, launch, load_json, marked_line, parse_folded,
                 run_heaptap, target, tmp)

SAMPLE_TYPES = ["alloc_objects", "alloc_space", "inuse_objects", "inuse_space"]
SITE_FIELD = {"alloc_objects": "alloc_count", "alloc_space": "alloc_bytes",
              "inuse_objects": "live_count", "inuse_space": "live_bytes"}
# From the targets' header comments.  cxx: the 118 operator new calls (15671 bytes, 106
# blocks / 5415 bytes live) plus libstdc++'s emergency pool, malloc(72704) before main.
TRUTH = {
    "leak": {"alloc_objects": 1000, "alloc_space": 4096000,
             "inuse_objects": 1000, "inuse_space": 4096000},
    "apis": {"alloc_objects": 13, "alloc_space": 108524,
             "inuse_objects": 10, "inuse_space": 108154},
    "cxx": {"alloc_objects": 119, "alloc_space": 88375,
            "inuse_objects": 107, "inuse_space": 78119},
}
METRICS = {"live-bytes": "live_bytes", "live-count": "live_count",
           "alloc-bytes": "alloc_bytes", "alloc-count": "alloc_count",
           "peak": "peak_live_bytes"}
SVG_NS = "{http://www.w3.org/2000/svg}"


# --- helpers -------------------------------------------------------------------------

def pprof(*args):
    """`go tool pprof ARGS`: its stdout; fails on a non-zero exit or anything on stderr."""
    go = shutil.which("go")
    if not go:
        raise Skip("go not installed (Debian package golang-go)")
    with tempfile.TemporaryDirectory() as home:
        r = subprocess.run([go, "tool", "pprof", *args], capture_output=True, text=True,
                           timeout=180, env=dict(os.environ, TZ="UTC", HOME=home,
                                                 PPROF_TMPDIR=home))
    assert r.returncode == 0, f"pprof {args}: exit {r.returncode}: {r.stderr}"
    assert r.stderr == "", f"pprof {args} warned: {r.stderr}"
    return r.stdout


def parse_raw(text):
    """`pprof -raw` -> (sample types, default type, samples, locations).  samples:
    [(values, location ids, labels text)]; locations: {id: (mapping id, [(function, file,
    line)])}, lines innermost first."""
    lines = text.splitlines()
    i = lines.index("Samples:") + 1
    header = lines[i].split()
    types = [t.split("/")[0] for t in header]
    default = [t.split("/")[0] for t in header if t.endswith("[dflt]")]
    samples, locs = [], {}
    i += 1
    while lines[i] != "Locations":
        m = re.match(r"^\s+((?:\d+\s+){3}\d+): ?((?:\d+ ?)*)$", lines[i])
        if m:
            samples.append(([int(v) for v in m.group(1).split()],
                            [int(v) for v in m.group(2).split()], ""))
        else:
            assert samples, f"unexpected -raw line {lines[i]!r}"
            values, ids, labels = samples[-1]
            samples[-1] = (values, ids, labels + " " + lines[i].strip())
        i += 1
    loc = None
    for line in lines[i + 1:]:
        if line == "Mappings":
            break
        m = re.match(r"^\s*(\d+): 0x[0-9a-f]+ (?:M=(\d+) ?)?(.*)$", line)
        if m:
            loc = int(m.group(1))
            locs[loc] = (int(m.group(2) or 0), [])
            rest = m.group(3).strip()
        else:
            rest = line.strip()
        if rest:
            entry = re.sub(r" s=\d+$", "", rest)
            func, _, fileline = entry.rpartition(" ")
            file, _, ln = fileline.rpartition(":")
            locs[loc][1].append((func, file, int(ln)))
    return types, default, samples, locs


def raw_totals(path):
    types, default, samples, _ = parse_raw(pprof("-raw", path))
    assert types == SAMPLE_TYPES, types
    assert default == ["inuse_space"], default
    return {t: sum(s[0][k] for s in samples) for k, t in enumerate(types)}


def top_total(path, sample_type):
    unit = ["-unit=byte"] if sample_type.endswith("_space") else []
    out = pprof(f"-sample_index={sample_type}", *unit, "-top", path)
    assert f"Type: {sample_type}" in out, out
    m = re.search(r"of (\d+)B? total", out)
    assert m, out
    return int(m.group(1))


def json_totals(report):
    return {t: sum(s[f] for p in report["processes"] for s in p["sites"])
            for t, f in SITE_FIELD.items()}


def chromium(url, *flags):
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        raise Skip("chromium not installed (Debian package chromium)")
    with tempfile.TemporaryDirectory() as profile:
        r = subprocess.run([exe, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update",
                            "--disable-sync", f"--user-data-dir={profile}", *flags, url],
                           capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, f"chromium exit {r.returncode}: {r.stderr[-2000:]}"
    return r.stdout


def session(argv, *args):
    """heaptap ARGS -- argv (no implicit --json)."""
    r = launch(argv, *args, json_out=False)
    assert r.rc == 0, r.stderr
    return r


def report_cmd(*args):
    return run_heaptap("report", *args, timeout=120)


def one_error_line(r):
    rc = r.rc if hasattr(r, "rc") else r.returncode
    assert rc == 1, (rc, r.stderr)
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("heaptap: "), r.stderr
    return lines[0]


def svg_frames(path):
    root = ET.parse(path).getroot()
    assert root.tag == f"{SVG_NS}svg", root.tag
    frames = [g for g in root.iter(f"{SVG_NS}g") if g.get("class") == "f"]
    return root, frames


def merged_report(*reports):
    """One report holding the processes of several (a multi-process session)."""
    out = json.loads(json.dumps(reports[0]))
    for r in reports[1:]:
        out["processes"] += r["processes"]
    return out


# --- pprof ---------------------------------------------------------------------------

def test_pprof_exact_totals():
    for name, truth in TRUTH.items():
        path = tmp(f"exports-{name}.pb.gz")
        r = launch([target(name)], "-q", "-o", path)
        assert r.rc == 0, r.stderr
        assert json_totals(r.report) == truth, (name, json_totals(r.report))
        with open(path, "rb") as f:
            assert f.read(2) == b"\x1f\x8b", "not gzip"
        assert raw_totals(path) == truth, name
        for t in SAMPLE_TYPES:
            assert top_total(path, t) == truth[t], (name, t)
        # time and duration
        head = pprof("-top", path)
        secs = r.report["start_time_unix_ns"] // 10**9
        assert time.strftime("Time: %b %-d, %Y at %-I:%M", time.gmtime(secs)) in head, head
        m = re.search(r"Duration: ([\d.]+)(ms|s),", head)
        assert m, head
        dur = float(m.group(1)) / (1000 if m.group(2) == "ms" else 1)
        assert abs(dur - r.report["elapsed_s"]) < 0.01, (dur, r.report["elapsed_s"])


def test_pprof_leak_line_and_mapping():
    path = tmp("exports-leak-line.pb.gz")
    r = launch([target("leak")], "-q", "-o", path)
    assert r.rc == 0, r.stderr
    line = marked_line("leak.c", "LEAK_LINE")
    out = pprof("-lines", "-top", path)
    flat = [ln for ln in out.splitlines() if "100%   100%" in ln]
    assert len(flat) == 1 and flat[0].endswith(f"leak_here tests/targets/leak.c:{line}"), out
    _, _, samples, locs = parse_raw(pprof("-raw", path))
    assert len(samples) == 1 and "allocator:[malloc]" in samples[0][2], samples
    stack = [locs[i][1][0][0] for i in samples[0][1]]
    assert stack == ["leak_here", "do_leaks", "main", "__libc_start_call_main"], stack
    assert locs[samples[0][1][0]][1] == [("leak_here", "tests/targets/leak.c", line)]
    raw = pprof("-raw", path)
    exe = r.report["processes"][0]["modules"][0]
    assert re.search(rf"^1: 0x{exe['start'][2:]}/0x{exe['end'][2:]}/0x0 {re.escape(exe['path'])} "
                     rf"{exe['build_id']} \[FN\]\[FL\]\[LN\]\[IN\]$", raw, re.M), raw
    traces = pprof("-traces", path)
    assert "allocator:  malloc" in traces and "leak_here" in traces, traces


def test_pprof_inline_unknown_and_processes():
    # The unit test's report: an inlined frame at 0x1010 and an unknown frame at 0x5000;
    # made a two-process report so samples carry pid/comm labels.
    base = load_json(os.path.join(ROOT, "tests", "fuzz", "corpus", "inline-compact.json"))
    other = json.loads(json.dumps(base["processes"][0]))
    other["pid"], other["comm"] = 43, "other"
    base["processes"].append(other)
    src, path = tmp("exports-inline.json"), tmp("exports-inline.pb.gz")
    with open(src, "w") as f:
        json.dump(base, f)
    r = report_cmd("-q", "-o", path, src)
    assert r.returncode == 0, r.stderr
    _, _, samples, locs = parse_raw(pprof("-raw", path))
    assert len(samples) == 2, samples
    for (values, ids, labels), pid, comm in zip(samples, (42, 43), ('t"x', "other")):
        assert values == [3, 40, 2, 30], values
        assert f"pid:[{pid}]" in labels and f"comm:[{comm}]" in labels, labels
        # one location for the inline chain, innermost line first; none for no symbol
        assert locs[ids[0]][1] == [("inl", "t.c", 5), ("f", "t.c", 9)], locs[ids[0]]
        assert locs[ids[1]] == (0, []), locs[ids[1]]
        assert len(ids) == 2


# --- SVG -----------------------------------------------------------------------------

def test_svg_xml_and_chromium_search():
    leak_svg, leak_json = tmp("exports-leak.svg"), tmp("exports-leak.json")
    session([target("leak")], "-q", "-o", leak_svg, "--json", leak_json)
    root, frames = svg_frames(leak_svg)
    names = [g.get("data-n") for g in frames]
    assert names[0] == "all" and "leak_here" in names and "malloc" in names, names
    line = marked_line("leak.c", "LEAK_LINE")
    leak = frames[names.index("leak_here")]
    title = leak.find(f"{SVG_NS}title").text
    assert f"tests/targets/leak.c:{line}" in title and "3.91 MiB (4096000 bytes)" in title, title
    # self-contained: nothing loaded from elsewhere
    with open(leak_svg) as f:
        text = f.read()
    assert "href" not in text and "@import" not in text and "url(" not in text
    assert text.count("http://") == 1  # the xmlns

    dom = chromium(f"file://{leak_svg}#s=leak_here", "--dump-dom")
    assert 'data-matched="4096000"' in dom and 'data-matched-pct="100.00"' in dom, dom[:2000]

    # two processes: the process is the root frame, leak_here is leak's share of both
    apis_json = tmp("exports-apis.json")
    session([target("apis")], "-q", "--json", apis_json)
    two = merged_report(load_json(leak_json), load_json(apis_json))
    two_json, two_svg = tmp("exports-two.json"), tmp("exports-two.svg")
    with open(two_json, "w") as f:
        json.dump(two, f)
    r = report_cmd("-q", "-o", two_svg, two_json)
    assert r.returncode == 0, r.stderr
    _, frames = svg_frames(two_svg)
    by_depth = {}
    for g in frames:
        by_depth.setdefault(int(g.get("data-d")), []).append(g.get("data-n"))
    pids = [p["pid"] for p in two["processes"]]
    assert sorted(by_depth[1]) == sorted([f"leak ({pids[0]})", f"apis ({pids[1]})"]), by_depth[1]
    share = f"{100 * 4096000 / (4096000 + 108154):.2f}"
    dom = chromium(f"file://{two_svg}#s=leak_here", "--dump-dom")
    assert 'data-matched="4096000"' in dom and f'data-matched-pct="{share}"' in dom, dom[:2000]
    assert f"Matched: {share}% (3.91 MiB)" in dom, dom[-3000:]

    # zoom (#z=NAME clicks the widest NAME frame): do_leaks fills the width, its
    # ancestors stay as dimmed full-width bars, the other process is hidden
    dom = chromium(f"file://{two_svg}#z=do_leaks", "--dump-dom")
    shown = {}
    for m in re.finditer(r'<g class="([^"]*)" data-s="\d+" data-v="\d+" data-d="\d+" '
                         r'data-n="([^"]*)"( style="display: none;")?>.*?<rect x="([\d.]+)" '
                         r'y="[\d.]+" width="([\d.]+)"', dom, re.S):
        shown.setdefault(m.group(2), []).append(
            (m.group(1), not m.group(3), float(m.group(4)), float(m.group(5))))
    assert shown["do_leaks"] == [("f", True, 10.0, 1180.0)], shown["do_leaks"]
    assert shown["leak_here"] == [("f", True, 10.0, 1180.0)], shown["leak_here"]
    assert shown["all"] == [("f anc", True, 10.0, 1180.0)], shown["all"]
    assert not shown[f"apis ({pids[1]})"][0][1], shown[f"apis ({pids[1]})"]

    png = tmp("exports-flamegraph.png")
    if os.path.exists(png):
        os.unlink(png)
    chromium(f"file://{two_svg}#s=leak_here", f"--screenshot={png}", "--window-size=1200,800")
    with open(png, "rb") as f:
        data = f.read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10000, len(data)


def test_svg_inverted_and_count_units():
    src = tmp("exports-units.json")
    session([target("apis")], "-q", "--json", src)
    flame, icicle = tmp("exports-flame.svg"), tmp("exports-icicle.svg")
    assert report_cmd("-q", "--metric", "alloc-count", "-o", flame, src).returncode == 0
    assert report_cmd("-q", "--metric", "alloc-count", "--inverted", "-o", icicle,
                      src).returncode == 0
    for path, root_on_top in ((flame, False), (icicle, True)):
        root, frames = svg_frames(path)
        assert root.get("data-total") == "13", root.get("data-total")
        ys = [float(g.find(f"{SVG_NS}rect").get("y")) for g in frames]
        assert (ys[0] == min(ys)) == root_on_top and (ys[0] == max(ys)) != root_on_top, ys
        title = frames[0].find(f"{SVG_NS}title").text
        assert title.endswith("13 allocations, 100.00%"), title


def test_svg_escapes_names():
    # markup characters, a control character and bytes that are not UTF-8 in names
    base = load_json(os.path.join(ROOT, "tests", "fuzz", "corpus", "inline-compact.json"))
    frames = base["processes"][0]["sites"][0]["frames"]
    frames[0]["function"] = "op<&>\"'\u0001]]>"
    data = json.dumps(base).encode().replace(b'"t.c"', b'"t\xff\xc3.c"')
    src, svg = tmp("exports-escape.json"), tmp("exports-escape.svg")
    with open(src, "wb") as f:
        f.write(data)
    r = report_cmd("-q", "-o", svg, src)
    assert r.returncode == 0, r.stderr
    _, frames = svg_frames(svg)
    names = [g.get("data-n") for g in frames]
    assert "op<&>\"' ]]>" in names, names
    title = frames[names.index("op<&>\"' ]]>")].find(f"{SVG_NS}title").text
    assert "t\ufffd\ufffd.c:5" in title, title


# --- JSON -> heaptap report ------------------------------------------------------------

def test_report_reproduces_session_outputs():
    for metric in METRICS:
        a = {ext: tmp(f"exports-rt-a.{ext}") for ext in ("folded", "json", "svg", "pb.gz")}
        b = {ext: tmp(f"exports-rt-b.{ext}") for ext in ("folded", "svg", "pb.gz")}
        session([target("apis")], "-q", "--metric", metric, *sum((["-o", p] for p in a.values()), []))
        # options before the file: see the note in the closing report about argument order
        r = report_cmd("-q", "--metric", metric, *sum((["-o", p] for p in b.values()), []),
                       a["json"])
        assert r.returncode == 0, r.stderr
        with open(a["folded"], "rb") as f1, open(b["folded"], "rb") as f2:
            folded = f1.read()
            assert folded == f2.read(), metric
        rows = parse_folded(folded.decode())
        assert sum(v for _, v in rows) == sum(s[METRICS[metric]] for s in
                                              load_json(a["json"])["processes"][0]["sites"])
        # SVG: identical but for the subtitle, which shows elapsed_s (JSON keeps 6 digits)
        with open(a["svg"]) as f1, open(b["svg"]) as f2:
            strip = lambda t: re.sub(r'<text class="sub"[^\n]*\n', "", t)  # noqa: E731
            assert strip(f1.read()) == strip(f2.read()), metric
        if metric == "live-bytes":
            ra, rb = pprof("-raw", a["pb.gz"]), pprof("-raw", b["pb.gz"])
            strip = lambda t: re.sub(r"^Duration: .*$", "", t, flags=re.M)  # noqa: E731
            assert strip(ra) == strip(rb)
            assert raw_totals(b["pb.gz"]) == TRUTH["apis"]


def test_report_bad_input():
    good = tmp("exports-good.json")
    session([target("leak")], "-q", "--json", good)
    with open(good, "rb") as f:
        text = f.read()
    out = tmp("exports-bad.folded")
    cases = {
        "truncated": (text[: len(text) // 2], "truncated input"),
        "corrupt": (text.replace(b'"events":', b'"events"@', 1), "expected ':', found '@'"),
        "nul": (text.replace(b'"final"', b'"fi\0al"', 1), "NUL byte in string"),
        "version": (text.replace(b'"version": 1', b'"version": 7', 1), "unsupported version 7"),
        "schema": (text.replace(b'"heaptap-report"', b'"other"', 1), 'unknown schema "other"'),
        "missing": (re.sub(rb',\s*"frames": \[.*?\]\s*\}', b"}", text, count=1, flags=re.S),
                    "missing field processes[0].sites[0].frames"),
        "not json": (b"\x1f\x8b\x08\x00binary", "found byte 0x1f"),
        "empty": (b"", "empty input"),
    }
    for name, (data, why) in cases.items():
        src = tmp(f"exports-bad-{name.replace(' ', '-')}.json")
        with open(src, "wb") as f:
            f.write(data)
        r = report_cmd("-o", out, src)
        line = one_error_line(r)
        assert why in line, (name, line)
        assert not os.path.exists(out), name
        assert not [n for n in os.listdir(os.path.dirname(out)) if ".tmp-heaptap-" in n]
    r = report_cmd(tmp("exports-does-not-exist.json"))
    assert "No such file" in one_error_line(r)


def test_output_in_missing_directory_fails_at_start():
    bad = "/nonexistent-heaptap-dir/heap.pb.gz"
    t0 = time.monotonic()
    r = launch([target("leak")], "-o", bad, json_out=False)
    line = one_error_line(r)
    assert bad in line and "No such file or directory" in line, line
    assert r.stdout == "" and time.monotonic() - t0 < 10  # nothing was traced
    src = tmp("exports-missing-dir.json")
    session([target("leak")], "-q", "--json", src)
    r = report_cmd("-o", bad, src)
    assert bad in one_error_line(r)


def test_several_outputs_in_one_session():
    base = tmp("exports-multi")
    paths = {ext: f"{base}.{ext}" for ext in ("pb.gz", "svg", "folded", "json")}
    for p in paths.values():
        if os.path.exists(p):
            os.unlink(p)
    session([target("cxx")], "-q", "-o", paths["pb.gz"], "-o", paths["svg"], "-o",
            paths["folded"], "--json", paths["json"])
    report = load_json(paths["json"])
    truth = TRUTH["cxx"]
    assert json_totals(report) == truth
    assert raw_totals(paths["pb.gz"]) == truth
    root, _ = svg_frames(paths["svg"])
    assert int(root.get("data-total")) == truth["inuse_space"]
    with open(paths["folded"]) as f:
        assert sum(v for _, v in parse_folded(f.read())) == truth["inuse_space"]
    with gzip.open(paths["pb.gz"]) as f:
        assert f.read(1) == b"\x0a"  # field 1 (sample_type), length-delimited
    assert not [n for n in os.listdir(os.path.dirname(base)) if ".tmp-heaptap-" in n]


# --- fuzzing -------------------------------------------------------------------------

def test_fuzz_read_json_smoke():
    clang = shutil.which("clang")
    if not clang:
        raise Skip("clang not installed")
    rt = subprocess.run([clang, "-print-runtime-dir"], capture_output=True, text=True).stdout
    if not os.path.exists(os.path.join(rt.strip(), "libclang_rt.fuzzer-x86_64.a")):
        raise Skip("clang's libFuzzer runtime missing (Debian package libclang-rt-14-dev)")
    r = subprocess.run(["make", "-s", "-f", "tests/fuzz/fuzz.mk", "fuzz", f"-j{os.cpu_count()}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    with tempfile.TemporaryDirectory() as work:
        os.mkdir(os.path.join(work, "new"))
        r = subprocess.run([os.path.join(ROOT, "build-fuzz", "fuzz_read_json"), "-runs=20000",
                            "-seed=1", f"-dict={ROOT}/tests/fuzz/read_json.dict",
                            os.path.join(work, "new"), os.path.join(ROOT, "tests", "fuzz", "corpus")],
                           cwd=work, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-4000:]
    assert "Done 20000 runs" in r.stderr, r.stderr[-2000:]
