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

/*
 * A later site.  On Go 1.19 the instruction after the stack check is `sub rsp, N`, which
 * the kernel single-steps (~10 us a trap, DESIGN.md §3); a few instructions on there is
 * often one it emulates (an inline-mark nop, a jcc).  The probe may move there when
 *   - nothing on the way branches, and no jump in the function lands on the way or on the
 *     site (it then runs exactly once per call, like the instruction it replaces);
 *   - nothing on the way writes the argument registers the Go programs read (RAX, RBX,
 *     RCX, RDI), or memory off the stack (the GC probe reads the runtime's state: stores
 *     to the new frame or to the arguments' spill slots are fine);
 *   - the stack and frame pointers change only by the frame setup we understand, so the
 *     BPF side still finds the caller: `sub rsp, N` moves the return address to
 *     [rsp + N], and `mov [rsp+K], rbp; lea rbp, [rsp+K]` with K = N - 8 builds the
 *     function's frame record, after which %rbp is no longer the caller's frame.
 * Anything else keeps the site after the stack check (correct, just slow).
 */
struct go_frame {
	uint32_t ret_off; /* the return address is at [rsp + ret_off] */
	bool rbp_saved;   /* the caller's %rbp is stored right below it */
	bool frame_set;   /* and %rbp points there */
};

#define SCAN_INSNS 12             /* instructions looked at past the stack check */
#define MAX_FUNC_BYTES (64 << 10) /* larger functions are not decoded whole: site kept */

/* Registers that must hold at the site what they held after the stack check: the ones the Go
 * programs read, and those the frame setup alone may change. */
static bool is_kept_reg(unsigned int r)
{
	switch (r) {
	case X86_REG_RAX: case X86_REG_EAX: case X86_REG_AX: case X86_REG_AL: case X86_REG_AH:
	case X86_REG_RBX: case X86_REG_EBX: case X86_REG_BX: case X86_REG_BL: case X86_REG_BH:
	case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: case X86_REG_CH:
	case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL:
	case X86_REG_RSP: case X86_REG_ESP: case X86_REG_SP: case X86_REG_SPL:
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL:
	case X86_REG_RIP: case X86_REG_FS: case X86_REG_GS: case X86_REG_SS:
	case X86_REG_CS: case X86_REG_DS: case X86_REG_ES:
		return true;
	}
	return false;
}

static bool is_rsp_slot(const cs_x86_op *op)
{
	return op->type == X86_OP_MEM && op->mem.base == X86_REG_RSP &&
	       op->mem.index == X86_REG_INVALID && op->mem.segment == X86_REG_INVALID;
}

/* Whether the site may move past instruction in; updates f. */
static bool pass_insn(csh cs, const cs_insn *in, struct go_frame *f)
{
	static const uint8_t groups[] = { CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT,
					  CS_GRP_IRET, CS_GRP_PRIVILEGE, CS_GRP_BRANCH_RELATIVE };
	const cs_x86 *x = &in->detail->x86;
	const cs_x86_op *a = &x->operands[0], *b = &x->operands[1];
	cs_regs rd, wr;
	int64_t slots = (int64_t)f->ret_off - 8; /* the saved %rbp, then the return address */
	uint8_t nrd, nwr;

	for (size_t i = 0; i < sizeof(groups); i++)
		if (cs_insn_group(cs, in, groups[i]))
			return false;
	if (x->prefix[0])
		return false; /* lock, rep: memory and rdi/rcx behind capstone's back */
	/* The frame setup: sub rsp, N; mov [rsp+N-8], rbp; lea rbp, [rsp+N-8]. */
	if (x->op_count == 2 && in->id == X86_INS_SUB && a->type == X86_OP_REG &&
	    a->reg == X86_REG_RSP && b->type == X86_OP_IMM && b->imm > 0 && !(b->imm & 7) &&
	    b->imm <= 8 * HT_GO_MAX_RET_SLOT && !f->rbp_saved) {
		f->ret_off += (uint32_t)b->imm;
		return true;
	}
	if (x->op_count == 2 && in->id == X86_INS_MOV && is_rsp_slot(a) && a->size == 8 &&
	    b->type == X86_OP_REG && b->reg == X86_REG_RBP && !f->rbp_saved &&
	    a->mem.disp + 8 == (int64_t)f->ret_off) {
		f->rbp_saved = true;
		return true;
	}
	if (x->op_count == 2 && in->id == X86_INS_LEA && a->type == X86_OP_REG &&
	    a->reg == X86_REG_RBP && is_rsp_slot(b) && f->rbp_saved && !f->frame_set &&
	    b->mem.disp + 8 == (int64_t)f->ret_off) {
		f->frame_set = true;
		return true;
	}
	if (cs_regs_access(cs, in, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return false;
	for (uint8_t i = 0; i < nwr; i++)
		if (is_kept_reg(wr[i]))
			return false;
	for (uint8_t i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		/* access 0: capstone does not know, so a store */
		if (op->type != X86_OP_MEM || in->id == X86_INS_LEA ||
		    (op->access && !(op->access & CS_AC_WRITE)))
			continue;
		/* a store: to the stack only, never over the saved %rbp or the return address */
		if (!is_rsp_slot(op) || !op->size ||
		    (op->mem.disp + op->size > slots && op->mem.disp < slots + 16))
			return false;
	}
	return true;
}

/* True if a direct jump or call in in[0..n) lands in [lo, hi], or if the function has an
 * indirect jump (a jump table could land anywhere). */
static bool entered_within(csh cs, const cs_insn *in, size_t n, uint64_t lo, uint64_t hi)
{
	for (size_t i = 0; i < n; i++) {
		const cs_x86 *x = &in[i].detail->x86;
		bool jump = cs_insn_group(cs, &in[i], CS_GRP_JUMP);

		if (!jump && !cs_insn_group(cs, &in[i], CS_GRP_CALL))
			continue;
		for (uint8_t k = 0; k < x->op_count; k++) {
			uint64_t t = (uint64_t)x->operands[k].imm;

			if (x->operands[k].type != X86_OP_IMM) {
				if (jump)
					return true;
				continue;
			}
			if (t >= lo && t <= hi)
				return true;
		}
	}
	return false;
}

/* The index of the first emulated instruction the site may move to from in[at] (whole:
 * in[0..n) is the whole function), with the frame there in *f; at itself if none. */
static size_t later_site(csh cs, const cs_insn *in, size_t n, size_t at, bool whole,
			 struct go_frame *f)
{
	struct go_frame w = { 0 };

	memset(f, 0, sizeof(*f));
	if (!whole || elf_syms__kernel_emulates(in[at].bytes, in[at].size))
		return at;
	for (size_t i = at; i < n && i < at + SCAN_INSNS; i++) {
		if (elf_syms__kernel_emulates(in[i].bytes, in[i].size)) {
			/* the cookie holds the return address's slot in 7 bits */
			if (w.ret_off / 8 > HT_GO_MAX_RET_SLOT ||
			    entered_within(cs, in, n, in[at].address, in[i].address))
				return at;
			*f = w;
			return i;
		}
		if (!pass_insn(cs, &in[i], &w))
			return at;
	}
	return at;
}

int goprobes__site(const char *path, const struct ht_gobin *g, const char *name,
		   struct ht_go_site *out)
{
	uint64_t vaddr, size, foff, len, decoded = 0;
	uint8_t *code = NULL;
	cs_insn *in = NULL;
	size_t n = 0, at = 0;
	struct go_frame f;
	bool whole;
	ssize_t got;
	int fd, err = 0;
	csh cs;

	memset(out, 0, sizeof(*out));
	if (gobin__lookup(g, name, &vaddr, &size) || gobin__file_offset(g, vaddr, &foff))
		return -ENOENT;
	/* The whole function, to see every jump into its prologue; else its first bytes. */
	whole = size && size <= MAX_FUNC_BYTES;
	len = whole ? size : size && size < 96 ? size : 96;
	if (!(code = malloc(len)))
		return -ENOMEM;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		err = -errno;
		free(code);
		return err;
	}
	got = pread(fd, code, len, (off_t)foff);
	close(fd);
	if (got <= 0) {
		free(code);
		return -EINVAL;
	}
	whole &= (uint64_t)got == len;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		free(code);
		return -ENOMEM;
	}
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, (size_t)got, vaddr, 0, &in);
	if (!n) {
		err = -EINVAL;
		goto out;
	}
	/* capstone stops at the first byte it cannot decode: then jumps may be unseen */
	for (size_t i = 0; i < n; i++)
		decoded += in[i].size;
	whole &= decoded == len;
	/* The prologue: [lea r12,[rsp-N]] cmp rsp|r12,[r14+0x10]; jbe morestack (big frames add
	 * a sub/jb pair first).  The branch target re-enters at the function's entry after
	 * growing the stack, so the instruction after the branch runs once per call. */
	for (size_t i = 0; i + 2 < n && i < 5; i++) {
		if (is_stack_check(&in[i]) && (in[i + 1].id == X86_INS_JBE || in[i + 1].id == X86_INS_JA)) {
			at = i + 2;
			break;
		}
	}
	at = later_site(cs, in, n, at, whole, &f);
	out->vaddr = vaddr;
	out->size = size;
	out->insn_offset = (uint32_t)(in[at].address - vaddr);
	out->emulated = elf_syms__kernel_emulates(in[at].bytes, in[at].size);
	out->ret_off = f.ret_off;
	out->frame_set = f.frame_set;
	{
		/* capstone's fields are longer than ours: truncation is fine for a log line */
		int k = snprintf(out->insn, sizeof(out->insn), "%.15s%s", in[at].mnemonic,
				 in[at].op_str[0] ? " " : "");

		if (k > 0 && (size_t)k < sizeof(out->insn))
			snprintf(out->insn + k, sizeof(out->insn) - (size_t)k, "%.24s", in[at].op_str);
	}
out:
	cs_free(in, n);
	cs_close(&cs);
	free(code);
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
		if (va > HT_GO_MAX_VADDR) {
			log_error("cannot probe %s in '%s': address 0x%lx is beyond what a probe's "
				  "cookie holds", p->name, gp->path, (unsigned long)va);
			gobin__close(g);
			return -ERANGE;
		}
		offsets[n] = off;
		cookies[n] = HT_COOKIE_GO((__u64)p->fn | (__u64)i << 8, p->site.ret_off / 8,
					  p->site.frame_set, va);
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
		char frame[64] = "";

		if (p->site.ret_off)
			snprintf(frame, sizeof(frame),
				 ", past the frame setup: caller at [rsp+0x%x]", p->site.ret_off);
		log_info("probe %-34s %s+0x%lx (+%u: %s%s%s)", p->name, gp->path,
			 (unsigned long)(p->site.vaddr + p->site.insn_offset), p->site.insn_offset,
			 p->site.insn, p->site.emulated ? "" : ", single-stepped", frame);
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
