#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "elf_syms.h"
#include "events.h"
#include "gobin.h"
#include "goprobes.h"
#include "gostate.h"
#include "heap.h"
#include "heaptap.skel.h"
#include "log.h"
#include "probes.h"
#include "procs.h"
#include "report.h"
#include "system.h"
#include "u64map.h"

/* An ELF object some process maps, identified by device and inode (paths differ across
 * mount namespaces and chroots). */
struct object {
	uint64_t dev, ino;
	char *path;             /* as the first process that mapped it names it */
	char kind[16];          /* "glibc", "libstdc++", "jemalloc", "static", "go", "" */
	bool is_go, has_alloc;  /* a Go executable; defines allocator functions */
	struct ht_probes *probes;   /* global attach (no filter) */
	struct ht_goprobes *go;     /* global attach of a Go executable */
	struct bpf_link *dlopen;    /* libc: a return probe on dlopen (new objects) */
	size_t nprobes, slow;
};

/*
 * A program read at its exec while its dynamic linker was still mapping libraries: its map
 * is read again a few times, at growing delays after the exec, until libc is there (the
 * linker maps preloaded objects and the executable's own dependencies before it, so a
 * preloaded or linked-in jemalloc is then mapped too).  Without this, an allocator library
 * not yet attached was missed for good when the collector woke faster than ld.so worked
 * (typical on a loaded machine).  With --comm/--cgroup only selected processes attached
 * at their exec are watched (rebind_scoped).
 */
struct loader_watch {
	pid_t pid;
	uint32_t rereads;
	uint64_t exec_ns;
};

/* Re-reads after the exec, ms (the linker takes ~1 ms unloaded); then the watch ends. */
static const uint32_t loader_reread_ms[] = { 2, 10, 50, 250, 1000, 3000 };
#define LOADER_REREADS (sizeof(loader_reread_ms) / sizeof(loader_reread_ms[0]))
/* Bounded: a machine exec'ing faster than its linkers work drops the oldest watches. */
#define LOADER_WATCH_MAX 1024

/* Pid-scoped attachments (--comm, --cgroup). */
struct scoped {
	pid_t pid;
	struct ht_probes *probes;
	struct ht_goprobes *go;
	/* Attached at the exec from the objects known then (the first known_objs of objs[]):
	 * an allocator object first seen in its map later binds its functions again. */
	bool from_known;
	size_t known_objs;
};

struct ht_system {
	struct heaptap *skel;
	struct ht_events *ev;
	struct ht_system_opts o;
	struct object *objs;
	size_t nobjs, objs_cap;
	struct ht_u64map obj_index;  /* hash(dev, ino) -> index + 1 */
	struct scoped *scoped;
	size_t nscoped, scoped_cap;
	struct loader_watch watches[LOADER_WATCH_MAX]; /* a ring, oldest at watch_head */
	size_t watch_head, nwatches;
	bool filtered;               /* --comm or --cgroup */
	bool *comm_seen;
	uint64_t procs_seen, procs_exited, procs_evicted, late_attaches, exec_events;
	uint64_t exit_seq;
	char cgroup_dir[4096];       /* --cgroup */
	double attach_ms;
	bool started;                /* discovery done */
	bool detached;
};

static uint64_t obj_key(uint64_t dev, uint64_t ino)
{
	return u64_hash(dev * 0x9e3779b97f4a7c15ull ^ ino) | 1;
}

static struct object *find_obj(struct ht_system *s, uint64_t dev, uint64_t ino)
{
	uint64_t *v = u64map__get(&s->obj_index, obj_key(dev, ino));

	if (v && s->objs[*v - 1].dev == dev && s->objs[*v - 1].ino == ino)
		return &s->objs[*v - 1];
	/* not seen, or two objects under one 64-bit key (the index names the later one) */
	for (size_t i = 0; i < s->nobjs; i++)
		if (s->objs[i].dev == dev && s->objs[i].ino == ino)
			return &s->objs[i];
	return NULL;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1e3 + (t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static const char *basename_of(const char *path)
{
	const char *b = strrchr(path, '/');

	return b ? b + 1 : path;
}

static void classify_kind(struct object *o, bool exe)
{
	const char *b = basename_of(o->path);

	if (o->is_go)
		snprintf(o->kind, sizeof(o->kind), "go");
	else if (!strncmp(b, "libc.so", 7))
		snprintf(o->kind, sizeof(o->kind), "glibc");
	else if (!strncmp(b, "libjemalloc", 11))
		snprintf(o->kind, sizeof(o->kind), "jemalloc");
	else if (!strncmp(b, "libtcmalloc", 11))
		snprintf(o->kind, sizeof(o->kind), "tcmalloc");
	else if (!strncmp(b, "libmimalloc", 11))
		snprintf(o->kind, sizeof(o->kind), "mimalloc");
	else if (!strncmp(b, "libstdc++", 9))
		snprintf(o->kind, sizeof(o->kind), "libstdc++");
	else if (exe && o->has_alloc)
		snprintf(o->kind, sizeof(o->kind), "static");
	else if (o->has_alloc)
		snprintf(o->kind, sizeof(o->kind), "other");
}

/* First sight of an object: what it defines, and (no filter) its global attachment. */
static struct object *add_object(struct ht_system *s, const struct ht_module *m, bool exe)
{
	struct object *o;
	struct ht_object one = { m->path, m->open_path ? m->open_path : m->path };
	struct timespec t0;
	struct stat st;
	int err;

	/* /proc/PID/root + path names the file for a process in another mount namespace;
	 * for one in a chroot the map already shows the full path from our root. */
	if (stat(one.open_path, &st) || st.st_ino != m->inode)
		one.open_path = m->path;

	if (s->nobjs == s->objs_cap) {
		size_t ncap = s->objs_cap ? s->objs_cap * 2 : 64;
		void *np = realloc(s->objs, ncap * sizeof(*s->objs));

		if (!np)
			return NULL;
		s->objs = np;
		s->objs_cap = ncap;
	}
	o = &s->objs[s->nobjs];
	memset(o, 0, sizeof(*o));
	o->dev = m->dev;
	o->ino = m->inode;
	if (!(o->path = strdup(m->path)) || u64map__put(&s->obj_index, obj_key(o->dev, o->ino),
							 s->nobjs + 1)) {
		free(o->path);
		return NULL;
	}
	s->nobjs++;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (exe) {
		struct ht_gobin *g = gobin__open(one.open_path);

		o->is_go = g && gobin__is_go(g);
		gobin__close(g);
	}
	if (o->is_go) {
		o->has_alloc = true;
		if (!s->filtered) {
			err = goprobes__attach(s->skel, -1, o->path, one.open_path, s->o.go_exact,
					       s->o.rate, &o->go);
			if (err)
				log_warn("system: cannot attach to Go program %s: %s", o->path,
					 strerror(-err));
			o->nprobes = goprobes__count(o->go, &o->slow);
		}
	} else if (!s->filtered) {
		err = probes__attach(s->skel, -1, &one, 1, s->o.rate, &o->probes);
		o->has_alloc = !err;
		if (err && err != -ENOENT) {
			if (err == -EMFILE || err == -ENFILE)
				log_error("system: out of file descriptors attaching %s (RLIMIT_NOFILE: "
					  "raise it with ulimit -n)", o->path);
			else
				log_warn("system: cannot attach to %s: %s", o->path, strerror(-err));
		}
		if (o->probes)
			o->nprobes = probes__count(o->probes, &o->slow);
	} else {
		struct ht_elf_syms *e = elf_syms__open(one.open_path);

		o->has_alloc = e && (elf_syms__defines(e, "malloc") || elf_syms__defines(e, "_Znwm"));
		elf_syms__close(e);
	}
	classify_kind(o, exe);
	/* A library dlopen'ed later (an allocator among them) is found when dlopen returns. */
	if (!s->filtered && !strcmp(o->kind, "glibc")) {
		LIBBPF_OPTS(bpf_uprobe_opts, uo, .retprobe = true, .func_name = "dlopen");

		o->dlopen = bpf_program__attach_uprobe_opts(s->skel->progs.ht_dlopen_return, -1,
							    one.open_path, 0, &uo);
		if (!o->dlopen)
			log_debug("system: no dlopen probe in %s: %s", o->path, strerror(errno));
	}
	if (o->nprobes && s->started) /* brought by an exec or a dlopen */
		log_info("system: attached %s (%s): %zu probes in %.1f ms", o->path, o->kind,
			 o->nprobes, ms_since(&t0));
	return o;
}

/* The process's allocator, as reports name it: what it binds malloc to. */
static void label_process(struct ht_system *s, struct ht_proc_info *info)
{
	const char *label = "";

	for (size_t i = 0; i < info->map.n; i++) {
		const struct ht_module *m = &info->map.mods[i];
		struct object *o = find_obj(s, m->dev, m->inode);
		bool exe = info->exe && !strcmp(m->path, info->exe);

		if (!o || !o->kind[0] || !strcmp(o->kind, "libstdc++") || !strcmp(o->kind, "other"))
			continue;
		/* a preloaded allocator or the executable's own wins over libc */
		if (!label[0] || !strcmp(label, "glibc") || exe)
			label = o->kind;
	}
	snprintf(info->allocator, sizeof(info->allocator), "%s", label[0] ? label : "none");
}

static bool comm_selected(struct ht_system *s, const char *comm)
{
	if (!s->o.comms)
		return true;
	for (size_t i = 0; s->o.comms[i]; i++)
		if (!strcmp(s->o.comms[i], comm)) {
			s->comm_seen[i] = true;
			return true;
		}
	return false;
}

/* True if pid is listed in cgroup.procs of dir or of a cgroup below it (cgroup v1 or v2
 * alike: no parsing of /proc/PID/cgroup and its per-hierarchy formats). */
static bool in_cgroup_tree(const char *dir, pid_t pid, int depth)
{
	char path[4200];
	bool in = false;
	struct dirent *de;
	FILE *f;
	DIR *d;
	long v;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	if ((f = fopen(path, "re"))) {
		while (!in && fscanf(f, "%ld", &v) == 1)
			in = v == pid;
		fclose(f);
	}
	if (in || depth >= 16 || !(d = opendir(dir)))
		return in;
	while (!in && (de = readdir(d)))
		if (de->d_type == DT_DIR && de->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			in = in_cgroup_tree(path, pid, depth + 1);
		}
	closedir(d);
	return in;
}

static bool cgroup_selected(struct ht_system *s, pid_t pid)
{
	return !s->o.cgroup || in_cgroup_tree(s->cgroup_dir, pid, 0);
}

/*
 * Pid-scoped attach of one selected process, in its lookup order (like -p).  Right after
 * its exec a process has mapped only its executable and the dynamic linker: its libraries
 * come from `ld.so --list` (like -- CMD), and each probe goes in as the library is mapped.
 */
static void attach_scoped(struct ht_system *s, struct ht_proc_info *info, bool after_exec)
{
	struct ht_object *objs;
	struct scoped *sc;
	size_t n = 0;
	int err;
	bool from_known = false;

	for (size_t i = 0; i < s->nscoped; i++)
		if (s->scoped[i].pid == info->pid)
			return;
	if (s->nscoped == s->scoped_cap) {
		size_t ncap = s->scoped_cap ? s->scoped_cap * 2 : 16;
		void *np = realloc(s->scoped, ncap * sizeof(*s->scoped));

		if (!np)
			return;
		s->scoped = np;
		s->scoped_cap = ncap;
	}
	sc = &s->scoped[s->nscoped];
	memset(sc, 0, sizeof(*sc));
	sc->pid = info->pid;
	if (!(objs = calloc(info->map.n + s->nobjs + 1, sizeof(*objs))))
		goto out;
	if (after_exec) {
		/* Its libraries are not mapped yet: every allocator object known so far, in
		 * lookup order (its own executable, then others, libc last); each probe goes in
		 * when the object is mapped.  No `ld.so --list`: it would cost a fork while the
		 * program starts allocating. */
		for (size_t i = 0; i < info->map.n; i++)
			if (info->exe && !strcmp(info->map.mods[i].path, info->exe))
				objs[n++] = (struct ht_object){ info->map.mods[i].path,
								info->map.mods[i].open_path };
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < s->nobjs; i++) {
				bool libc = !strcmp(s->objs[i].kind, "glibc");

				if (s->objs[i].has_alloc && !s->objs[i].is_go && libc == (pass == 1))
					objs[n++] = (struct ht_object){ s->objs[i].path, s->objs[i].path };
			}
		from_known = true;
	}
	if (!from_known)
		n = probes__lookup_order(&info->map, info->exe, objs);
	if (n && info->exe && !strcmp(objs[0].path, info->exe)) {
		err = goprobes__attach(s->skel, info->pid, objs[0].path, objs[0].open_path,
				       s->o.go_exact, s->o.rate, &sc->go);
		if (!err && s->ev->go) {
			uint64_t dev, ino;

			goprobes__identity(sc->go, &dev, &ino);
			gostate__add(s->ev->go, info->pid, goprobes__version(sc->go),
				     goprobes__exact(sc->go), goprobes__layout(sc->go), dev, ino);
		}
	}
	err = probes__attach(s->skel, info->pid, objs, n, s->o.rate, &sc->probes);
	if (err && err != -ENOENT)
		log_warn("system: cannot attach to process %d (%s): %s", info->pid, info->comm,
			 strerror(-err));
	if (sc->probes || sc->go) {
		sc->from_known = from_known;
		sc->known_objs = s->nobjs;
		s->nscoped++;
		log_info("system: attached to process %d (%s)", info->pid, info->comm);
	}
out:
	free(objs);
}

/* pid's pid-scoped attachment if it was made from the objects known at its exec. */
static struct scoped *scoped_from_known(struct ht_system *s, pid_t pid)
{
	for (size_t i = 0; i < s->nscoped; i++)
		if (s->scoped[i].pid == pid && s->scoped[i].from_known)
			return &s->scoped[i];
	return NULL;
}

/*
 * A selected process attached at its exec from the objects known then, whose map now
 * shows an allocator object first seen after that (its dynamic linker mapped a preloaded
 * or linked-in jemalloc): its functions are bound again in the map's real lookup order,
 * so the new object's malloc is probed (and libc's, which it interposes on, no longer).
 * The old links go only once the new ones are in.  True if it was bound again.
 */
static bool rebind_scoped(struct ht_system *s, struct ht_proc_info *info)
{
	struct scoped *sc = scoped_from_known(s, info->pid);
	struct ht_object *objs;
	struct ht_probes *np = NULL;
	char news[512] = ""; /* the new objects, for the log */
	size_t n, at = 0;

	if (!sc)
		return false;
	for (size_t i = 0; i < info->map.n; i++) {
		uint64_t *v = u64map__get(&s->obj_index, obj_key(info->map.mods[i].dev,
								  info->map.mods[i].inode));
		const struct object *o = v ? &s->objs[*v - 1] : NULL;
		int w;

		if (!o || *v - 1 < sc->known_objs || !o->has_alloc || o->is_go)
			continue;
		w = snprintf(news + at, sizeof(news) - at, "%s%s", at ? ", " : "", o->path);
		at = w < 0 || (size_t)w >= sizeof(news) - at ? sizeof(news) - 1 : at + (size_t)w;
	}
	if (!at || !(objs = calloc(info->map.n + 1, sizeof(*objs))))
		return false;
	n = probes__lookup_order(&info->map, info->exe, objs);
	if (!probes__attach(s->skel, info->pid, objs, n, s->o.rate, &np)) {
		probes__free(sc->probes);
		sc->probes = np;
		sc->from_known = false;
		log_info("system: process %d (%s) mapped allocator objects after its exec (%s): "
			 "its allocator functions are bound again", info->pid, info->comm, news);
	}
	free(objs);
	return np != NULL;
}

/* The map shows a dynamic linker and no libc yet: ld.so has more to map. */
static bool loader_at_work(const struct ht_proc_info *info)
{
	bool interp = false;

	for (size_t i = 0; i < info->map.n; i++) {
		const char *slash = strrchr(info->map.mods[i].path, '/');
		const char *base = slash ? slash + 1 : info->map.mods[i].path;

		if (!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5) ||
		    !strncmp(base, "ld-musl", 7))
			return false;
		if (!strncmp(base, "ld-linux", 8) || !strncmp(base, "ld-", 3))
			interp = true;
	}
	return interp;
}

static void watch_loader(struct ht_system *s, pid_t pid)
{
	struct loader_watch *w;

	if (s->nwatches == LOADER_WATCH_MAX) { /* the oldest has had its early re-reads */
		s->watch_head = (s->watch_head + 1) % LOADER_WATCH_MAX;
		s->nwatches--;
	}
	w = &s->watches[(s->watch_head + s->nwatches++) % LOADER_WATCH_MAX];
	*w = (struct loader_watch){ .pid = pid, .exec_ns = mono_ns() };
}

/* A process seen (at start, after its exec, or after it mapped more): attach what it
 * brings.  True if that was an allocator object not attached before. */
static bool visit_process(struct ht_system *s, pid_t pid, bool after_exec)
{
	struct ht_proc_info *info;
	bool new_object = false, known;

	if (pid == getpid())
		return false;
	known = procs__find(s->ev->procs, pid) != NULL;
	info = procs__get(s->ev->procs, pid); /* a new record reads comm, exe and map */
	if (info && known && after_exec) { /* a record from before the exec: read again */
		procs__reread_identity(info);
		procs__refresh_map(info);
	}
	if (!info || !info->map_read || !info->map.n)
		return false; /* gone already, or a kernel thread */
	for (size_t i = 0; i < info->map.n; i++) {
		const struct ht_module *m = &info->map.mods[i];
		bool exe = info->exe && !strcmp(m->path, info->exe);
		struct object *o = find_obj(s, m->dev, m->inode);

		if (!o) {
			o = add_object(s, m, exe);
			new_object |= o && o->has_alloc;
		}
		/* A Go process's GC timeline and sampling rate (its probes' settings are the
		 * executable's, found by BPF through the task's exe inode). */
		if (o && o->is_go && o->go && exe) {
			if (s->ev->go && !gostate__find(s->ev->go, pid)) {
				uint64_t dev, ino;

				goprobes__identity(o->go, &dev, &ino);
				gostate__add(s->ev->go, pid, goprobes__version(o->go),
					     goprobes__exact(o->go), goprobes__layout(o->go), dev, ino);
			}
		}
	}
	if (after_exec && new_object && !s->filtered)
		s->late_attaches++; /* its own allocator was attached only now */
	if (s->filtered && comm_selected(s, info->comm) && cgroup_selected(s, pid)) {
		attach_scoped(s, info, after_exec);
		if (after_exec)
			s->late_attaches++;
	}
	label_process(s, info);
	/* after an exec: read again soon if its dynamic linker was still at work */
	if (after_exec && !info->exited && loader_at_work(info) &&
	    (!s->filtered || scoped_from_known(s, pid)))
		watch_loader(s, pid);
	return new_object;
}

/* Re-reads the maps whose time has come; a watch ends when libc is mapped, the process is
 * gone, or its re-reads are spent.  Ends are taken out by compacting the ring in place. */
static void check_loader_watches(struct ht_system *s)
{
	uint64_t now = s->nwatches ? mono_ns() : 0;
	size_t kept = 0, n = s->nwatches;

	for (size_t k = 0; k < n; k++) {
		struct loader_watch w = s->watches[(s->watch_head + k) % LOADER_WATCH_MAX];
		struct ht_proc_info *info = procs__find(s->ev->procs, w.pid);
		bool done = !info || info->exited;

		if (!done && now - w.exec_ns >= loader_reread_ms[w.rereads] * 1000000ull) {
			w.rereads++;
			if (procs__refresh_map(info)) {
				done = true; /* gone */
			} else {
				bool found = visit_process(s, w.pid, false);

				/* no filter: a new object is attached for every process; with
				 * one, this process's probes may have to be bound again */
				s->late_attaches += s->filtered ? rebind_scoped(s, info) : found;
				done = !loader_at_work(info) || w.rereads == LOADER_REREADS;
			}
		}
		if (!done)
			s->watches[(s->watch_head + kept++) % LOADER_WATCH_MAX] = w;
	}
	s->nwatches = kept;
}

static int check_cgroup(struct ht_system *s)
{
	char probe[4200];
	struct stat st;

	snprintf(probe, sizeof(probe), "%s/cgroup.procs", s->o.cgroup);
	if (stat(s->o.cgroup, &st) || !S_ISDIR(st.st_mode)) {
		log_error("--cgroup %s: no such cgroup directory", s->o.cgroup);
		return -ENOENT;
	}
	if (access(probe, R_OK)) {
		log_error("--cgroup %s: not a cgroup directory (no readable cgroup.procs)",
			  s->o.cgroup);
		return -EINVAL;
	}
	snprintf(s->cgroup_dir, sizeof(s->cgroup_dir), "%s", s->o.cgroup);
	return 0;
}

int system__start(struct ht_system **out, struct heaptap *skel, struct ht_events *ev,
		  const struct ht_system_opts *o)
{
	struct ht_system *s = calloc(1, sizeof(*s));
	struct timespec t0;
	size_t ncomms = 0, nprobes, slow;
	struct rlimit rl;
	DIR *d;
	struct dirent *de;

	*out = NULL;
	if (!s)
		return -ENOMEM;
	s->skel = skel;
	s->ev = ev;
	s->o = *o;
	s->filtered = o->comms || o->cgroup;
	for (; o->comms && o->comms[ncomms]; ncomms++)
		;
	if (!(s->comm_seen = calloc(ncomms + 1, sizeof(bool)))) {
		free(s);
		return -ENOMEM;
	}
	if (o->cgroup && check_cgroup(s)) {
		system__free(s);
		return -ENOENT;
	}
	/* One file descriptor per link: say which limit runs out before it does. */
	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < 4096) {
		rl.rlim_cur = rl.rlim_max < 65536 ? rl.rlim_max : 65536;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (!(d = opendir("/proc"))) {
		system__free(s);
		return -errno;
	}
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		visit_process(s, (pid_t)pid, false);
	}
	closedir(d);
	s->attach_ms = ms_since(&t0);
	s->started = true;
	nprobes = system__probes(s, &slow);
	if (s->filtered)
		log_info("system: %zu processes selected, %zu probe sites (pid-scoped: other "
			 "processes never trap) in %.0f ms", s->nscoped, nprobes, s->attach_ms);
	else {
		size_t nalloc = 0;

		for (size_t i = 0; i < s->nobjs; i++)
			if (s->objs[i].nprobes) {
				nalloc++;
				log_info("system: attached %s (%s): %zu probes%s", s->objs[i].path,
					 s->objs[i].kind, s->objs[i].nprobes,
					 s->objs[i].slow ? ", some single-stepped" : "");
			}
		/* said without -v: this taxes every process on the machine */
		log_warn("system-wide: %zu allocator objects of %zu mapped, %zu probe sites, "
			 "attached in %.0f ms; every process calling them pays a trap per call "
			 "(~6-10 us on this kind of VM; --comm/--cgroup attach to selected processes "
			 "only)", nalloc, s->nobjs, nprobes, s->attach_ms);
	}
	*out = s;
	return 0;
}

void system__on_proc(void *ctx, const struct ht_proc_rec *r)
{
	struct ht_system *s = ctx;
	struct ht_proc_info *info = procs__find(s->ev->procs, (pid_t)r->hdr.tgid);

	if (r->event == HT_PROC_DLOPEN) {
		if (info && !info->exited && !procs__refresh_map(info))
			visit_process(s, info->pid, false);
	} else if (r->event == HT_PROC_EXEC) {
		s->exec_events++;
		if (info && info->exited) {
			/* the pid was reused by a new process: the old one's record goes */
			events__drop_proc(s->ev, info->pid);
			procs__drop(s->ev->procs, info->pid);
			s->procs_evicted++;
		} else if (info) {
			/* The old program's blocks died with its image (a forked shell or
			 * interpreter between fork and exec): the figures start again. */
			events__drop_proc(s->ev, info->pid);
		}
		/* read the new program's map now, while it most likely lives (the record
		 * woke us up); again soon if its dynamic linker was still at work */
		visit_process(s, (pid_t)r->hdr.tgid, true);
	} else if (r->event == HT_PROC_EXIT && info && !info->exited) {
		int st = r->exit_code;

		procs__mark_exited(info, true, (st & 0x7f) ? 128 + (st & 0x7f) : (st >> 8) & 0xff);
		info->exited_seq = ++s->exit_seq;
		s->procs_exited++;
	}
}

/* Evicts the longest-exited processes while the table is over the cap. */
static void evict(struct ht_system *s)
{
	while (procs__count(s->ev->procs) > s->o.max_procs) {
		struct ht_proc_info *oldest = NULL;

		for (uint32_t i = 0; i < procs__count(s->ev->procs); i++) {
			struct ht_proc_info *p = procs__at(s->ev->procs, i);

			if (p->exited && (!oldest || p->exited_seq < oldest->exited_seq))
				oldest = p;
		}
		if (!oldest)
			return; /* all alive: the cap is a bound on the exited only */
		events__drop_proc(s->ev, oldest->pid);
		procs__drop(s->ev->procs, oldest->pid);
		s->procs_evicted++;
	}
}

void system__maintain(struct ht_system *s)
{
	/* every process ever recorded, also those first seen through their records (a forked
	 * child that never exec'd) */
	s->procs_seen = procs__created(s->ev->procs);
	for (uint32_t i = 0; i < procs__count(s->ev->procs); i++) {
		struct ht_proc_info *p = procs__at(s->ev->procs, i);

		/* right after an exec only the executable was mapped: label again later */
		if ((!p->allocator[0] || (!strcmp(p->allocator, "none") && !p->exited)) &&
		    p->map_read)
			label_process(s, p);
	}
	check_loader_watches(s);
	evict(s);
}

size_t system__probes(const struct ht_system *s, size_t *slow)
{
	size_t n = 0, sl = 0, x;

	for (size_t i = 0; i < s->nobjs; i++) {
		n += s->objs[i].nprobes;
		sl += s->objs[i].slow;
	}
	for (size_t i = 0; i < s->nscoped; i++) {
		n += probes__count(s->scoped[i].probes, &x) + goprobes__count(s->scoped[i].go, NULL);
		sl += x;
	}
	if (slow)
		*slow = sl;
	return n;
}

void system__detach(struct ht_system *s)
{
	if (!s || s->detached)
		return;
	for (size_t i = 0; i < s->nobjs; i++) {
		probes__free(s->objs[i].probes);
		goprobes__free(s->objs[i].go);
		bpf_link__destroy(s->objs[i].dlopen);
		s->objs[i].probes = NULL;
		s->objs[i].go = NULL;
		s->objs[i].dlopen = NULL;
	}
	for (size_t i = 0; i < s->nscoped; i++) {
		probes__free(s->scoped[i].probes);
		goprobes__free(s->scoped[i].go);
	}
	s->nscoped = 0;
	s->detached = true;
}

struct ht_rsystem *system__report(const struct ht_system *s)
{
	struct ht_rsystem *r = calloc(1, sizeof(*r));
	size_t k = 0;

	if (!r)
		return NULL;
	r->procs_seen = procs__created(s->ev->procs);
	r->procs_exited = s->procs_exited;
	r->procs_evicted = s->procs_evicted;
	r->late_attaches = s->late_attaches;
	r->exec_events = s->exec_events;
	r->attach_ms = s->attach_ms;
	r->filtered = s->filtered;
	r->objects = calloc(s->nobjs + 1, sizeof(*r->objects));
	r->comm_unmatched = calloc(1, sizeof(char *));
	for (size_t i = 0; r->objects && i < s->nobjs; i++) {
		if (!s->objs[i].nprobes)
			continue;
		r->objects[r->nobjects].path = strdup(s->objs[i].path);
		r->objects[r->nobjects].functions = (uint32_t)s->objs[i].nprobes;
		snprintf(r->objects[r->nobjects].kind, sizeof(r->objects[0].kind), "%s",
			 s->objs[i].kind);
		r->nobjects++;
	}
	for (size_t i = 0; s->o.comms && s->o.comms[i]; i++)
		k += !s->comm_seen[i];
	free(r->comm_unmatched);
	r->comm_unmatched = calloc(k + 1, sizeof(char *));
	for (size_t i = 0; r->comm_unmatched && s->o.comms && s->o.comms[i]; i++)
		if (!s->comm_seen[i])
			r->comm_unmatched[r->ncomm_unmatched++] = strdup(s->o.comms[i]);
	return r;
}

void system__free(struct ht_system *s)
{
	if (!s)
		return;
	system__detach(s);
	for (size_t i = 0; i < s->nobjs; i++)
		free(s->objs[i].path);
	free(s->objs);
	free(s->scoped);
	free(s->comm_seen);
	u64map__clear(&s->obj_index);
	free(s);
}
