#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <capstone/capstone.h>

#include "elf_syms.h"
#include "gobin.h"
#include "goprobes.h"
#include "heaptap.h"
#include "heaptap.skel.h"
#include "log.h"

/* Sites per executable: profilealloc, freeSpecial, two GC functions, or mallocgc and up to
 * ~70 size-class functions (Go 1.26 with sizespecializedmalloc has 66). */
#define MAX_SITES 128

struct go_probe {
	char name[64];
	enum ht_fn fn;
	struct ht_go_site site;
};

struct ht_goprobes {
	struct bpf_link *links[4];
	size_t nlinks;
	struct go_probe probes[MAX_SITES];
	size_t nprobes;
	char version[48];
	struct ht_go_layout layout;
	bool exact;
	uint64_t dev, ino;
	uint64_t mallocgc_lo, mallocgc_hi;
	char *path;
};

const char *goprobes__fn_name(uint16_t fn)
{
	switch (HT_FN_ID(fn)) {
	case HT_FN_GO_PROFILEALLOC: return "go (sampled)";
	case HT_FN_GO_MALLOCGC: return "go";
	case HT_FN_GO_FREESPECIAL: return "go free (sampled)";
	case HT_FN_GO_GC_START: return "go gc start";
	case HT_FN_GO_GC_MARK_DONE: return "go gc mark done";
	}
	return "?";
}

/* cmp REG, [r14 + 0x10]: the goroutine's stack guard (g.stackguard0) against the stack
 * pointer or against it minus the frame size. */
static bool is_stack_check(const cs_insn *in)
{
	const cs_x86 *x = &in->detail->x86;

	return in->id == X86_INS_CMP && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
	       x->operands[1].type == X86_OP_MEM && x->operands[1].mem.base == X86_REG_R14 &&
	       x->operands[1].mem.index == X86_REG_INVALID && x->operands[1].mem.disp == 0x10;
}

int goprobes__site(const char *path, const struct ht_gobin *g, const char *name,
		   struct ht_go_site *out)
{
	uint64_t vaddr, size, foff;
	uint8_t code[96];
	cs_insn *in = NULL;
	size_t n, at = 0;
	ssize_t got;
	int fd, err = 0;
	csh cs;

	memset(out, 0, sizeof(*out));
	if (gobin__lookup(g, name, &vaddr, &size) || gobin__file_offset(g, vaddr, &foff))
		return -ENOENT;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return -errno;
	got = pread(fd, code, size && size < sizeof(code) ? size : sizeof(code), (off_t)foff);
	close(fd);
	if (got <= 0)
		return -EINVAL;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -ENOMEM;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, (size_t)got, vaddr, 8, &in);
	if (!n) {
		err = -EINVAL;
		goto out;
	}
	/* The prologue: [lea r12,[rsp-N]] cmp rsp|r12,[r14+0x10]; jbe morestack (big frames add
	 * a sub/jb pair first).  The branch target re-enters at the function's entry after
	 * growing the stack, so the instruction after the branch runs once per call. */
	for (size_t i = 0; i + 2 < n && i < 5; i++) {
		if (is_stack_check(&in[i]) && (in[i + 1].id == X86_INS_JBE || in[i + 1].id == X86_INS_JA)) {
			at = i + 2;
			break;
		}
	}
	out->vaddr = vaddr;
	out->size = size;
	out->insn_offset = (uint32_t)(in[at].address - vaddr);
	out->emulated = elf_syms__kernel_emulates(in[at].bytes, in[at].size);
	{
		/* capstone's fields are longer than ours: truncation is fine for a log line */
		int k = snprintf(out->insn, sizeof(out->insn), "%.15s ", in[at].mnemonic);

		if (k > 0 && (size_t)k < sizeof(out->insn))
			snprintf(out->insn + k, sizeof(out->insn) - (size_t)k, "%.24s", in[at].op_str);
	}
out:
	cs_free(in, n);
	cs_close(&cs);
	return err;
}

static int add_probe(struct ht_goprobes *gp, const char *path, const struct ht_gobin *g,
		     const char *name, enum ht_fn fn)
{
	struct go_probe *p;
	int err;

	if (gp->nprobes == MAX_SITES)
		return -E2BIG;
	p = &gp->probes[gp->nprobes];
	if ((err = goprobes__site(path, g, name, &p->site)))
		return err;
	snprintf(p->name, sizeof(p->name), "%s", name);
	p->fn = fn;
	gp->nprobes++;
	return 0;
}

/* The size-class entry points of Go 1.26+ (sizespecializedmalloc), called by compiled code
 * directly for small new(T); not their *SlowPath helpers (called from inside them). */
static int add_size_class(const char *name, uint64_t addr, uint64_t size, void *arg)
{
	void **a = arg;
	struct ht_goprobes *gp = a[0];
	const char *rest = name + strlen("runtime.mallocgc");

	(void)addr;
	(void)size;
	if (strstr(rest, "SlowPath") || !(strstr(rest, "SC") || !strncmp(rest, "TinySize", 8)))
		return 0;
	return add_probe(gp, a[1], a[2], name, HT_FN_GO_MALLOCGC);
}

/* One uprobe_multi link for prog at the probes with fn in fns[0..nfns). */
static int link_group(struct ht_goprobes *gp, struct bpf_program *prog, pid_t pid,
		      const char *open_path, const enum ht_fn *fns, size_t nfns)
{
	unsigned long offsets[MAX_SITES];
	__u64 cookies[MAX_SITES];
	size_t n = 0;
	struct bpf_link *l;
	int fd = open(open_path, O_RDONLY | O_CLOEXEC);
	struct ht_gobin *g;

	if (fd < 0)
		return -errno;
	close(fd);
	g = gobin__open(open_path);
	if (!g)
		return -errno;
	for (size_t i = 0; i < gp->nprobes; i++) {
		const struct go_probe *p = &gp->probes[i];
		uint64_t va = p->site.vaddr + p->site.insn_offset, off;
		bool want = false;

		for (size_t k = 0; k < nfns; k++)
			want |= p->fn == fns[k];
		if (!want || gobin__file_offset(g, va, &off))
			continue;
		offsets[n] = off;
		cookies[n] = (__u64)p->fn | (__u64)i << 8 | va << 16;
		n++;
	}
	gobin__close(g);
	if (!n)
		return 0;
	LIBBPF_OPTS(bpf_uprobe_multi_opts, o, .offsets = offsets, .cookies = cookies, .cnt = n);
	l = bpf_program__attach_uprobe_multi(prog, pid, open_path, NULL, &o);
	if (!l) {
		int err = -errno;

		log_error("cannot attach Go probes in '%s': %s", gp->path, strerror(-err));
		return err;
	}
	gp->links[gp->nlinks++] = l;
	return 0;
}

static int write_proc_config(struct heaptap *skel, const struct ht_goprobes *gp)
{
	const struct ht_go_layout *l = &gp->layout;
	struct ht_go_proc c = { .rate_vaddr = l->mem_profile_rate,
				.mallocgc_lo = gp->mallocgc_lo, .mallocgc_hi = gp->mallocgc_hi };
	/* the kernel's dev_t, as BPF reads it from the inode's superblock */
	struct ht_go_key key = { .ino = gp->ino,
				 .dev = (__u32)(major(gp->dev) << 20 | minor(gp->dev)) };

	c.special_kind_off = l->special_kind_off == GOLAYOUT_UNKNOWN ? 0 : l->special_kind_off;
	c.kind_profile = l->special_kind_off == GOLAYOUT_UNKNOWN ? HT_GO_NO_READ : l->kind_profile;
	for (int i = 0; i < HT_GO_READS; i++)
		c.ctl_off[i] = HT_GO_NO_READ;
	/* startCycle's receiver is &gcController: heap figures need no symbol. */
	c.ctl_off[0] = l->heap_live_off;
	c.ctl_off[1] = l->heap_marked_off;
	if (golayout__gc_known(l)) {
		c.abs_vaddr[0] = l->memstats + l->numgc_off;
		c.abs_vaddr[1] = l->memstats + l->pause_total_off;
	}
	return bpf_map__update_elem(skel->maps.ht_go_procs, &key, sizeof(key), &c, sizeof(c),
				    BPF_ANY)
		       ? -errno
		       : 0;
}

int goprobes__attach(struct heaptap *skel, pid_t pid, const char *path, const char *open_path,
		     bool exact, bool rate, struct ht_goprobes **out)
{
	struct ht_gobin *g = gobin__open(open_path);
	struct ht_goprobes *gp = NULL;
	int err = 0, major = 0, minor = 0;
	struct stat st;

	*out = NULL;
	if (!g)
		return -ENOTSUP;
	if (!gobin__is_go(g)) {
		gobin__close(g);
		return -ENOTSUP;
	}
	if (gobin__version(g, &major, &minor, NULL) == 0 && (major != 1 || minor < 19)) {
		log_error("%s: built with %s; heaptap supports Go 1.19 and later", path,
			  gobin__version_string(g));
		gobin__close(g);
		return -EPROTONOSUPPORT;
	}
	if (!strcmp(gobin__symbol_source(g), "none")) {
		log_error("%s: a Go binary without a symbol table or a readable .gopclntab: cannot "
			  "find the runtime's functions", path);
		gobin__close(g);
		return -ENOEXEC;
	}
	gp = calloc(1, sizeof(*gp));
	if (!gp || !(gp->path = strdup(path))) {
		err = -ENOMEM;
		goto fail;
	}
	snprintf(gp->version, sizeof(gp->version), "%s",
		 gobin__version_string(g) ? gobin__version_string(g) : "go (version unknown)");
	gp->exact = exact;
	if (!stat(open_path, &st)) {
		gp->dev = st.st_dev;
		gp->ino = st.st_ino;
	}
	golayout__read(open_path, g, &gp->layout);
	if (exact) {
		void *a[3] = { gp, (void *)open_path, g };

		if ((err = add_probe(gp, open_path, g, "runtime.mallocgc", HT_FN_GO_MALLOCGC)) ||
		    (err = gobin__for_each_func(g, "runtime.mallocgc", add_size_class, a)))
			goto missing;
	} else {
		if ((err = add_probe(gp, open_path, g, "runtime.profilealloc", HT_FN_GO_PROFILEALLOC)))
			goto missing;
		if (!rate && (err = add_probe(gp, open_path, g, "runtime.freeSpecial",
					      HT_FN_GO_FREESPECIAL)))
			goto missing;
	}
	if ((err = add_probe(gp, open_path, g, "runtime.(*gcControllerState).startCycle",
			     HT_FN_GO_GC_START)) ||
	    (err = add_probe(gp, open_path, g, "runtime.gcMarkTermination", HT_FN_GO_GC_MARK_DONE)))
		goto missing;
	{
		uint64_t mg, mgsize;

		if (!gobin__lookup(g, "runtime.mallocgc", &mg, &mgsize)) {
			gp->mallocgc_lo = mg;
			gp->mallocgc_hi = mg + mgsize;
		}
	}
	if ((err = write_proc_config(skel, gp))) {
		log_error("cannot configure the Go probes: %s", strerror(-err));
		goto fail;
	}
	gobin__close(g);
	g = NULL;
	if ((err = link_group(gp, skel->progs.ht_go_alloc, pid, open_path,
			      (const enum ht_fn[]){ HT_FN_GO_PROFILEALLOC, HT_FN_GO_MALLOCGC }, 2)) ||
	    (err = link_group(gp, skel->progs.ht_go_free, pid, open_path,
			      (const enum ht_fn[]){ HT_FN_GO_FREESPECIAL }, 1)) ||
	    (err = link_group(gp, skel->progs.ht_go_gc, pid, open_path,
			      (const enum ht_fn[]){ HT_FN_GO_GC_START, HT_FN_GO_GC_MARK_DONE }, 2)))
		goto fail;
	*out = gp;
	return 0;
missing:
	log_error("%s (%s): cannot probe the Go runtime: %s", path, gp->version,
		  err == -ENOENT ? "a runtime function heaptap needs is missing" : strerror(-err));
fail:
	gobin__close(g);
	goprobes__free(gp);
	return err;
}

void goprobes__free(struct ht_goprobes *gp)
{
	if (!gp)
		return;
	for (size_t i = 0; i < gp->nlinks; i++)
		bpf_link__destroy(gp->links[i]);
	free(gp->path);
	free(gp);
}

size_t goprobes__count(const struct ht_goprobes *gp, size_t *slow)
{
	size_t s = 0;

	for (size_t i = 0; gp && i < gp->nprobes; i++)
		s += !gp->probes[i].site.emulated;
	if (slow)
		*slow = s;
	return gp ? gp->nprobes : 0;
}

void goprobes__describe(const struct ht_goprobes *gp)
{
	for (size_t i = 0; gp && i < gp->nprobes; i++) {
		const struct go_probe *p = &gp->probes[i];

		log_info("probe %-34s %s+0x%lx (+%u: %s%s)", p->name, gp->path,
			 (unsigned long)(p->site.vaddr + p->site.insn_offset), p->site.insn_offset,
			 p->site.insn, p->site.emulated ? "" : ", single-stepped");
	}
}

const char *goprobes__version(const struct ht_goprobes *gp) { return gp->version; }
const struct ht_go_layout *goprobes__layout(const struct ht_goprobes *gp) { return &gp->layout; }
bool goprobes__exact(const struct ht_goprobes *gp) { return gp->exact; }

void goprobes__identity(const struct ht_goprobes *gp, uint64_t *dev, uint64_t *ino)
{
	*dev = gp->dev;
	*ino = gp->ino;
}
