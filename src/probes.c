#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "heaptap.h"
#include "heaptap.skel.h"
#include "elf_syms.h"
#include "goprobes.h"
#include "log.h"
#include "modmap.h"
#include "probes.h"

struct sym_def {
	const char *sym;
	const char *name; /* what reports call it */
	enum ht_fn fn;
};

/* Integer argument registers the BPF programs read for each kind of function. */
static int args_read(enum ht_fn fn)
{
	switch (fn) {
	case HT_FN_MALLOC: case HT_FN_VALLOC: case HT_FN_PVALLOC: case HT_FN_NEW:
	case HT_FN_NEW_ALIGNED: case HT_FN_FREE: case HT_FN_DELETE:
		return 1;
	case HT_FN_CALLOC: case HT_FN_REALLOC: case HT_FN_ALIGNED_ALLOC: case HT_FN_MEMALIGN:
		return 2;
	default: /* posix_memalign, reallocarray */
		return 3;
	}
}

/* Index in this table = HT_FN_SYM() of the cookie; keep below 256 entries. */
static const struct sym_def syms[] = {
	{ "malloc", "malloc", HT_FN_MALLOC },
	{ "calloc", "calloc", HT_FN_CALLOC },
	{ "realloc", "realloc", HT_FN_REALLOC },
	{ "reallocarray", "reallocarray", HT_FN_REALLOCARRAY },
	{ "posix_memalign", "posix_memalign", HT_FN_POSIX_MEMALIGN },
	{ "aligned_alloc", "aligned_alloc", HT_FN_ALIGNED_ALLOC },
	{ "memalign", "memalign", HT_FN_MEMALIGN },
	{ "valloc", "valloc", HT_FN_VALLOC },
	{ "pvalloc", "pvalloc", HT_FN_PVALLOC },
	{ "_Znwm", "operator new", HT_FN_NEW },
	{ "_Znam", "operator new[]", HT_FN_NEW },
	{ "_ZnwmRKSt9nothrow_t", "operator new(nothrow)", HT_FN_NEW },
	{ "_ZnamRKSt9nothrow_t", "operator new[](nothrow)", HT_FN_NEW },
	{ "_ZnwmSt11align_val_t", "operator new(align)", HT_FN_NEW_ALIGNED },
	{ "_ZnamSt11align_val_t", "operator new[](align)", HT_FN_NEW_ALIGNED },
	{ "_ZnwmSt11align_val_tRKSt9nothrow_t", "operator new(align, nothrow)", HT_FN_NEW_ALIGNED },
	{ "_ZnamSt11align_val_tRKSt9nothrow_t", "operator new[](align, nothrow)", HT_FN_NEW_ALIGNED },
	{ "free", "free", HT_FN_FREE },
	{ "_ZdlPv", "operator delete", HT_FN_DELETE },
	{ "_ZdaPv", "operator delete[]", HT_FN_DELETE },
	{ "_ZdlPvm", "operator delete(sized)", HT_FN_DELETE },
	{ "_ZdaPvm", "operator delete[](sized)", HT_FN_DELETE },
	{ "_ZdlPvSt11align_val_t", "operator delete(align)", HT_FN_DELETE },
	{ "_ZdaPvSt11align_val_t", "operator delete[](align)", HT_FN_DELETE },
	{ "_ZdlPvmSt11align_val_t", "operator delete(sized, align)", HT_FN_DELETE },
	{ "_ZdaPvmSt11align_val_t", "operator delete[](sized, align)", HT_FN_DELETE },
	{ "_ZdlPvRKSt9nothrow_t", "operator delete(nothrow)", HT_FN_DELETE },
	{ "_ZdaPvRKSt9nothrow_t", "operator delete[](nothrow)", HT_FN_DELETE },
	{ "_ZdlPvSt11align_val_tRKSt9nothrow_t", "operator delete(align, nothrow)", HT_FN_DELETE },
	{ "_ZdaPvSt11align_val_tRKSt9nothrow_t", "operator delete[](align, nothrow)", HT_FN_DELETE },
};
#define NSYMS (sizeof(syms) / sizeof(syms[0]))

struct site {
	const char *object; /* points into probes->objects */
	uint64_t dev, ino;  /* the object's identity (paths differ: /lib vs /usr/lib) */
	struct ht_probe_site ps;
	uint16_t sym;
};

struct ht_probes {
	struct bpf_link **links;
	size_t nlinks, links_cap;
	struct site sites[NSYMS];
	size_t nsites;
	char **objects; /* copies of the paths of objects with sites, which sites point to */
	size_t nobjects;
};

const char *probes__fn_name(uint16_t fn)
{
	unsigned idx = HT_FN_SYM(fn);

	if (HT_FN_ID(fn) >= HT_FN_GO_PROFILEALLOC && HT_FN_ID(fn) < HT_FN__COUNT)
		return goprobes__fn_name(fn);

	return idx < NSYMS ? syms[idx].name : "?";
}

static bool is_free_fn(enum ht_fn fn)
{
	return fn == HT_FN_FREE || fn == HT_FN_DELETE;
}

static int add_link(struct ht_probes *p, struct bpf_link *l)
{
	if (p->nlinks == p->links_cap) {
		size_t ncap = p->links_cap ? p->links_cap * 2 : 16;
		void *np = realloc(p->links, ncap * sizeof(*p->links));

		if (!np) {
			bpf_link__destroy(l);
			return -ENOMEM;
		}
		p->links = np;
		p->links_cap = ncap;
	}
	p->links[p->nlinks++] = l;
	return 0;
}

/*
 * Attaches prog at the given sites of one object: one uprobe_multi link for all of them
 * (one syscall; detach is one close), or, where the kernel refuses multi links, one perf
 * link per site.
 */
static int attach_group(struct ht_probes *p, struct bpf_program *prog, bool retprobe,
			pid_t pid, const char *open_path, const struct site *group[], size_t n)
{
	unsigned long offsets[NSYMS];
	__u64 cookies[NSYMS];
	struct bpf_link *l;
	int err;

	if (!n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		offsets[i] = group[i]->ps.file_offset;
		cookies[i] = syms[group[i]->sym].fn | (__u64)group[i]->sym << 8;
	}
	LIBBPF_OPTS(bpf_uprobe_multi_opts, mopts, .offsets = offsets, .cookies = cookies,
		    .cnt = n, .retprobe = retprobe);
	l = bpf_program__attach_uprobe_multi(prog, pid, open_path, NULL, &mopts);
	if (l)
		return add_link(p, l);
	err = -errno;
	log_debug("probes: uprobe_multi on '%s' failed (%s), attaching one by one", open_path,
		  strerror(-err));
	for (size_t i = 0; i < n; i++) {
		LIBBPF_OPTS(bpf_uprobe_opts, uopts, .bpf_cookie = cookies[i], .retprobe = retprobe);

		l = bpf_program__attach_uprobe_opts(prog, pid, open_path, offsets[i], &uopts);
		if (!l) {
			err = -errno;
			log_error("probes: failed to attach '%s' in '%s': %s", syms[group[i]->sym].sym,
				  group[i]->object, strerror(-err));
			return err;
		}
		if ((err = add_link(p, l)))
			return err;
	}
	return 0;
}

static bool same_address_bound(const struct ht_probes *p, const char *object, uint64_t off)
{
	for (size_t i = 0; i < p->nsites; i++)
		if (p->sites[i].object == object && p->sites[i].ps.file_offset == off)
			return true;
	return false;
}

static bool is_dynamic_linker(const char *path)
{
	const char *base = strrchr(path, '/');

	base = base ? base + 1 : path;
	return !strncmp(base, "ld-linux", 8) || !strncmp(base, "ld.so", 5) ||
	       !strncmp(base, "ld64.so", 7);
}

int probes__attach(struct heaptap *skel, pid_t pid, const struct ht_object *objects,
		   size_t n, bool rate, struct ht_probes **out)
{
	struct ht_probes *p = calloc(1, sizeof(*p));
	int err = 0;

	*out = NULL;
	if (!p || !(p->objects = calloc(n ? n : 1, sizeof(*p->objects)))) {
		free(p);
		return -ENOMEM;
	}
	/* Bind each function to the first object that defines it. */
	bool bound[NSYMS] = { false };

	for (size_t o = 0; o < n; o++) {
		const struct site *entry[NSYMS], *freeg[NSYMS];
		struct stat obj_st;
		size_t nentry = 0, nfree = 0;
		struct ht_elf_syms *e;
		char *obj_copy = NULL;

		if (is_dynamic_linker(objects[o].path))
			continue;
		if (stat(objects[o].open_path, &obj_st))
			continue;
		e = elf_syms__open(objects[o].open_path);
		if (!e) {
			log_debug("probes: cannot read '%s': %s", objects[o].path, strerror(errno));
			continue;
		}
		for (size_t s = 0; s < NSYMS; s++) {
			struct site *st = &p->sites[p->nsites];

			if (bound[s] || (rate && is_free_fn(syms[s].fn)) ||
			    !elf_syms__defines(e, syms[s].sym))
				continue;
			err = elf_syms__probe_site_args(e, syms[s].sym, args_read(syms[s].fn), &st->ps);
			if (err) {
				log_warn("probes: cannot probe '%s' in '%s': %s", syms[s].sym,
					 objects[o].path, strerror(-err));
				err = 0;
				continue;
			}
			if (!obj_copy) {
				if (!(obj_copy = strdup(objects[o].path))) {
					err = -ENOMEM;
					break;
				}
				p->objects[p->nobjects++] = obj_copy;
			}
			bound[s] = true;
			if (same_address_bound(p, obj_copy, st->ps.file_offset)) {
				/* an alias (glibc's memalign is aligned_alloc): one probe serves both */
				continue;
			}
			st->object = obj_copy;
			st->dev = obj_st.st_dev;
			st->ino = obj_st.st_ino;
			st->sym = s;
			p->nsites++;
			if (is_free_fn(syms[s].fn))
				freeg[nfree++] = st;
			else
				entry[nentry++] = st;
			if (!st->ps.emulated)
				log_info("probes: '%s' in '%s' can only be probed on a single-stepped "
					 "instruction (%s): each call costs ~10 us more",
					 syms[s].sym, objects[o].path, st->ps.insn);
		}
		elf_syms__close(e);
		if (err)
			break;
		if (rate)
			err = attach_group(p, skel->progs.ht_rate_entry, false, pid, objects[o].open_path,
					   entry, nentry);
		else if ((err = attach_group(p, skel->progs.ht_alloc_entry, false, pid,
					     objects[o].open_path, entry, nentry)) ||
			 (err = attach_group(p, skel->progs.ht_alloc_return, true, pid,
					     objects[o].open_path, entry, nentry)))
			;
		else
			err = attach_group(p, skel->progs.ht_free_entry, false, pid,
					   objects[o].open_path, freeg, nfree);
		if (err)
			break;
	}
	if (!err && !p->nsites)
		err = -ENOENT; /* the caller says so, unless a Go runtime was found instead */
	if (err) {
		probes__free(p);
		return err;
	}
	*out = p;
	return 0;
}

size_t probes__lookup_order(const struct ht_modmap *map, const char *exe,
			    struct ht_object *out)
{
	size_t n = 0;

	for (int pass = 0; pass < 3; pass++) {
		for (size_t i = 0; i < map->n; i++) {
			const struct ht_module *m = &map->mods[i];
			const char *base = strrchr(m->path, '/');
			bool is_exe = exe && !strcmp(m->path, exe);
			bool libc = !strncmp(base ? base + 1 : m->path, "libc.so", 7);

			if ((pass == 0 && is_exe) || (pass == 1 && !is_exe && !libc) ||
			    (pass == 2 && libc))
				out[n++] = (struct ht_object){ m->path, m->open_path };
		}
	}
	return n;
}

void probes__free(struct ht_probes *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nlinks; i++)
		bpf_link__destroy(p->links[i]);
	free(p->links);
	for (size_t i = 0; i < p->nobjects; i++)
		free(p->objects[i]);
	free(p->objects);
	free(p);
}

bool probes__inside_allocator(const struct ht_probes *p, uint64_t dev, uint64_t ino,
			      uint64_t vaddr)
{
	for (size_t i = 0; p && i < p->nsites; i++) {
		const struct site *s = &p->sites[i];

		if (!is_free_fn(syms[s->sym].fn) && vaddr >= s->ps.sym_vaddr &&
		    vaddr < s->ps.sym_vaddr + s->ps.sym_size && s->dev == dev && s->ino == ino)
			return true;
	}
	return false;
}

size_t probes__count(const struct ht_probes *p, size_t *slow)
{
	size_t ns = 0;

	for (size_t i = 0; i < p->nsites; i++)
		ns += !p->sites[i].ps.emulated;
	if (slow)
		*slow = ns;
	return p->nsites;
}

void probes__describe(const struct ht_probes *p)
{
	for (size_t i = 0; p && i < p->nsites; i++) {
		const struct site *s = &p->sites[i];

		log_info("probe %-34s %s+0x%lx (+%u: %s%s)", syms[s->sym].sym, s->object,
			 (unsigned long)s->ps.file_offset, s->ps.insn_offset, s->ps.insn,
			 s->ps.emulated ? "" : ", single-stepped");
	}
}

/* PT_INTERP of an executable, or "" for a static one. */
static int read_interp(const char *exe, char *buf, size_t len)
{
	int fd = open(exe, O_RDONLY | O_CLOEXEC), err = 0;
	size_t nph;
	Elf *elf;

	buf[0] = 0;
	if (fd < 0)
		return -errno;
	elf_version(EV_CURRENT);
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (!elf || elf_kind(elf) != ELF_K_ELF || elf_getphdrnum(elf, &nph)) {
		err = -ENOEXEC;
		goto out;
	}
	for (size_t i = 0; i < nph; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, i, &ph) || ph.p_type != PT_INTERP)
			continue;
		if (ph.p_filesz >= len || pread(fd, buf, ph.p_filesz, ph.p_offset) != (ssize_t)ph.p_filesz) {
			err = -EINVAL;
			break;
		}
		buf[ph.p_filesz] = 0;
		break;
	}
out:
	elf_end(elf);
	close(fd);
	return err;
}

static int push_path(char ***v, size_t *n, const char *s)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));

	if (!nv)
		return -ENOMEM;
	*v = nv;
	if (!(nv[*n] = strdup(s)))
		return -ENOMEM;
	(*n)++;
	return 0;
}

int probes__command_objects(const char *exe, char ***out, size_t *n)
{
	char interp[4096], line[8192];
	int pipefd[2], status, err;
	FILE *f;
	pid_t child;

	*out = NULL;
	*n = 0;
	if ((err = push_path(out, n, exe)))
		return err;
	if ((err = read_interp(exe, interp, sizeof(interp))))
		return err;
	if (!interp[0])
		return 0; /* static: the executable carries its allocator */
	/* The dynamic linker in list mode maps the libraries without running the program and
	 * prints them in load order, which is also the symbol lookup order. */
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	child = fork();
	if (child < 0) {
		err = -errno;
		close(pipefd[0]);
		close(pipefd[1]);
		return err;
	}
	if (child == 0) {
		int devnull = open("/dev/null", O_RDWR);

		dup2(pipefd[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		execl(interp, interp, "--list", exe, (char *)NULL);
		_exit(127);
	}
	close(pipefd[1]);
	f = fdopen(pipefd[0], "r");
	while (f && fgets(line, sizeof(line), f)) {
		char *arrow = strstr(line, "=> "), *path = arrow ? arrow + 3 : line, *end;

		while (*path == ' ' || *path == '\t')
			path++;
		if (*path != '/')
			continue; /* "linux-vdso.so.1 (0x...)", "not found" */
		end = strstr(path, " (0x");
		if (end)
			*end = 0;
		path[strcspn(path, "\n")] = 0;
		if (strcmp(path, exe) && (err = push_path(out, n, path)))
			break;
	}
	if (f)
		fclose(f);
	else
		close(pipefd[0]);
	waitpid(child, &status, 0);
	return err;
}
