// SPDX-License-Identifier: GPL-2.0
/*
 * unwind: user stacks from stack copies, with libdwfl's CFI unwinder.
 *
 * How this works.  With --unwind dwarf|auto the probe sends, with each ALLOC record, the
 * registers CFI needs (rip, rsp, rbp, rbx, r12-r15) and the top of the user stack (8 KiB by
 * default, bpf/heaptap.bpf.c).  In the return probe these are the caller's registers right
 * after the call returned: rip is the return address, so the first frame is already the
 * direct caller; at the entry probe (rate mode) rip is inside the allocator, whose own
 * frame is unwound like any other and then dropped.
 *
 * Per process we keep a libdwfl session over its module map (the symbolizer's, built from
 * the same map, so the files are opened and checked the same way), with our own thread
 * callbacks attached: set_initial_registers hands libdwfl the copied registers, and
 * memory_read serves words from the copied bytes only.  CFI itself comes from the module
 * files (.eh_frame, else .debug_frame), read by libdwfl.  The session is rebuilt when the
 * process's map changes (a signature over its modules differs).
 *
 * The fast path.  libdwfl re-reads and re-interprets the CFI of every frame of every stack
 * (~1 us a frame here).  Nearly every row of x86-64 CFI says "CFA = %rsp or %rbp + k, the
 * return address and the callee-saved registers saved at CFA + k or unchanged", so we read
 * each code address's row once through libdw, keep it compiled (struct cfi_row), and apply
 * it ourselves with the same reads and checks (~0.1 us a frame).  A stack that meets any
 * other row (a signal frame, a DWARF expression) is unwound by libdwfl from the start.
 *
 * Nothing is guessed.  A stack is "complete" only when the unwinder reached a frame whose
 * CFI says there is no caller (_start, clone3).  It is truncated when: a read falls outside
 * the copy (libdwfl then ends the walk as if the stack ended: we notice through
 * memory_read); the next frame would come from libdwfl's frame-pointer fallback instead of
 * CFI (code without CFI, or outside every module: the fallback guesses, we stop); a frame
 * does not lie above the previous one; the depth cap.  The frames before the cut are kept.
 *
 * Auto mode: a frame-pointer chain is right as long as every function it passes through
 * (every frame but the outermost) set up %rbp as its frame pointer; the outermost frame's
 * code only decides whether the chain went on.  The probe walks the chain; the chain holds
 * when every frame but the last lies in an object whose code keeps frame pointers
 * (fp_detect.c, decided once per object, cached by build-id).  A chain of one frame that
 * the depth cap did not cut never holds: nothing real is called from the root, so the walk
 * broke at once.  The probe applies the rule itself, from the code ranges we give it per
 * process (map ht_fp_code), and copies the stack only when the chain does not hold, or
 * runs through code we have not classified yet; for such records we apply the rule again,
 * classify what is new, update ht_fp_code, and keep the chain or unwind the copy.  The
 * session classifies the objects it is about to probe before tracing starts, and fills
 * ht_fp_code for a running process at once, so records rarely come with a copy needlessly.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "fp_detect.h"
#include "log.h"
#include "procs.h"
#include "symbolize.h"
#include "u64map.h"
#include "unwind.h"

#define MAX_PROCS 16     /* processes with a libdwfl session at once (least recently used go) */
#define FP_SAMPLES 256   /* function prologues sampled per object */
#define DWARF_REG_RBX 3  /* x86-64 DWARF register numbers */
#define DWARF_REG_RBP 6
#define DWARF_REG_RSP 7
#define DWARF_REG_R12 12
#define DWARF_REG_RIP 16
#define ENTRY_CODE_BYTES 64 /* ld.so's _start and _dl_start_user, up to the call _dl_init */

/* Verdicts in the caches (0 is "absent" in u64map lookups, so 1 and 2). */
#define V_NO_FP 1
#define V_FP 2

/*
 * One row of CFI compiled for the fast path: the caller's CFA is cfa_reg + cfa_off, and
 * its return address and callee-saved registers (rip, rbp, rbx, r12-r15, in that order)
 * were each saved at CFA + saved[i], or are unchanged (SAVED_SAME) or lost (SAVED_UNDEF).
 */
#define ROW_NREGS 7
#define SAVED_SAME INT16_MAX
#define SAVED_UNDEF INT16_MIN

enum row_kind {
	ROW_NOCFI, /* no CFI covers the address */
	ROW_FRAME, /* a row the fast path applies */
	ROW_END,   /* the return address is undefined: the outermost frame */
	ROW_SLOW,  /* a row only libdwfl applies (signal frame, DWARF expression) */
};

struct cfi_row {
	int32_t cfa_off;
	uint8_t cfa_reg; /* HT_REG_RSP or HT_REG_RBP */
	uint8_t kind;    /* enum row_kind */
	int16_t saved[ROW_NREGS];
};

/* Our registers for the rows' saved[] order. */
static const int row_regs[ROW_NREGS] = { HT_REG_RIP, HT_REG_RBP, HT_REG_RBX, HT_REG_R12,
					 HT_REG_R13, HT_REG_R14, HT_REG_R15 };

struct proc_state {
	int pid;
	uint64_t map_sig;          /* signature of the map the session was built from */
	struct ht_symbolizer *sym; /* owns the libdwfl session */
	Dwfl *dwfl;                /* borrowed from sym; NULL if it could not be set up */
	struct ht_u64map row_idx;  /* code address -> index in rows */
	struct cfi_row *rows;      /* compiled CFI rows */
	size_t nrows, rows_cap;
	uint64_t last_use;
	uint64_t pushed_gen, pushed_sig; /* auto: what ht_fp_code was last written from */
	/* The record being unwound, for the callbacks. */
	const struct ht_unwind_input *in;
	bool oob; /* a read fell outside the copied stack */
};

struct ht_unwinder {
	enum ht_unwind_mode mode;
	uint32_t max_depth;
	struct proc_state *procs[MAX_PROCS];
	uint64_t tick;
	struct ht_u64map obj_verdict; /* build-id (or dev+inode) hash -> V_* */
	struct ht_u64map map_verdict; /* (start, dev, inode) hash of a mapped module -> V_* */
	uint64_t verdict_gen;         /* bumped when a mapped module is found to keep FP */
	int fp_code_fd;               /* BPF map ht_fp_code, or -1 */
	bool libdwfl_only;            /* no fast path (tests compare the two) */
	struct ht_unwind_stats st;
};

enum stop {
	STOP_NONE,
	STOP_END,      /* CFI says this frame is the outermost: complete */
	STOP_ROOT,     /* no CFI, but this frame is the process's entry code: complete */
	STOP_COPY,     /* the next frame lies beyond the copied stack */
	STOP_DEPTH,
	STOP_CFI,      /* the next frame would not come from CFI */
	STOP_UNMAPPED, /* a frame outside every known module */
	STOP_ERROR,
};

struct walk {
	struct proc_state *ps;
	const struct ht_modmap *map;
	uint64_t *out;
	uint32_t n, max;
	uint32_t seen;   /* frames visited, dropped ones included */
	bool skip_first; /* the first frame is the allocator's own (entry probe) */
	uint64_t last_sp;
	enum stop why;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static uint64_t nonzero(uint64_t h)
{
	return h ? h : 1;
}

static uint64_t map_signature(const struct ht_modmap *m)
{
	uint64_t h = u64_hash(m->n + 1);

	for (size_t i = 0; i < m->n; i++) {
		const struct ht_module *mod = &m->mods[i];

		h = u64_hash(h ^ mod->start) ^ u64_hash(mod->end ^ mod->bias);
		h = u64_hash(h ^ mod->inode) ^ mod->dev;
	}
	return h;
}

/* ---- libdwfl thread callbacks: one "thread", the record being unwound ---- */

static pid_t cb_next_thread(Dwfl *dwfl, void *arg, void **thread_argp)
{
	(void)dwfl;
	(void)arg;
	(void)thread_argp;
	return 0; /* never iterated: dwfl_getthread_frames asks get_thread */
}

static bool cb_get_thread(Dwfl *dwfl, pid_t tid, void *arg, void **thread_argp)
{
	(void)dwfl;
	(void)tid;
	*thread_argp = arg;
	return true;
}

static bool cb_memory_read(Dwfl *dwfl, Dwarf_Addr addr, Dwarf_Word *result, void *arg)
{
	struct proc_state *ps = arg;
	const struct ht_ustack *us = ps->in->us;
	uint64_t sp = us->regs[HT_REG_RSP];

	(void)dwfl;
	if (addr < sp || addr - sp > us->len || us->len - (addr - sp) < sizeof(*result)) {
		ps->oob = true;
		return false;
	}
	memcpy(result, ps->in->stack + (addr - sp), sizeof(*result));
	return true;
}

static bool cb_set_initial_registers(Dwfl_Thread *thread, void *arg)
{
	struct proc_state *ps = arg;
	const __u64 *r = ps->in->us->regs;
	Dwarf_Word rbx = r[HT_REG_RBX], rip = r[HT_REG_RIP];
	Dwarf_Word bp_sp[2] = { r[HT_REG_RBP], r[HT_REG_RSP] };
	Dwarf_Word r12_15[4] = { r[HT_REG_R12], r[HT_REG_R13], r[HT_REG_R14], r[HT_REG_R15] };

	/* Only these are known; CFI that needs another register fails instead of guessing. */
	return dwfl_thread_state_registers(thread, DWARF_REG_RBX, 1, &rbx) &&
	       dwfl_thread_state_registers(thread, DWARF_REG_RBP, 2, bp_sp) &&
	       dwfl_thread_state_registers(thread, DWARF_REG_R12, 4, r12_15) &&
	       dwfl_thread_state_registers(thread, DWARF_REG_RIP, 1, &rip);
}

static const Dwfl_Thread_Callbacks thread_callbacks = {
	.next_thread = cb_next_thread,
	.get_thread = cb_get_thread,
	.memory_read = cb_memory_read,
	.set_initial_registers = cb_set_initial_registers,
};

/* ---- per-process sessions ---- */

static void proc_drop_session(struct proc_state *ps)
{
	symbolizer__free(ps->sym); /* ends the Dwfl, which detaches our state */
	ps->sym = NULL;
	ps->dwfl = NULL;
	u64map__clear(&ps->row_idx);
	free(ps->rows);
	ps->rows = NULL;
	ps->nrows = ps->rows_cap = 0;
}

static void proc_free(struct proc_state *ps)
{
	if (!ps)
		return;
	proc_drop_session(ps);
	free(ps);
}

/* Builds the process's session from map.  ps->dwfl stays NULL if that fails (then every
 * stack of the process is cut at its first frame, and counted). */
static void proc_build(struct proc_state *ps, const struct ht_modmap *map)
{
	Dwfl *dwfl;

	proc_drop_session(ps);
	ps->map_sig = map_signature(map);
	ps->sym = symbolizer__new(map);
	if (!ps->sym) {
		log_debug("unwind: pid %d: no libdwfl session: %s", ps->pid, strerror(errno));
		return;
	}
	dwfl = symbolizer__dwfl(ps->sym);
	if (!dwfl_attach_state(dwfl, NULL, ps->pid, &thread_callbacks, ps)) {
		log_debug("unwind: pid %d: %s", ps->pid, dwfl_errmsg(-1));
		return;
	}
	ps->dwfl = dwfl;
}

/* The process's state (created, the least recently used one making room); NULL on ENOMEM. */
static struct proc_state *proc_state_of(struct ht_unwinder *u, const struct ht_proc_info *info)
{
	struct proc_state *ps;
	int slot = -1;

	for (int i = 0; i < MAX_PROCS; i++) {
		if (u->procs[i] && u->procs[i]->pid == info->pid) {
			u->procs[i]->last_use = ++u->tick;
			return u->procs[i];
		}
		if (slot < 0 || !u->procs[i] ||
		    (u->procs[slot] && u->procs[i]->last_use < u->procs[slot]->last_use))
			slot = i;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return NULL;
	ps->pid = info->pid;
	ps->map_sig = ~map_signature(&info->map); /* no session yet */
	ps->last_use = ++u->tick;
	proc_free(u->procs[slot]);
	u->procs[slot] = ps;
	return ps;
}

/* The process's state with a session matching its current map; NULL on ENOMEM. */
static struct proc_state *proc_get(struct ht_unwinder *u, const struct ht_proc_info *info)
{
	struct proc_state *ps = proc_state_of(u, info);

	if (ps && ps->map_sig != map_signature(&info->map)) {
		uint64_t t0 = now_ns();

		proc_build(ps, &info->map);
		u->st.sessions++;
		u->st.setup_ns += now_ns() - t0;
	}
	return ps;
}

/* ---- auto: does the frame-pointer chain hold? ---- */

static uint64_t build_id_key(const char *build_id)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (const char *c = build_id; *c; c++) {
		h ^= (unsigned char)*c;
		h *= 0x100000001b3ULL;
	}
	return nonzero(h);
}

static uint64_t file_key(uint64_t dev, uint64_t inode)
{
	return nonzero(u64_hash(dev ^ u64_hash(inode)));
}

/* Classifies the ELF file open on fd (key: its build-id, else device and inode), once. */
static int classify_fd(struct ht_unwinder *u, int fd, uint64_t key, const char *path)
{
	uint64_t *v = u64map__get(&u->obj_verdict, key), t0 = now_ns();
	struct ht_fp_sample sample;
	int r;

	if (v)
		return (int)*v;
	r = fp_detect__fd(fd, FP_SAMPLES, &sample);
	u->st.setup_ns += now_ns() - t0;
	log_info("unwind: %s %s frame pointers (%u of %u sampled prologues set them up)%s", path,
		 r == 1 ? "keeps" : "lacks", sample.with_fp, sample.sampled,
		 r < 0 ? ": cannot tell, treated as without" : "");
	if (r == 1)
		u->st.objects_fp++;
	else
		u->st.objects_nofp++;
	u64map__put(&u->obj_verdict, key, r == 1 ? V_FP : V_NO_FP); /* ENOMEM: asked again */
	return r == 1 ? V_FP : V_NO_FP;
}

/* Opens the file mapped as m: through the process while it lives, else by its path, and
 * only if it is still the same file (build-id, else device and inode).  -errno if not. */
static int open_module_file(const struct ht_module *m)
{
	const char *paths[2] = { m->open_path, m->path };
	char id[sizeof(m->build_id)];
	struct stat st;

	for (int i = 0; i < 2; i++) {
		int fd = paths[i] ? open(paths[i], O_RDONLY | O_CLOEXEC) : -1;

		if (fd < 0)
			continue;
		if (m->build_id[0] ? !modmap__file_build_id(fd, id, sizeof(id)) &&
					     !strcmp(id, m->build_id)
				   : !fstat(fd, &st) && (uint64_t)st.st_dev == m->dev &&
					     (uint64_t)st.st_ino == m->inode)
			return fd;
		close(fd);
	}
	return -ENOENT;
}

/* Whether the object m keeps frame pointers (V_FP / V_NO_FP). */
static int object_verdict(struct ht_unwinder *u, const struct ht_module *m)
{
	uint64_t key = m->build_id[0] ? build_id_key(m->build_id) : file_key(m->dev, m->inode);
	uint64_t *v = u64map__get(&u->obj_verdict, key);
	int fd, verdict;

	if (v)
		return (int)*v;
	fd = open_module_file(m);
	if (fd < 0) {
		log_info("unwind: %s: cannot read it, treated as without frame pointers", m->path);
		u64map__put(&u->obj_verdict, key, V_NO_FP);
		return V_NO_FP;
	}
	verdict = classify_fd(u, fd, key, m->path);
	close(fd);
	return verdict;
}

static uint64_t module_key(const struct ht_module *m)
{
	return nonzero(u64_hash(m->start ^ u64_hash(m->dev ^ u64_hash(m->inode))));
}

/* Whether the module mapped as m keeps frame pointers, cached per mapping. */
static bool module_keeps_fp(struct ht_unwinder *u, const struct ht_module *m)
{
	uint64_t key = module_key(m), *v = u64map__get(&u->map_verdict, key);
	int verdict;

	if (v)
		return *v == V_FP;
	verdict = object_verdict(u, m);
	/* On ENOMEM: asked again next time. */
	if (!u64map__put(&u->map_verdict, key, verdict) && verdict == V_FP)
		u->verdict_gen++;
	return verdict == V_FP;
}

static bool keeps_fp(struct ht_unwinder *u, const struct ht_proc_info *info, uint64_t ret_addr)
{
	const struct ht_module *m = modmap__find(&info->map, ret_addr - 1);

	return m && module_keeps_fp(u, m);
}

/*
 * Tells the probe where the process's code keeps frame pointers (ht_fp_code): chains
 * through such code only are then sent without a stack copy, and a caller outside it is
 * not walked at all (so the table must cover every module: all of them are classified
 * first).  Written again when the map changed.  (A module unmapped and replaced by other
 * code at the same address is still trusted until the next record with a copy shows the
 * change.)
 */
static void sync_fp_code(struct ht_unwinder *u, const struct ht_proc_info *info)
{
	struct ht_fp_code code = { 0 };
	uint64_t sig = map_signature(&info->map);
	struct proc_state *ps;
	__u32 key = info->pid;

	if (u->fp_code_fd < 0 || !(ps = proc_state_of(u, info)) ||
	    (ps->pushed_gen == u->verdict_gen && ps->pushed_sig == sig))
		return;
	for (size_t i = 0; i < info->map.n; i++)
		if (info->map.mods[i].executable_map)
			module_keeps_fp(u, &info->map.mods[i]);
	for (size_t i = 0, k = 0; i < info->map.n && k < HT_MAX_FP_RANGES; i++) {
		const struct ht_module *m = &info->map.mods[i];
		uint64_t *v = u64map__get(&u->map_verdict, module_key(m));

		if (v && *v == V_FP) {
			code.start[k] = m->start;
			code.end[k++] = m->end;
		}
	}
	if (bpf_map_update_elem(u->fp_code_fd, &key, &code, BPF_ANY)) {
		log_debug("unwind: pid %d: cannot update ht_fp_code: %s", info->pid,
			  strerror(errno));
		return;
	}
	ps->pushed_gen = u->verdict_gen;
	ps->pushed_sig = sig;
}

static bool fp_chain_holds(struct ht_unwinder *u, const struct ht_proc_info *info,
			   const struct ht_unwind_input *in)
{
	if (in->fp_n == 0 || (in->fp_n == 1 && !in->fp_truncated))
		return false;
	for (uint32_t i = 0; i + 1 < in->fp_n; i++)
		if (!keeps_fp(u, info, in->fp_frames[i]))
			return false;
	return true;
}

/* ---- CFI unwinding ---- */

/*
 * Compiles the CFI row at code address addr, the way libdwfl reads it: .eh_frame, else
 * .debug_frame.  Rows that say "CFA = %rsp or %rbp + k; each register saved at CFA + k,
 * unchanged or lost" (nearly all of them) the fast path applies itself; anything else (a
 * signal frame, a DWARF expression) is ROW_SLOW and left to libdwfl.
 */
static void compile_row(struct proc_state *ps, uint64_t addr, struct cfi_row *row)
{
	static const int dwarf_regs[ROW_NREGS] = { DWARF_REG_RIP, DWARF_REG_RBP, DWARF_REG_RBX,
						   DWARF_REG_R12, DWARF_REG_R12 + 1,
						   DWARF_REG_R12 + 2, DWARF_REG_R12 + 3 };
	Dwfl_Module *m = dwfl_addrmodule(ps->dwfl, addr);
	Dwarf_Frame *frame = NULL;
	Dwarf_Op mem[3], *ops;
	Dwarf_CFI *cfi;
	Dwarf_Addr bias;
	size_t nops;
	bool signal;

	memset(row, 0, sizeof(*row));
	row->kind = ROW_NOCFI;
	if (!m)
		return;
	cfi = dwfl_module_eh_cfi(m, &bias);
	if (!cfi || dwarf_cfi_addrframe(cfi, addr - bias, &frame)) {
		cfi = dwfl_module_dwarf_cfi(m, &bias);
		if (!cfi || dwarf_cfi_addrframe(cfi, addr - bias, &frame))
			return;
	}
	row->kind = ROW_SLOW;
	if (dwarf_frame_info(frame, NULL, NULL, &signal) < 0 || signal ||
	    dwarf_frame_cfa(frame, &ops, &nops) || nops != 1 || ops[0].atom != DW_OP_bregx ||
	    (ops[0].number != DWARF_REG_RSP && ops[0].number != DWARF_REG_RBP) ||
	    (int64_t)ops[0].number2 != (int32_t)ops[0].number2)
		goto out;
	row->cfa_reg = ops[0].number == DWARF_REG_RSP ? HT_REG_RSP : HT_REG_RBP;
	row->cfa_off = (int32_t)ops[0].number2;
	/* The caller's %rsp is the CFA (the ABI's rule); anything else is for libdwfl. */
	if (dwarf_frame_register(frame, DWARF_REG_RSP, mem, &ops, &nops) || nops != 2 ||
	    ops[0].atom != DW_OP_call_frame_cfa || ops[1].atom != DW_OP_stack_value)
		goto out;
	for (int i = 0; i < ROW_NREGS; i++) {
		int64_t off;

		if (dwarf_frame_register(frame, dwarf_regs[i], mem, &ops, &nops))
			goto out;
		if (nops == 0) {
			row->saved[i] = ops ? SAVED_UNDEF : SAVED_SAME;
			continue;
		}
		/* saved at CFA + off: [call_frame_cfa] or [call_frame_cfa, plus_uconst off] */
		if (ops[0].atom != DW_OP_call_frame_cfa || nops > 2 ||
		    (nops == 2 && ops[1].atom != DW_OP_plus_uconst))
			goto out;
		off = nops == 2 ? (int64_t)ops[1].number : 0;
		if (off != (int16_t)off || off == SAVED_SAME || off == SAVED_UNDEF)
			goto out;
		row->saved[i] = (int16_t)off;
	}
	/* The return address undefined: the outermost frame (_start, clone3). */
	row->kind = row->saved[0] == SAVED_UNDEF ? ROW_END : ROW_FRAME;
out:
	free(frame);
}

/* The compiled row at addr, cached per address (call sites repeat).  NULL on ENOMEM. */
static const struct cfi_row *row_at(struct proc_state *ps, uint64_t addr)
{
	uint64_t *idx = addr ? u64map__get(&ps->row_idx, addr) : NULL;

	if (idx)
		return &ps->rows[*idx];
	if (ps->nrows == ps->rows_cap) {
		size_t cap = ps->rows_cap ? 2 * ps->rows_cap : 256;
		struct cfi_row *rows = realloc(ps->rows, cap * sizeof(*rows));

		if (!rows)
			return NULL;
		ps->rows = rows;
		ps->rows_cap = cap;
	}
	compile_row(ps, addr, &ps->rows[ps->nrows]);
	if (addr && u64map__put(&ps->row_idx, addr, ps->nrows))
		return NULL;
	return &ps->rows[ps->nrows++];
}

/* Whether CFI covers the code at addr. */
static bool has_cfi(struct proc_state *ps, uint64_t addr)
{
	const struct cfi_row *row = row_at(ps, addr);

	return row && row->kind != ROW_NOCFI;
}

/*
 * Whether addr lies in the first bytes after its object's ELF entry point: the code the
 * kernel starts a process in, the outermost frame there is.  ld.so's entry code (_start,
 * then _dl_start_user, which runs the constructors) has no CFI to say so.
 */
static bool is_entry_code(struct proc_state *ps, uint64_t addr)
{
	Dwfl_Module *m = dwfl_addrmodule(ps->dwfl, addr);
	GElf_Ehdr ehdr;
	GElf_Addr bias;
	Elf *elf = m ? dwfl_module_getelf(m, &bias) : NULL;

	return elf && gelf_getehdr(elf, &ehdr) && ehdr.e_entry && addr - bias >= ehdr.e_entry &&
	       addr - bias < ehdr.e_entry + ENTRY_CODE_BYTES;
}

static bool keep_frame(struct walk *w, uint64_t addr)
{
	if (w->n == w->max) {
		w->why = STOP_DEPTH;
		return false;
	}
	w->out[w->n++] = addr;
	return true;
}

static int on_frame(Dwfl_Frame *frame, void *arg)
{
	struct walk *w = arg;
	bool initial = w->seen++ == 0, activation;
	Dwarf_Addr pc;
	Dwarf_Word sp;
	uint64_t at, addr;

	if (!dwfl_frame_pc(frame, &pc, &activation)) {
		w->why = STOP_ERROR;
		return DWARF_CB_ABORT;
	}
	if (dwfl_frame_reg(frame, DWARF_REG_RSP, &sp) == 0) {
		if (!initial && sp <= w->last_sp) {
			w->why = STOP_ERROR;
			return DWARF_CB_ABORT;
		}
		w->last_sp = sp;
	}
	/* Where the code is: the IP itself in the initial frame taken at entry and in a frame
	 * interrupted by a signal, else the call before the return address.  Stored is a
	 * return address (symbolize.c looks up addr - 1) in every case. */
	at = activation && !(initial && !w->skip_first) ? pc : pc - 1;
	addr = at + 1;
	if (!(initial && w->skip_first) && !keep_frame(w, addr))
		return DWARF_CB_ABORT;
	if (!modmap__find(w->map, at)) {
		w->why = STOP_UNMAPPED;
		return DWARF_CB_ABORT;
	}
	/* Where CFI does not cover the code, libdwfl falls back to guessing by frame pointer:
	 * the guess is exactly what DWARF unwinding is here to avoid, so the walk ends at
	 * such a frame.  (libdwfl looks the initial frame up at its IP itself.) */
	if (!has_cfi(w->ps, initial ? pc : at)) {
		w->why = is_entry_code(w->ps, at) ? STOP_ROOT : STOP_CFI;
		return DWARF_CB_ABORT;
	}
	return DWARF_CB_OK;
}

/*
 * The fast path: applies compiled rows itself, with the same checks as on_frame() and the
 * same reads as cb_memory_read().  false: it met a row only libdwfl applies (w is then
 * left half done; the caller starts over with libdwfl).
 */
static bool fast_walk(struct proc_state *ps, struct walk *w)
{
	const struct ht_ustack *us = ps->in->us;
	uint64_t regs[HT_REG__COUNT];
	bool known[HT_REG__COUNT];

	for (int i = 0; i < HT_REG__COUNT; i++) {
		regs[i] = us->regs[i];
		known[i] = true;
	}
	for (;;) {
		bool initial = w->seen++ == 0;
		uint64_t pc = regs[HT_REG_RIP], at = initial && w->skip_first ? pc : pc - 1;
		uint64_t cfa, v[ROW_NREGS];
		const struct cfi_row *row;
		bool got[ROW_NREGS];

		if (!initial && regs[HT_REG_RSP] <= w->last_sp) {
			w->why = STOP_ERROR;
			return true;
		}
		w->last_sp = regs[HT_REG_RSP];
		if (!(initial && w->skip_first) && !keep_frame(w, at + 1))
			return true;
		if (!modmap__find(w->map, at)) {
			w->why = STOP_UNMAPPED;
			return true;
		}
		row = row_at(ps, initial ? pc : at);
		if (!row || (row->kind == ROW_FRAME && !known[row->cfa_reg])) {
			w->why = STOP_ERROR;
			return true;
		}
		switch (row->kind) {
		case ROW_NOCFI:
			w->why = is_entry_code(ps, at) ? STOP_ROOT : STOP_CFI;
			return true;
		case ROW_END:
			w->why = STOP_END;
			return true;
		case ROW_SLOW:
			return false;
		}
		cfa = regs[row->cfa_reg] + (int64_t)row->cfa_off;
		for (int i = 0; i < ROW_NREGS; i++) {
			int r = row_regs[i];
			Dwarf_Word word = 0;

			if (row->saved[i] == SAVED_SAME) {
				v[i] = regs[r];
				got[i] = known[r];
			} else if (row->saved[i] == SAVED_UNDEF) {
				got[i] = false;
			} else {
				got[i] = cb_memory_read(NULL, cfa + row->saved[i], &word, ps);
				v[i] = word;
			}
		}
		if (!got[0]) { /* the return address is beyond the copy */
			w->why = ps->oob ? STOP_COPY : STOP_ERROR;
			return true;
		}
		if (!v[0]) { /* a zero return address ends the stack (libdwfl's rule too) */
			w->why = STOP_END;
			return true;
		}
		regs[HT_REG_RSP] = cfa;
		for (int i = 0; i < ROW_NREGS; i++) {
			regs[row_regs[i]] = v[i];
			known[row_regs[i]] = got[i];
		}
	}
}

static uint32_t unwind_copy(struct ht_unwinder *u, struct ht_proc_info *info,
			    const struct ht_unwind_input *in, uint64_t *out, bool *truncated,
			    bool *unmapped)
{
	struct proc_state *ps = proc_get(u, info);
	struct walk w = { .ps = ps, .map = &info->map, .out = out, .max = u->max_depth,
			  .skip_first = in->us->flags & HT_US_IN_CALLEE };
	uint64_t t0 = now_ns(); /* after any session setup, which is counted apart */
	int ret = 0;

	u->st.unwound++;
	*truncated = true;
	if (!ps || !ps->dwfl) {
		/* No session: the IP alone, if it is the caller's. */
		if (!w.skip_first && in->us->regs[HT_REG_RIP])
			out[w.n++] = in->us->regs[HT_REG_RIP];
		u->st.trunc_error++;
		return w.n;
	}
	ps->in = in;
	ps->oob = false;
	if (u->libdwfl_only || !fast_walk(ps, &w)) {
		u->st.slow++;
		w = (struct walk){ .ps = ps, .map = &info->map, .out = out, .max = u->max_depth,
				   .skip_first = w.skip_first };
		ps->oob = false;
		ret = dwfl_getthread_frames(ps->dwfl, info->pid, on_frame, &w);
		if (w.why == STOP_NONE)
			w.why = ret == 0 && !ps->oob ? STOP_END : ps->oob ? STOP_COPY : STOP_ERROR;
		if (w.why == STOP_ERROR)
			log_debug("unwind: pid %d: stack cut after %u frames: %s", info->pid, w.n,
				  ret ? dwfl_errmsg(-1) : "a frame that does not climb");
	}
	ps->in = NULL;
	switch (w.why) {
	case STOP_NONE: /* not reached */
	case STOP_END:
	case STOP_ROOT:
		*truncated = false;
		u->st.complete++;
		break;
	case STOP_COPY:
		u->st.trunc_copy++;
		break;
	case STOP_DEPTH:
		u->st.trunc_depth++;
		break;
	case STOP_UNMAPPED:
		*unmapped = true;
		/* fallthrough */
	case STOP_CFI:
		u->st.trunc_cfi++;
		break;
	case STOP_ERROR:
		u->st.trunc_error++;
		break;
	}
	u->st.ns += now_ns() - t0;
	return w.n;
}

/* ---- public ---- */

struct ht_unwinder *unwinder__new(enum ht_unwind_mode mode, uint32_t max_depth, int fp_code_fd)
{
	struct ht_unwinder *u = calloc(1, sizeof(*u));

	if (!u) {
		errno = ENOMEM;
		return NULL;
	}
	u->mode = mode;
	u->fp_code_fd = fp_code_fd;
	u->max_depth = max_depth < HT_MAX_DEPTH ? max_depth : HT_MAX_DEPTH;
	return u;
}

void unwinder__free(struct ht_unwinder *u)
{
	if (!u)
		return;
	for (int i = 0; i < MAX_PROCS; i++)
		proc_free(u->procs[i]);
	u64map__clear(&u->obj_verdict);
	u64map__clear(&u->map_verdict);
	free(u);
}

uint32_t unwinder__frames(struct ht_unwinder *u, struct ht_proc_info *info,
			  const struct ht_unwind_input *in, uint64_t *out, bool *truncated,
			  bool *unmapped)
{
	bool holds = false;

	*unmapped = false;
	if (u->mode == HT_UNWIND_MODE_AUTO) {
		sync_fp_code(u, info);
		holds = fp_chain_holds(u, info, in);
	}
	if (u->mode == HT_UNWIND_MODE_AUTO && holds) {
		uint32_t n = in->fp_n < u->max_depth ? in->fp_n : u->max_depth;

		u->st.fp_kept++;
		memcpy(out, in->fp_frames, n * sizeof(*out));
		*truncated = in->fp_truncated || n < in->fp_n;
		u->st.fp_kept_cut += *truncated;
		return n;
	}
	return unwind_copy(u, info, in, out, truncated, unmapped);
}

void unwinder__classify_file(struct ht_unwinder *u, const char *path)
{
	char id[41];
	struct stat st;
	int fd;

	if (u->mode != HT_UNWIND_MODE_AUTO || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return;
	if (!modmap__file_build_id(fd, id, sizeof(id)))
		classify_fd(u, fd, build_id_key(id), path);
	else if (!fstat(fd, &st))
		classify_fd(u, fd, file_key(st.st_dev, st.st_ino), path);
	close(fd);
}

void unwinder__prepare_process(struct ht_unwinder *u, const struct ht_proc_info *info)
{
	if (u->mode == HT_UNWIND_MODE_AUTO)
		sync_fp_code(u, info);
}

void unwinder__set_libdwfl_only(struct ht_unwinder *u, bool on)
{
	u->libdwfl_only = on;
}

const struct ht_unwind_stats *unwinder__stats(const struct ht_unwinder *u)
{
	return &u->st;
}

uint64_t unwinder__truncated(const struct ht_unwinder *u)
{
	return u->st.fp_kept_cut + u->st.unwound - u->st.complete;
}

void unwinder__log_stats(const struct ht_unwinder *u)
{
	const struct ht_unwind_stats *st = &u->st;

	log_info("unwind: %" PRIu64 " stacks unwound with CFI (%.1f us each, %" PRIu64
		 " by libdwfl), %" PRIu64 " complete; cut by: end of the copied stack %" PRIu64
		 ", no CFI or unknown "
		 "code %" PRIu64 ", depth cap %" PRIu64 ", other %" PRIu64 "; %" PRIu64
		 " frame-pointer chains kept from records with a copy (%" PRIu64 " cut by the "
		 "depth cap); setup %.1f ms (%" PRIu64 " sessions, %" PRIu64 " objects)",
		 st->unwound, st->unwound ? st->ns / 1e3 / st->unwound : 0.0, st->slow,
		 st->complete,
		 st->trunc_copy, st->trunc_cfi, st->trunc_depth, st->trunc_error, st->fp_kept,
		 st->fp_kept_cut, st->setup_ns / 1e6, st->sessions,
		 st->objects_fp + st->objects_nofp);
}
