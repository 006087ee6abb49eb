"""Stacks through code built without frame pointers (--unwind dwarf|auto, src/unwind.c):
the call chains in the headers of tests/targets/deep.c, libcalls.c and cxxlib.cpp, a real
Debian program against heaptrack (which unwinds with DWARF too), and --unwind fp against
--unwind dwarf where frame pointers hold."""
import os
import re
import shutil
import subprocess

from lib import OUT, Skip, frames_of, launch, marked_line, parse_folded, target, tmp

DEEP_CHAIN = ["deep_8", "deep_7", "deep_6", "deep_5", "deep_4", "deep_3", "deep_2", "deep_1",
              "main"]
# What CFI finds below main, and below a thread's start routine: the C runtime's entry code.
RUNTIME_ROOTS = {"__libc_start_call_main", "__libc_start_main_impl", "__libc_start_main",
                 "_start", "start_thread", "__clone3", "clone3"}


def malloc_sites(p, allocator="malloc"):
    return [s for s in p["sites"] if s["allocator"] == allocator]


def has_chain(s, chain):
    """The real (not inlined) frames of s begin with chain, and the stack is complete."""
    real = [f["function"] for f in s["frames"] if not f["inlined"]]
    return real[:len(chain)] == chain and not s["truncated"]


def above(s, inner, outer):
    """inner and outer are both in the stack of s, outer nearer the root."""
    fr = frames_of(s)
    return inner in fr and outer in fr and fr.index(inner) < fr.index(outer)


def test_deep_chain_without_frame_pointers():
    # deep-nofp: -O2 -fomit-frame-pointer, %rbp a scratch register.  The whole 8-deep chain
    # must be in 100% of the leak's stacks (a frame-pointer walk gets deep_8 alone).
    for args in (["--unwind", "dwarf"], ["--unwind", "auto"], ["--mode", "rate", "--unwind",
                                                               "dwarf"]):
        r = launch([target("deep-nofp")], *args)
        assert r.rc == 0, r.stderr
        sites = malloc_sites(r.proc())
        assert sum(s["alloc_count"] for s in sites) == 500, (args, sites)
        full = sum(s["alloc_count"] for s in sites if has_chain(s, DEEP_CHAIN))
        assert full == 500, (args, [(frames_of(s), s["truncated"]) for s in sites])
        assert all(s["frames"][0]["line"] == marked_line("deep.c", "/* DEEP_LINE */")
                   for s in sites), sites
        assert r.report["loss"]["stacks_truncated"] == 0, r.report["loss"]


def test_deep_chain_with_byte_sampling():
    # Only sampled allocations carry a stack copy; each of those unwinds in full.
    r = launch([target("deep-nofp")], "--sample", "2048")
    sites = malloc_sites(r.proc())
    assert sites and all(has_chain(s, DEEP_CHAIN) for s in sites), sites
    assert r.report["loss"]["unsampled"] > 0, r.report["loss"]


def test_copy_too_small_is_truncated_and_counted():
    # 512 bytes of stack do not reach deep_7's frame (deep_8 alone keeps 512 bytes of
    # locals): every stack must say so, in JSON, in folded output and in the loss counter,
    # and hold only frames that are really there.
    r = launch([target("deep-nofp")], "--unwind", "dwarf", "--stack-bytes", "512",
               "-o", tmp("unwind-trunc.folded"))
    sites = malloc_sites(r.proc())
    assert sum(s["alloc_count"] for s in sites) == 500
    for s in sites:
        real = [f["function"] for f in s["frames"] if not f["inlined"]]
        assert s["truncated"] and real and real == DEEP_CHAIN[:len(real)], (s["truncated"], real)
    assert r.report["loss"]["stacks_truncated"] == 500, r.report["loss"]
    with open(tmp("unwind-trunc.folded")) as f:
        folded = parse_folded(f.read())
    assert folded and all(frames[0] == "[truncated]" for frames, _ in folded), folded


# libcalls.c ground truth: bytes per allocation -> (named function, count)
LIBCALLS = {32: ("dup_names", 20), 472: ("open_devnull", 1), 120: ("read_line", 1),
            4096: ("read_line", 1)}


def test_libc_allocations_keep_their_caller():
    # strdup, fopen and getline allocate inside libc, which keeps no frame pointers: the
    # program's function that called them must be in the stack, with main above it.  Both
    # builds of the program: the frame pointers of an FP-built caller do not help here.
    for name in ("libcalls-nofp", "libcalls"):
        for mode in ("auto", "dwarf"):
            r = launch([target(name)], "--unwind", mode)
            assert r.rc == 0, r.stderr
            p = r.proc()
            assert (p["alloc_count"], p["alloc_bytes"], p["live_count"]) == (23, 5328, 21), p
            seen = {}
            for s in malloc_sites(p):
                size = s["alloc_bytes"] // s["alloc_count"]
                fn, _ = LIBCALLS[size]
                assert above(s, fn, "main") and not s["truncated"], (name, mode, frames_of(s))
                # the allocation was made inside libc, below the named function
                assert frames_of(s)[0] != fn, (name, mode, frames_of(s))
                seen[size] = seen.get(size, 0) + s["alloc_count"]
            assert seen == {size: n for size, (_, n) in LIBCALLS.items()}, seen


def test_cxx_new_keeps_its_caller():
    # operator new in a -fomit-frame-pointer C++ program: directly, through inline vector
    # growth, and from inside libstdc++ (std::string::reserve).  The function is in the stack
    # above operator new, main above it.
    expect = {"new_widgets()": (50, 2000), "reserve_strings()": (10, 10010),
              "grow_vector()": (8, 2040)}
    for mode in ("auto", "dwarf"):
        r = launch([target("cxxlib-nofp")], "--unwind", mode)
        assert r.rc == 0, r.stderr
        got = {}
        for s in malloc_sites(r.proc(), "operator new"):
            fns = [fn for fn in expect if above(s, fn, "main")]
            assert len(fns) == 1 and not s["truncated"], (mode, frames_of(s))
            c, b = got.get(fns[0], (0, 0))
            got[fns[0]] = (c + s["alloc_count"], b + s["alloc_bytes"])
        assert got == expect, (mode, got)
    # cxx.cpp's functions call operator new directly (tests/targets/cxx.cpp)
    r = launch([target("cxx-nofp")])
    fns = ("new_scalar()", "new_array()", "new_aligned()", "new_nothrow()")
    for s in r.proc()["sites"]:
        if s["allocator"].startswith("operator new"):
            assert any(above(s, fn, "main") for fn in fns) and not s["truncated"], frames_of(s)


def test_threads_unwind_to_clone():
    # Thread stacks end at clone3, whose CFI marks the outermost frame: complete stacks.
    r = launch([target("threads-nofp")])
    sites = [s for s in malloc_sites(r.proc()) if "thread_alloc" in frames_of(s)]
    assert sum(s["alloc_count"] for s in sites) == 40000
    for s in sites:
        assert has_chain(s, ["thread_alloc", "thread_main", "start_thread"]), frames_of(s)


def test_signal_frame():
    # An allocation in a signal handler: the walk crosses the kernel's signal frame
    # (__restore_rt's CFI, applied by libdwfl) back into the interrupted raise().
    for name in ("sigalloc-nofp", "sigalloc"):
        r = launch([target(name)])
        assert r.rc == 0, r.stderr
        sites = malloc_sites(r.proc())
        assert sum(s["alloc_count"] for s in sites) == 10, sites
        for s in sites:
            fr = frames_of(s)
            assert fr[:2] == ["alloc_in_handler", "on_signal"] and not s["truncated"], fr
            assert above(s, "on_signal", "raise_signals") and above(s, "raise_signals", "main"), fr
            assert s["frames"][0]["line"] == marked_line("sigalloc.c", "/* SIG_LINE */")


def fold_roots(frames):
    """Drops the C runtime's entry frames at the root (root-first list)."""
    i = 0
    while i < len(frames) and frames[i] in RUNTIME_ROOTS:
        i += 1
    return frames[i:]


def test_fp_and_dwarf_agree_where_frame_pointers_hold():
    # FP-built programs whose allocations are all made by their own code: the same stacks
    # either way.  Below main the walks differ in the C runtime's entry code only: the
    # frame-pointer chain ends in __libc_start_call_main (libc keeps no frame pointers, and
    # the chain is only right up to there), CFI goes on to __libc_start_main and _start.
    # auto keeps the frame-pointer chains here: its output is --unwind fp's.
    for name, args in (("leak", []), ("deep", []), ("apis", []), ("churn", ["3000"])):
        out = {}
        for mode in ("fp", "dwarf", "auto"):
            path = tmp(f"unwind-{name}-{mode}.folded")
            r = launch([target(name), *args], "--unwind", mode, "--metric", "alloc-count",
                       "-o", path, json_out=False)
            assert r.rc == 0, r.stderr
            with open(path) as f:
                out[mode] = f.read()
        assert out["auto"] == out["fp"], (name, out)
        fp = sorted((fold_roots(frames), v) for frames, v in parse_folded(out["fp"]))
        dw = sorted((fold_roots(frames), v) for frames, v in parse_folded(out["dwarf"]))
        assert fp == dw and fp, (name, fp, dw)
        assert all(frames[0] == "main" for frames, _ in fp), fp
        assert "_start" in out["dwarf"] and "[truncated]" not in out["dwarf"], out["dwarf"]


# ---- a real Debian program against heaptrack ----

PY_WORKLOAD = "d = {i: str(i) for i in range(200000)}"
HEAPTRACK_MAX_FRAMES = 62  # heaptrack keeps 64 frames per trace, 2 of them its own


def heaptrack_stacks(python):
    """heaptrack's allocation counts per stack: {root-first frames: count}."""
    if not shutil.which("heaptrack") or not shutil.which("heaptrack_print"):
        raise Skip("heaptrack not installed (scripts/install-deps.sh all)")
    os.makedirs(OUT, exist_ok=True)
    data = tmp(f"unwind-heaptrack-{os.getpid()}")
    env = dict(os.environ, PYTHONHASHSEED="0")
    r = subprocess.run(["heaptrack", "-o", data, python, "-c", PY_WORKLOAD],
                       capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stdout + r.stderr
    stacks_path = data + ".stacks"
    r = subprocess.run(["heaptrack_print", "-f", data + ".zst", "--flamegraph-cost-type",
                        "allocations", "-F", stacks_path], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    stacks = {}
    with open(stacks_path) as f:
        for line in f:
            stack, _, n = line.rstrip("\n").rpartition(" ")
            frames = tuple(norm_heaptrack(fr) for fr in stack.rstrip(";").split(";"))
            stacks[frames] = stacks.get(frames, 0) + int(n)
    os.unlink(data + ".zst")
    os.unlink(stacks_path)
    return stacks


def norm_name(fn):
    # heaptrack names glibc's functions by their internal aliases from the debug info
    # (__GI_setlocale), heaptap by the symbol table's (setlocale): same addresses.
    return re.sub(r"^__GI_", "", fn)


def norm_heaptrack(frame):
    """'name (file.c)' -> 'name'; '0x421eba' (no symbol) -> the int address, which heaptrack
    gives as return address - 1."""
    frame = re.sub(r" \(.*\)$", "", frame)
    return int(frame, 16) if frame.startswith("0x") else norm_name(frame)


def test_python_stacks_match_heaptrack():
    # Debian's python3.11 is built without frame pointers and stripped of local symbols,
    # so its frames are addresses for both tools.  Both trace the same run (fixed hash
    # seed): the stacks of its top sites must be identical, frame for frame, with the same
    # allocation counts.  Differences allowed, and why:
    #  - heaptrack keeps at most 62 frames: deeper stacks are compared on those;
    #  - python's path setup (getpath) keeps 16 KiB buffers on the stack, more than the
    #    copy: heaptap marks those few stacks truncated (and counts them) where heaptrack,
    #    unwinding the live stack, goes on;
    #  - where glibc has debug info, the two order or name inlined frames differently;
    #  - heaptrack leaves ld.so's entry code unnamed, with an address that moves per run.
    python = "/usr/bin/python3"
    if not os.path.exists(python):
        raise Skip("no /usr/bin/python3")
    ht = heaptrack_stacks(python)
    r = launch([python, "-c", PY_WORKLOAD], "-D", "126", "--stack-bytes", "16384",
               env={"PYTHONHASHSEED": "0"}, timeout=300)
    assert r.rc == 0, r.stderr
    mine, truncated = {}, []
    for s in r.proc()["sites"]:
        # heaptap gives return addresses; heaptrack the address before
        frames = [norm_name(f["function"]) if f["function"] else int(f["addr"], 16) - 1
                  for f in s["frames"]]
        if s["truncated"]:
            truncated.append(frames)
            continue
        key = tuple(frames[:HEAPTRACK_MAX_FRAMES][::-1])
        mine[key] = mine.get(key, 0) + s["alloc_count"]
    top = sorted(ht.items(), key=lambda kv: -kv[1])[:10]
    for frames, n in top:
        assert mine.get(frames) == n, (n, mine.get(frames), frames)
    total = sum(ht.values())
    same = sum(min(n, mine.get(frames, 0)) for frames, n in ht.items())
    assert same >= 0.95 * total, (same, total)
    # the truncated ones are the deep-buffer stacks of path setup, and few
    assert len(truncated) <= 10, truncated
