/*
 * session.c: setup, the main loop, teardown.
 *
 * The loop sleeps in poll() on a signalfd (SIGINT, SIGTERM, SIGCHLD) and, for -p, the
 * target's pidfd, with a timeout of drain_ms: the BPF side never wakes us
 * (BPF_RB_NO_WAKEUP), so every timeout drains the ring buffer.  Interval reports, -d
 * expiry, signals and the target's exit are all handled between drains.  Teardown detaches
 * the probes first, then drains what is left, so the final report holds every record.
 */
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "events.h"
#include "goprobes.h"
#include "gostate.h"
#include "heap.h"
#include "heaptap.h"
#include "heaptap.skel.h"
#include "launch.h"
#include "log.h"
#include "outputs.h"
#include "probes.h"
#include "procs.h"
#include "report.h"
#include "ringread.h"
#include "session.h"
#include "stacks.h"
#include "system.h"
#include "unwind.h"

struct session {
	const struct ht_config *cfg;
	struct heaptap *skel;
	struct ht_ringread *ring;
	struct ht_probes *probes;
	struct ht_goprobes *goprobes; /* the executable's Go runtime, if it is Go */
	struct ht_system *sys;        /* -a */
	struct bpf_link *proc_links[2]; /* -a: exec and exit tracepoints */
	struct ht_events ev;
	struct ht_child child;
	bool launched;
	pid_t pid;
	int sigfd, pidfd;
	struct ht_outputs out;
	size_t nprobes, slow_probes; /* kept for reports after the probes are detached */
	uint64_t origin_ns, last_roll_ns;
	uint64_t last_go_refresh_ns; /* Go processes' memory read at most every 100 ms */
	uint64_t start_unix_ns;
	bool stop;
	bool busy; /* the last drain found the ring filling fast */
	bool target_gone;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void drain(struct session *s)
{
	s->ev.drain_gen++;
	/* Filling fast: drain again in 1 ms rather than drain_ms, before the ring fills. */
	s->busy = s->ring && ringread__filling(s->ring);
	if (s->ring)
		ringread__consume(s->ring, events__prefetch, events__handle, &s->ev);
	/* Pause times wait in the runtime's last 256 cycles: reading them 10 times a second
	 * is plenty, and costs two syscalls per Go process (many under -a). */
	if (s->ev.go && now_ns() - s->last_go_refresh_ns >= 100000000ull) {
		gostate__refresh(s->ev.go, s->ev.procs);
		s->last_go_refresh_ns = now_ns();
	}
	if (s->sys)
		system__maintain(s->sys);
}

static void read_loss(struct session *s, struct ht_loss *loss)
{
	int ncpus = libbpf_num_possible_cpus();
	uint64_t vals[ncpus > 0 ? ncpus : 1];

	memset(loss, 0, sizeof(*loss));
	for (uint32_t k = 0; k < HT_CNT__COUNT; k++) {
		if (bpf_map__lookup_elem(s->skel->maps.ht_counters, &k, sizeof(k), vals,
					 sizeof(vals), 0))
			continue;
		for (int c = 0; c < ncpus; c++)
			loss->bpf[k] += vals[c];
	}
	loss->bad_records = s->ev.bad_records + s->ev.nomem;
	loss->bpf[HT_CNT_NESTED_SKIPPED] += s->ev.nested_skipped;
	if (s->ev.unwind) /* with a stack copy, the collector decides what is truncated */
		loss->bpf[HT_CNT_STACK_TRUNCATED] += unwinder__truncated(s->ev.unwind);
}

static struct ht_report *snapshot(struct session *s, bool final)
{
	uint64_t now = now_ns();
	struct ht_loss loss;
	struct ht_report_input in = {
		.heap = s->ev.heap, .stacks = s->ev.stacks, .procs = s->ev.procs, .loss = &loss,
		.elapsed_s = (now - s->origin_ns) / 1e9, .interval_s = (now - s->last_roll_ns) / 1e9,
		.min_age_s = s->cfg->min_age_s, .now_ns = now, .origin_ns = s->origin_ns,
		.start_unix_ns = s->start_unix_ns,
		.mode = s->cfg->floor ? (s->cfg->mode == HT_TRACE_RATE ? "floor-rate" : "floor-live")
				      : (s->cfg->mode == HT_TRACE_RATE ? "rate" : "live"),
		.sample_bytes = s->cfg->sample_bytes,
		.max_depth = s->cfg->max_depth, .events = s->ev.handled, .probes = s->nprobes,
		.slow_probes = s->slow_probes, .final = final, .go = s->ev.go,
		.gc_timeline = s->cfg->write.gc_timeline,
	};
	struct ht_report *r;

	read_loss(s, &loss);
	heap__roll_interval(s->ev.heap);
	s->last_roll_ns = now;
	r = report__build(&in);
	if (!r)
		log_error("cannot build the report: %s", strerror(errno));
	if (r && s->sys) {
		report__sort_procs(r);
		if (!(r->system = system__report(s->sys))) {
			report__free(r);
			r = NULL;
		}
	}
	return r;
}

static int final_outputs(struct session *s)
{
	struct ht_report *r = snapshot(s, true);
	int err = 0;

	if (!r)
		return -ENOMEM;
	if (!s->cfg->quiet)
		report__write_text(r, stdout, s->cfg->write.top);
	err = outputs__commit(&s->out, r, &s->cfg->write);
	report__free(r);
	return err;
}

/* The child stopped at its exit with its map intact: drain its last records and read the
 * map so every stack it produced can be symbolized. */
static void child_at_exit(void *arg)
{
	struct session *s = arg;
	struct ht_proc_info *info;

	drain(s);
	info = procs__get(s->ev.procs, s->pid);
	if (info)
		procs__refresh_map(info);
	/* its memory is still there: the last GC cycles' pause times */
	gostate__refresh(s->ev.go, s->ev.procs);
	if (s->sys)
		system__maintain(s->sys);
}

static int setup_signals(struct session *s)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL))
		return -errno;
	s->sigfd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
	return s->sigfd < 0 ? -errno : 0;
}

static int load_bpf(struct session *s)
{
	int err;

	s->skel = heaptap__open();
	if (!s->skel) {
		err = -errno;
		goto fail;
	}
	s->skel->rodata->ht_max_depth = s->cfg->max_depth;
	s->skel->rodata->ht_mode = s->cfg->floor ? HT_MODE_FLOOR
				   : s->cfg->mode == HT_TRACE_RATE ? HT_MODE_RATE : HT_MODE_LIVE;
	s->skel->rodata->ht_sample_bytes = s->cfg->sample_bytes;
	s->skel->rodata->ht_unwind = s->cfg->unwind == HT_UNWIND_MODE_FP      ? HT_UNWIND_FP
				     : s->cfg->unwind == HT_UNWIND_MODE_DWARF ? HT_UNWIND_DWARF
									: HT_UNWIND_AUTO;
	s->skel->rodata->ht_stack_bytes = s->cfg->stack_bytes;
	/* Quantiles (i + 1/2)/N of the exponential with mean R: a uniform index into this
	 * table is an exponential draw, to within the table's resolution. */
	for (int i = 0; i < HT_EXP_TABLE; i++)
		s->skel->rodata->ht_exp_table[i] =
			(__u64)llround(-log1p(-(i + 0.5) / HT_EXP_TABLE) * (double)s->cfg->sample_bytes);
	bpf_map__set_max_entries(s->skel->maps.ht_events, s->cfg->ring_mb << 20);
	if (s->cfg->system) {
		s->skel->rodata->ht_self_tgid = (__u32)getpid();
	} else {
		bpf_program__set_autoload(s->skel->progs.ht_proc_exec, false);
		bpf_program__set_autoload(s->skel->progs.ht_proc_exit, false);
		bpf_program__set_autoload(s->skel->progs.ht_dlopen_return, false);
	}
	err = heaptap__load(s->skel);
	if (err)
		goto fail;
	s->ring = ringread__new(bpf_map__fd(s->skel->maps.ht_events));
	if (!s->ring) {
		err = -errno;
		goto fail;
	}
	return 0;
fail:
	if ((err == -EPERM || err == -EACCES) && geteuid() != 0)
		log_error("cannot load BPF programs: %s (run as root, or with CAP_BPF and "
			  "CAP_PERFMON)", strerror(-err));
	else
		log_error("cannot load BPF programs: %s (is BPF available in this kernel? -v "
			  "shows libbpf's messages)", strerror(-err));
	return err;
}

/*
 * Probes in the process's allocators: the Go runtime when the executable is Go (Go
 * allocations never reach malloc), and the native allocator functions wherever they are
 * bound (a cgo program has both; a pure Go program has no malloc at all).
 */
static int attach_all(struct session *s, const struct ht_object *objs, size_t n,
		      const char *exe, const char *exe_open)
{
	bool rate = s->cfg->mode == HT_TRACE_RATE;
	int err = -ENOTSUP, nerr;

	if (exe && (err = goprobes__attach(s->skel, s->pid, exe, exe_open, s->cfg->go_exact, rate,
					   &s->goprobes)) && err != -ENOTSUP)
		return err;
	if (!err) {
		uint64_t dev, ino;

		goprobes__identity(s->goprobes, &dev, &ino);
		if (!(s->ev.go = gostate__new()) ||
		    gostate__add(s->ev.go, s->pid, goprobes__version(s->goprobes),
				 goprobes__exact(s->goprobes), goprobes__layout(s->goprobes), dev, ino)) {
			log_error("out of memory");
			return -ENOMEM;
		}
	} else if (s->cfg->go_exact) {
		log_error("--go-exact: %s is not a Go program", exe ? exe : "the target");
		return -EINVAL;
	}
	nerr = probes__attach(s->skel, s->pid, objs, n, rate, &s->probes);
	if (nerr == -ENOENT && s->goprobes)
		return 0; /* pure Go */
	if (nerr == -ENOENT)
		log_error("no allocator functions (malloc, free, operator new, ...) found in the "
			  "objects of process %d: is it statically linked and stripped?", s->pid);
	return nerr;
}

/* The objects of a running process, in lookup order: executable, then the rest, libc last
 * (a preloaded allocator interposes on libc; /proc/PID/maps has no lookup order). */
static int attach_running(struct session *s)
{
	struct ht_proc_info *info;
	struct ht_object *objs;
	size_t n = 0;
	int err;

	if (kill(s->pid, 0) && errno == ESRCH) {
		log_error("no process with pid %d", s->pid);
		return -ESRCH;
	}
	info = procs__get(s->ev.procs, s->pid);
	if (!info)
		return -ENOMEM;
	if (!info->map_read) {
		log_error("cannot read the memory map of process %d: %s", s->pid,
			  kill(s->pid, 0) ? "it exited" : "permission denied");
		return -ESRCH;
	}
	objs = calloc(info->map.n + 1, sizeof(*objs));
	if (!objs)
		return -ENOMEM;
	n = probes__lookup_order(&info->map, info->exe, objs);
	s->pidfd = syscall(SYS_pidfd_open, s->pid, 0);
	if (s->ev.unwind) /* auto: where frame pointers hold, before the first record */
		unwinder__prepare_process(s->ev.unwind, info);
	err = attach_all(s, objs, n, n ? objs[0].path : NULL, n ? objs[0].open_path : NULL);
	free(objs);
	return err;
}

static int launch_command(struct session *s)
{
	char *path = NULL, **paths = NULL;
	struct ht_object *objs = NULL;
	size_t n = 0;
	int err;

	err = launch__resolve(s->cfg->cmd[0], &path);
	if (err) {
		log_error("%s: %s", s->cfg->cmd[0],
			  err == -ENOENT ? "command not found" : strerror(-err));
		return err;
	}
	err = probes__command_objects(path, &paths, &n);
	if (err) {
		log_error("%s: cannot read its ELF headers: %s", path, strerror(-err));
		goto out;
	}
	objs = calloc(n, sizeof(*objs));
	if (!objs) {
		err = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		objs[i] = (struct ht_object){ paths[i], paths[i] };
		if (s->ev.unwind) /* auto: which keep frame pointers, before the first record */
			unwinder__classify_file(s->ev.unwind, paths[i]);
	}
	err = launch__spawn(&s->child, path, s->cfg->cmd);
	if (err) {
		log_error("cannot start %s: %s", path, strerror(-err));
		goto out;
	}
	s->launched = true;
	s->pid = s->child.pid;
	err = attach_all(s, objs, n, path, path);
	if (err)
		goto out;
	err = launch__release(&s->child);
	if (err)
		log_error("%s: cannot execute: %s", path, strerror(-err));
out:
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	free(paths);
	free(objs);
	free(path);
	return err;
}

/* heaptap -a: every allocator object on the machine, and processes as they come and go. */
static int start_system(struct session *s)
{
	struct ht_system_opts o = { .comms = s->cfg->comms, .cgroup = s->cfg->cgroup,
				    .rate = s->cfg->mode == HT_TRACE_RATE,
				    .go_exact = s->cfg->go_exact, .max_procs = s->cfg->max_procs };
	int err;

	if (!(s->ev.go = gostate__new()))
		return -ENOMEM;
	/* the lifecycle first: a process that execs during discovery is not missed */
	s->proc_links[0] = bpf_program__attach(s->skel->progs.ht_proc_exec);
	s->proc_links[1] = bpf_program__attach(s->skel->progs.ht_proc_exit);
	if (!s->proc_links[0] || !s->proc_links[1]) {
		err = -errno;
		log_error("cannot attach to the sched_process_exec/exit tracepoints: %s",
			  strerror(-err));
		return err;
	}
	err = system__start(&s->sys, s->skel, &s->ev, &o);
	if (err)
		return err;
	s->ev.on_proc = system__on_proc;
	s->ev.on_proc_ctx = s->sys;
	return 0;
}

static void handle_signals(struct session *s)
{
	struct signalfd_siginfo si;

	while (read(s->sigfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGCHLD)
			continue; /* handled by launch__poll below */
		if (s->launched && !s->child.exited) {
			/* Ctrl-C reached the command too; a SIGTERM sent to heaptap alone is
			 * passed on so the command ends with the session. */
			if (si.ssi_signo == SIGTERM || si.ssi_pid != 0)
				kill(s->child.pid, si.ssi_signo);
		}
		s->stop = true;
	}
	if (s->launched && launch__poll(&s->child, child_at_exit, s))
		s->target_gone = true;
}

static void run_loop(struct session *s)
{
	uint64_t deadline = s->cfg->duration_s > 0 ? s->origin_ns + s->cfg->duration_s * 1e9 : 0;
	uint64_t next_report = s->cfg->interval_s > 0 ? s->origin_ns + s->cfg->interval_s * 1e9 : 0;
	uint64_t stop_at = 0;

	while (!s->target_gone) {
		/* The ring wakes us once a quarter full, and at each exec under -a (the new
		 * process's map is read while it lives); poll() skips a negative fd. */
		struct pollfd fds[3] = { { .fd = s->sigfd, .events = POLLIN },
					 { .fd = ringread__epoll_fd(s->ring), .events = POLLIN },
					 { .fd = s->sys ? -1 : s->pidfd, .events = POLLIN } };
		uint64_t now;

		poll(fds, 3, s->busy ? 1 : s->cfg->drain_ms);
		drain(s);
		handle_signals(s);
		if (!s->launched && !s->sys && s->pidfd >= 0 && (fds[2].revents & POLLIN))
			s->target_gone = true;
		now = now_ns();
		if (deadline && now >= deadline)
			break;
		if (s->stop) {
			/* A launched command gets a moment to exit after the signal, so its exit
			 * status is what we return. */
			if (!s->launched || s->child.exited)
				break;
			if (!stop_at)
				stop_at = now + 2000000000ull;
			else if (now >= stop_at)
				break;
		}
		if (next_report && now >= next_report && !s->target_gone) {
			struct ht_report *r = snapshot(s, false);

			if (r && !s->cfg->quiet)
				report__write_text(r, stdout, s->cfg->write.top);
			report__free(r);
			next_report += s->cfg->interval_s * 1e9;
		}
	}
}

int session__run(const struct ht_config *cfg)
{
	struct session s = { .cfg = cfg, .sigfd = -1, .pidfd = -1, .child = { .pid = -1 } };
	int err, code = 1;

	if (outputs__open(&s.out, cfg->outputs, cfg->noutputs))
		goto out;
	s.origin_ns = s.last_roll_ns = now_ns();
	s.ev.heap = heap__new(cfg->max_blocks, s.origin_ns);
	s.ev.stacks = stacks__new();
	s.ev.procs = procs__new();
	s.ev.sample_bytes = cfg->sample_bytes;

	s.ev.rng = 0x9e3779b97f4a7c15ull; /* fixed seed: a replay rounds the same way */
	if (!s.ev.heap || !s.ev.stacks || !s.ev.procs) {
		log_error("out of memory");
		goto out;
	}
	if ((err = setup_signals(&s))) {
		log_error("cannot set up signal handling: %s", strerror(-err));
		goto out;
	}
	if (load_bpf(&s))
		goto out;
	if (cfg->unwind != HT_UNWIND_MODE_FP &&
	    !(s.ev.unwind = unwinder__new(cfg->unwind, cfg->max_depth,
					  bpf_map__fd(s.skel->maps.ht_fp_code)))) {
		log_error("out of memory");
		goto out;
	}
	s.pid = cfg->pid;
	err = cfg->system ? start_system(&s) : cfg->cmd ? launch_command(&s) : attach_running(&s);
	if (err) {
		launch__abort(&s.child);
		goto out;
	}
	if (log__verbosity() >= 1) {
		probes__describe(s.probes);
		goprobes__describe(s.goprobes);
	}
	{
		size_t go_slow = 0;

		s.nprobes = (s.probes ? probes__count(s.probes, &s.slow_probes) : 0) +
			    goprobes__count(s.goprobes, &go_slow);
		s.slow_probes += go_slow;
		if (s.sys)
			s.nprobes = system__probes(s.sys, &s.slow_probes);
	}
	s.ev.probes = s.probes;
	if (s.goprobes) {
		const struct ht_go_layout *gl = goprobes__layout(s.goprobes);

		log__msg(cfg->go_exact ? HT_LOG_WARN : HT_LOG_INFO, "Go program (%s): %s%s%s",
			 goprobes__version(s.goprobes),
			 cfg->go_exact ? "every allocation (--go-exact: a probe per allocation, "
					 "expect the program to run several times slower)"
				       : "Go's own allocation sampler",
			 gl->note[0] ? "; " : "", gl->note);
	}
	if (s.sys)
		log_info("tracing system-wide: %zu probes (%zu single-stepped)", s.nprobes,
			 s.slow_probes);
	else
		log_info("tracing pid %d: %zu probes (%zu single-stepped)", s.pid, s.nprobes,
			 s.slow_probes);
	s.origin_ns = s.last_roll_ns = now_ns();
	/* block ages (--min-age) and report times share this origin */
	heap__set_origin(s.ev.heap, s.origin_ns);
	{
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		s.start_unix_ns = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
	}
	run_loop(&s);

	/* Detach first, so nothing new arrives, then take what is left. */
	probes__free(s.probes);
	s.probes = NULL;
	s.ev.probes = NULL;
	goprobes__free(s.goprobes);
	s.goprobes = NULL;
	system__detach(s.sys);
	for (int i = 0; i < 2; i++) {
		bpf_link__destroy(s.proc_links[i]);
		s.proc_links[i] = NULL;
	}
	drain(&s);
	if (s.launched && !s.child.exited)
		launch__poll(&s.child, child_at_exit, &s);
	{
		struct ht_proc_info *info = procs__get(s.ev.procs, s.pid);

		if (info && s.target_gone)
			procs__mark_exited(info, s.launched, s.child.exit_code);
	}
	if (s.target_gone && !s.launched)
		log_info("process %d exited", s.pid);
	if (s.ev.unwind)
		unwinder__log_stats(s.ev.unwind);
	gostate__refresh(s.ev.go, s.ev.procs); /* the last cycles of processes still alive */
	code = final_outputs(&s) ? 1 : 0;
	if (s.launched && s.child.exited && !code)
		code = s.child.exit_code;
out:
	outputs__discard(&s.out);
	probes__free(s.probes);
	goprobes__free(s.goprobes);
	for (int i = 0; i < 2; i++)
		bpf_link__destroy(s.proc_links[i]);
	system__free(s.sys);
	gostate__free(s.ev.go);
	ringread__free(s.ring);
	heaptap__destroy(s.skel);
	heap__free(s.ev.heap);
	stacks__free(s.ev.stacks);
	procs__free(s.ev.procs);
	events__clear(&s.ev);
	unwinder__free(s.ev.unwind);
	if (s.sigfd >= 0)
		close(s.sigfd);
	if (s.pidfd >= 0)
		close(s.pidfd);
	return code;
}
