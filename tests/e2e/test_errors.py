"""Bad input: one clear line on stderr, nothing on stdout, a non-zero exit; and inputs that
are odd but valid (stripped targets) traced as well as they can be."""
import os
import pwd
import shutil
import subprocess
import tempfile

from lib import HEAPTAP, frames_of, launch, run_heaptap, target, tmp


def one_line_error(r, code, text):
    lines = r.stderr.strip().splitlines()
    assert r.returncode == code, (r.returncode, r.stderr)
    assert len(lines) == 1, r.stderr
    assert text in lines[0], lines[0]
    assert lines[0].startswith("heaptap: ")
    assert r.stdout == ""


def test_invalid_option_values():
    for args, text in ((["-d", "-3", "-p", "1"], "'-3' for --duration"),
                       (["-i", "abc", "-p", "1"], "'abc' for --interval"),
                       (["-p", "12x"], "'12x' for --pid"),
                       (["-D", "0", "-p", "1"], "must be in 1..126"),
                       (["--metric", "nope", "-p", "1"], "'nope' for --metric"),
                       (["--ring-mb", "3", "-p", "1"], "power of two"),
                       (["--bogus"], "unknown option '--bogus'"),
                       ([], "nothing to trace"),
                       (["-p", "1", "--", "true"], "not both")):
        one_line_error(run_heaptap(*args), 2, text)


def test_command_not_found():
    one_line_error(run_heaptap("--", "no-such-command-xyz"), 1,
                   "no-such-command-xyz: command not found")


def test_unwritable_output_fails_before_tracing():
    marker = tmp("must-not-exist")
    if os.path.exists(marker):
        os.unlink(marker)
    for opt in ("-o", "--json"):
        r = run_heaptap(opt, "/nonexistent-dir/out", "--", "touch", marker)
        one_line_error(r, 1, "cannot write '/nonexistent-dir/out'")
        assert not os.path.exists(marker), "the command ran although the output was unwritable"


def test_not_root():
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        from lib import Skip
        raise Skip("no user nobody")
    # The checkout may sit under a directory only root can enter (a mktemp dir in CI):
    # give nobody a copy it can execute.
    d = tempfile.mkdtemp()
    try:
        os.chmod(d, 0o755)
        exe = os.path.join(d, "heaptap")
        shutil.copy(HEAPTAP, exe)
        r = subprocess.run([exe, "--", "/bin/true"], capture_output=True, text=True, cwd=d,
                           user=nobody.pw_uid, group=nobody.pw_gid, extra_groups=[], timeout=60)
    finally:
        shutil.rmtree(d)
    one_line_error(r, 1, "cannot load BPF programs")
    assert "run as root" in r.stderr


def test_no_allocator_symbols():
    r = run_heaptap("--", target("leak-static-stripped"))
    one_line_error(r, 1, "no allocator functions")


def test_stripped_target_shows_module_offsets():
    r = launch([target("leak-stripped")], "-o", tmp("stripped.folded"))
    assert r.rc == 0, r.stderr
    p = r.proc()
    assert (p["live_count"], p["live_bytes"]) == (1000, 4096000)
    s = p["sites"][0]
    f0 = s["frames"][0]
    assert f0["function"] is None and f0["module"].endswith("leak-stripped"), f0
    assert int(f0["offset"], 16) > 0
    with open(tmp("stripped.folded")) as f:
        line = f.read().strip()
    assert ";leak-stripped+0x" in line and line.endswith(";malloc 4096000"), line
    # libc frames still have names
    assert "__libc_start_call_main" in frames_of(s)


def test_report_file_before_or_after_options():
    from lib import launch
    j, a, b = tmp("order.json"), tmp("order-a.folded"), tmp("order-b.folded")
    assert launch([target("leak")], "-o", j).rc == 0
    assert run_heaptap("report", j, "-o", a).returncode == 0
    assert run_heaptap("report", "-o", b, j).returncode == 0
    with open(a) as fa, open(b) as fb:
        assert fa.read() == fb.read() == "__libc_start_call_main;main;do_leaks;leak_here;malloc 4096000\n"
    one_line_error(run_heaptap("report", j, "extra"), 2, "report takes one REPORT.json")
