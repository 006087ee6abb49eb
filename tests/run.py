#!/usr/bin/env python3
"""heaptap's test runner.

Runs, in order: the unit-test binaries (build/unit/test_*, and the ASan/UBSan builds in
build-san/unit/ when present), then every `test_*` function of tests/e2e/test_*.py, which
trace real target programs with the real BPF programs.  Prints one line per test and ends
with `N passed, N failed, N skipped`.  Exit status 0 only when nothing failed.

    python3 tests/run.py [SUBSTRING ...]   # only tests whose name contains a SUBSTRING
"""
import importlib.util
import os
import subprocess
import sys
import time
import traceback

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import lib  # noqa: E402


def unit_tests():
    for build in ("build", "build-san"):
        d = os.path.join(ROOT, build, "unit")
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if name.startswith("test_") and os.access(path, os.X_OK) and "." not in name:
                yield f"unit/{build}/{name}", (lambda p=path: run_unit(p))


def run_unit(path):
    r = subprocess.run([path], cwd=ROOT, capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stdout[-3000:]}{r.stderr[-3000:]}")


def e2e_tests():
    d = os.path.join(ROOT, "tests", "e2e")
    for fname in sorted(os.listdir(d)):
        if not (fname.startswith("test_") and fname.endswith(".py")):
            continue
        spec = importlib.util.spec_from_file_location(fname[:-3], os.path.join(d, fname))
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        for attr in dir(mod):
            fn = getattr(mod, attr)
            if attr.startswith("test_") and callable(fn):
                yield f"e2e/{fname[:-3]}.{attr}", fn


def main(argv):
    filters = argv[1:]
    passed = failed = skipped = 0
    failures = []
    tests = list(unit_tests()) + sorted(e2e_tests(), key=lambda t: t[0])
    for name, fn in tests:
        if filters and not any(f in name for f in filters):
            continue
        t0 = time.monotonic()
        try:
            fn()
        except lib.Skip as e:
            skipped += 1
            print(f"SKIP {name}: {e}", flush=True)
            continue
        except Exception as e:  # noqa: BLE001 - a test failure of any kind
            failed += 1
            msg = "".join(traceback.format_exception_only(type(e), e)).strip()
            if not isinstance(e, AssertionError):
                msg = traceback.format_exc()
            failures.append(name)
            print(f"FAIL {name} ({time.monotonic() - t0:.1f}s): {msg}", flush=True)
            continue
        passed += 1
        print(f"PASS {name} ({time.monotonic() - t0:.1f}s)", flush=True)
    if failures:
        print("failed: " + ", ".join(failures))
    line = f"{passed} passed, {failed} failed"
    if skipped:
        line += f", {skipped} skipped"
    print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
