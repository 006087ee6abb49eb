/*
 * elf_syms: function symbols of one ELF file and the probe site for each.
 *
 * How this works.
 *
 * Symbols.  Both .symtab and .dynsym are read (a stripped library has only .dynsym; the two
 * usually overlap, which does no harm).  Only defined functions are kept: STT_FUNC and
 * STT_GNU_IFUNC with st_shndx != SHN_UNDEF and st_value != 0.  Names are not copied: each
 * entry borrows its name from libelf's string table and records the length of the base
 * name, so "malloc@@GLIBC_2.2.5" in a .symtab is stored as "malloc".  Entries are sorted by
 * (name, rank, address) so a binary search lands on the preferred one when names repeat:
 * a hidden version ("memcpy@GLIBC_2.2.5" in .symtab, or the VERSYM_HIDDEN bit in
 * .gnu.version for .dynsym) ranks after a default one, because that is what the dynamic
 * linker binds new references to; then GLOBAL (and GNU_UNIQUE) before WEAK before LOCAL.
 *
 * Probe site.  The function's code is located through the executable PT_LOAD segment that
 * contains it (file offset = vaddr - p_vaddr + p_offset, the same translation uprobes
 * attach through) and decoded with capstone.  Walking the first SCAN_INSNS instructions,
 * the site is the first one the kernel emulates (the exact set: elf_syms__kernel_emulates())
 * provided that (a) every instruction before it is harmless — no write to memory, rsp,
 * rbp or an argument register, no branch — so arguments and [rsp] are as at entry, and
 * (b) no direct jump or jcc anywhere in the function lands in [start, site], which would
 * make the probe fire more than once per call.  Calls to the start are recursion, a real
 * new call, and do not count.  Indirect jumps and jumps from other functions (a ".cold"
 * part jumping back) cannot be seen here; compilers do not target a prologue with them.
 */
#include "elf_syms.h"

#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SCAN_INSNS 16    /* prologue instructions considered for the site */
#define NOSIZE_BYTES 64  /* bytes decoded when a symbol has no st_size */
#define VERSYM_HIDDEN 0x8000

struct fsym {
	const char *name; /* borrowed from libelf's string data; only len bytes count */
	uint32_t len;     /* length of the base name (version suffix cut) */
	uint8_t rank;     /* lower is preferred, see rank_of() */
	bool ifunc;
	uint64_t addr;
	uint64_t size;
};

struct load_seg {
	uint64_t vaddr;
	uint64_t filesz;
	uint64_t offset;
	bool exec;
};

struct ht_elf_syms {
	int fd;
	Elf *elf;
	const uint8_t *image; /* the whole file, mapped by libelf */
	size_t image_size;
	bool is_dyn;
	struct fsym *syms;
	size_t nsyms;
	size_t cap;
	struct load_seg *segs;
	size_t nsegs;
	csh cs;
	bool cs_ready;
};

/* One decoded prologue instruction. */
struct pro_insn {
	uint64_t addr;
	uint16_t size;
	bool emulated;
	bool harmful; /* may not be skipped over on the way to a later site */
	char text[sizeof(((struct ht_probe_site *)0)->insn)];
};

/* ---- symbols ---------------------------------------------------------------------------- */

static uint8_t rank_of(unsigned char bind, bool hidden_version)
{
	uint8_t r;

	switch (bind) {
	case STB_GLOBAL:
	case STB_GNU_UNIQUE:
		r = 0;
		break;
	case STB_WEAK:
		r = 1;
		break;
	case STB_LOCAL:
		r = 2;
		break;
	default:
		r = 3;
		break;
	}
	/* The version rule outranks binding: an old hidden version is never what a new
	 * reference binds to, whatever its binding. */
	return hidden_version ? r + 4 : r;
}

static int push_sym(struct ht_elf_syms *e, const struct fsym *s)
{
	if (e->nsyms == e->cap) {
		size_t ncap = e->cap ? e->cap * 2 : 256;
		struct fsym *n = realloc(e->syms, ncap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		e->syms = n;
		e->cap = ncap;
	}
	e->syms[e->nsyms++] = *s;
	return 0;
}

/* The .gnu.version data that annotates symbol section symscn, or NULL. */
static Elf_Data *versym_for(Elf *elf, size_t symscn_ndx)
{
	Elf_Scn *scn = NULL;
	GElf_Shdr sh;

	while ((scn = elf_nextscn(elf, scn))) {
		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_GNU_versym)
			continue;
		if (sh.sh_link == symscn_ndx)
			return elf_getdata(scn, NULL);
	}
	return NULL;
}

static int load_symtab(struct ht_elf_syms *e, Elf_Scn *scn, const GElf_Shdr *sh)
{
	size_t entsize = gelf_fsize(e->elf, ELF_T_SYM, 1, EV_CURRENT);
	Elf_Data *data = elf_getdata(scn, NULL), *ver = NULL;
	size_t i, n;

	if (!data || !entsize)
		return 0; /* an unreadable table is treated as absent, not as fatal */
	n = sh->sh_size / entsize;
	if (sh->sh_type == SHT_DYNSYM)
		ver = versym_for(e->elf, elf_ndxscn(scn));

	for (i = 1; i < n; i++) {
		unsigned char type, bind;
		const char *name, *at;
		struct fsym s;
		bool hidden = false;
		GElf_Sym sym;
		int err;

		if (!gelf_getsym(data, (int)i, &sym))
			continue;
		type = GELF_ST_TYPE(sym.st_info);
		bind = GELF_ST_BIND(sym.st_info);
		if (type != STT_FUNC && type != STT_GNU_IFUNC)
			continue;
		if (sym.st_shndx == SHN_UNDEF || sym.st_value == 0)
			continue;
		name = elf_strptr(e->elf, sh->sh_link, sym.st_name);
		if (!name || !*name)
			continue;

		at = strchr(name, '@');
		/* "name@V" is a hidden version, "name@@V" the default one. */
		if (at)
			hidden = at[1] != '@';
		if (ver) {
			GElf_Versym vs;

			if (gelf_getversym(ver, (int)i, &vs) && (vs & VERSYM_HIDDEN))
				hidden = true;
		}

		s.name = name;
		s.len = (uint32_t)(at ? (size_t)(at - name) : strlen(name));
		s.rank = rank_of(bind, hidden);
		s.ifunc = type == STT_GNU_IFUNC;
		s.addr = sym.st_value;
		s.size = sym.st_size;
		if (!s.len)
			continue;
		err = push_sym(e, &s);
		if (err)
			return err;
	}
	return 0;
}

static int cmp_name(const char *a, size_t alen, const char *b, size_t blen)
{
	int c = memcmp(a, b, alen < blen ? alen : blen);

	if (c)
		return c;
	return alen < blen ? -1 : alen > blen;
}

static int cmp_fsym(const void *pa, const void *pb)
{
	const struct fsym *a = pa, *b = pb;
	int c = cmp_name(a->name, a->len, b->name, b->len);

	if (c)
		return c;
	if (a->rank != b->rank)
		return a->rank < b->rank ? -1 : 1;
	return a->addr < b->addr ? -1 : a->addr > b->addr;
}

/* The preferred definition of name, or NULL. */
static const struct fsym *find_sym(const struct ht_elf_syms *e, const char *name)
{
	size_t lo = 0, hi, len;

	if (!e || !name)
		return NULL;
	len = strlen(name);
	hi = e->nsyms;
	/* Lower bound: the first entry not below name; ties are ordered best first. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct fsym *s = &e->syms[mid];

		if (cmp_name(s->name, s->len, name, len) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < e->nsyms && !cmp_name(e->syms[lo].name, e->syms[lo].len, name, len))
		return &e->syms[lo];
	return NULL;
}

static int load_segments(struct ht_elf_syms *e)
{
	size_t i, n;

	if (elf_getphdrnum(e->elf, &n))
		return 0; /* ET_REL has none: symbols still work, probe sites will not */
	e->segs = calloc(n ? n : 1, sizeof(*e->segs));
	if (!e->segs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(e->elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		e->segs[e->nsegs].vaddr = ph.p_vaddr;
		e->segs[e->nsegs].filesz = ph.p_filesz;
		e->segs[e->nsegs].offset = ph.p_offset;
		e->segs[e->nsegs].exec = ph.p_flags & PF_X;
		e->nsegs++;
	}
	return 0;
}

struct ht_elf_syms *elf_syms__open(const char *path)
{
	struct ht_elf_syms *e;
	Elf_Scn *scn = NULL;
	GElf_Ehdr eh;
	int err;

	if (!path) {
		errno = EINVAL;
		return NULL;
	}
	if (elf_version(EV_CURRENT) == EV_NONE) {
		errno = ENOSYS;
		return NULL;
	}
	e = calloc(1, sizeof(*e));
	if (!e) {
		errno = ENOMEM;
		return NULL;
	}
	e->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (e->fd < 0) {
		err = -errno;
		goto fail;
	}
	e->elf = elf_begin(e->fd, ELF_C_READ_MMAP, NULL);
	if (!e->elf || elf_kind(e->elf) != ELF_K_ELF || !gelf_getehdr(e->elf, &eh)) {
		err = -ENOEXEC;
		goto fail;
	}
	/* The probe-site logic decodes x86-64 only; refuse anything else up front rather
	 * than hand out sites computed for the wrong instruction set. */
	if (gelf_getclass(e->elf) != ELFCLASS64 || eh.e_machine != EM_X86_64) {
		err = -ENOEXEC;
		goto fail;
	}
	e->is_dyn = eh.e_type == ET_DYN;
	e->image = (const uint8_t *)elf_rawfile(e->elf, &e->image_size);

	while ((scn = elf_nextscn(e->elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		if (sh.sh_type != SHT_SYMTAB && sh.sh_type != SHT_DYNSYM)
			continue;
		err = load_symtab(e, scn, &sh);
		if (err)
			goto fail;
	}
	if (e->nsyms)
		qsort(e->syms, e->nsyms, sizeof(*e->syms), cmp_fsym);

	err = load_segments(e);
	if (err)
		goto fail;
	return e;

fail:
	elf_syms__close(e);
	errno = -err;
	return NULL;
}

void elf_syms__close(struct ht_elf_syms *e)
{
	if (!e)
		return;
	if (e->cs_ready)
		cs_close(&e->cs);
	if (e->elf)
		elf_end(e->elf);
	if (e->fd >= 0)
		close(e->fd);
	free(e->syms);
	free(e->segs);
	free(e);
}

bool elf_syms__defines(const struct ht_elf_syms *e, const char *name)
{
	return find_sym(e, name) != NULL;
}

bool elf_syms__has_symbols(const struct ht_elf_syms *e)
{
	return e && e->nsyms > 0;
}

bool elf_syms__is_dyn(const struct ht_elf_syms *e)
{
	return e && e->is_dyn;
}

/* ---- what the kernel emulates ---------------------------------------------------------- */

/*
 * Facts from Linux 6.18 arch/x86/kernel/uprobes.c, re-expressed here:
 * - uprobe_init_insn() refuses (the probe cannot be attached at all) any instruction with
 *   an ES/CS/SS/DS segment or LOCK prefix (is_prefix_bad()).
 * - branch_setup_xol_ops() emulates: an instruction whose bytes equal x86_nops[len]
 *   (len <= ASM_NOP_MAX; the 9-11 byte ones start with 2e and are refused above); opcode
 *   0x90 with any prefixes; jmp rel8 (eb) / rel32 (e9); call rel32 (e8); jcc rel8
 *   (70-7f) / rel32 (0f 80-8f).  A branch with a 66 prefix is refused (-ENOTSUPP).
 * - push_setup_xol_ops() emulates push 50-57 of length 1, or of length 2 with exactly the
 *   REX prefix 41 (push r8-r15).
 * Everything else is single-stepped out of line (the slow path).
 */
static const uint8_t kernel_nops[][8] = {
	/* arch/x86/include/asm/nops.h, CONFIG_64BIT: BYTES_NOP1..BYTES_NOP8 */
	[1] = { 0x90 },
	[2] = { 0x66, 0x90 },
	[3] = { 0x0f, 0x1f, 0x00 },
	[4] = { 0x0f, 0x1f, 0x40, 0x00 },
	[5] = { 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	[6] = { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 },
	[7] = { 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00 },
	[8] = { 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00 },
};

struct raw_insn {
	size_t op;    /* index of the first opcode byte */
	uint8_t rex;  /* 0 if none */
	bool opsize;  /* a 66 prefix */
	bool bad;     /* a prefix that makes uprobes refuse the instruction */
};

static void split_prefixes(const uint8_t *b, size_t len, struct raw_insn *r)
{
	size_t i = 0;

	memset(r, 0, sizeof(*r));
	for (; i < len; i++) {
		switch (b[i]) {
		case 0x26: case 0x2e: case 0x36: case 0x3e: case 0xf0:
			r->bad = true;
			continue;
		case 0x66:
			r->opsize = true;
			continue;
		case 0x64: case 0x65: case 0x67: case 0xf2: case 0xf3:
			continue;
		}
		break;
	}
	if (i < len && (b[i] & 0xf0) == 0x40)
		r->rex = b[i++];
	r->op = i;
}

static bool is_branch_opcode(const uint8_t *b, size_t len, const struct raw_insn *r)
{
	uint8_t opc;

	if (r->op >= len)
		return false;
	opc = b[r->op];
	if (opc == 0xeb || opc == 0xe9 || opc == 0xe8 || (opc >= 0x70 && opc <= 0x7f))
		return true;
	return opc == 0x0f && r->op + 1 < len && b[r->op + 1] >= 0x80 && b[r->op + 1] <= 0x8f;
}

bool elf_syms__kernel_emulates(const uint8_t *b, size_t len)
{
	struct raw_insn r;
	uint8_t opc;

	if (!b || !len)
		return false;
	split_prefixes(b, len, &r);
	if (r.bad || r.op >= len)
		return false;
	if (len < sizeof(kernel_nops) / sizeof(kernel_nops[0]) && !memcmp(b, kernel_nops[len], len))
		return true;

	opc = b[r.op];
	if (opc == 0x90) {
		/* With REX.B this is xchg %eax,%r8d, which the kernel would "emulate" as a nop and
		 * so change what the program does: never call it emulated, never probe it. */
		return !(r.rex & 0x01);
	}
	if (is_branch_opcode(b, len, &r))
		return !r.opsize;
	if (opc >= 0x50 && opc <= 0x57) {
		if (len == 1)
			return true;
		return len == 2 && r.op == 1 && r.rex == 0x41;
	}
	return false;
}

/* True if uprobes would refuse to attach at this instruction at all. */
static bool kernel_refuses(const uint8_t *b, size_t len)
{
	struct raw_insn r;

	split_prefixes(b, len, &r);
	return r.bad || (r.opsize && is_branch_opcode(b, len, &r));
}

/* ---- what may be skipped over ----------------------------------------------------------- */

/* Registers whose value at the site must equal their value at entry: the stack and frame
 * pointers (return probes, stack walks), the segment registers, and the first nargs SysV
 * integer argument registers (the ones the probe reads). */
static bool is_protected_reg(unsigned int reg, int nargs)
{
	switch (reg) {
	case X86_REG_RSP: case X86_REG_ESP: case X86_REG_SP: case X86_REG_SPL:
	case X86_REG_RBP: case X86_REG_EBP: case X86_REG_BP: case X86_REG_BPL:
	case X86_REG_RIP: case X86_REG_EIP: case X86_REG_IP:
	case X86_REG_FS: case X86_REG_GS: case X86_REG_SS:
	case X86_REG_CS: case X86_REG_DS: case X86_REG_ES:
		return true;
	case X86_REG_RDI: case X86_REG_EDI: case X86_REG_DI: case X86_REG_DIL:
		return nargs > 0;
	case X86_REG_RSI: case X86_REG_ESI: case X86_REG_SI: case X86_REG_SIL:
		return nargs > 1;
	case X86_REG_RDX: case X86_REG_EDX: case X86_REG_DX: case X86_REG_DL: case X86_REG_DH:
		return nargs > 2;
	case X86_REG_RCX: case X86_REG_ECX: case X86_REG_CX: case X86_REG_CL: case X86_REG_CH:
		return nargs > 3;
	case X86_REG_R8: case X86_REG_R8D: case X86_REG_R8W: case X86_REG_R8B:
		return nargs > 4;
	case X86_REG_R9: case X86_REG_R9D: case X86_REG_R9W: case X86_REG_R9B:
		return nargs > 5;
	default:
		return false;
	}
}

/* True unless the instruction provably leaves memory, the protected registers and control
 * flow alone (flags-only test/cmp, endbr64, nops, register moves into scratch registers).
 * When capstone's description is incomplete we lean towards "harmful": the cost of a wrong
 * "harmful" is a slow probe, the cost of a wrong "harmless" is wrong arguments. */
static bool is_harmful(csh cs, const cs_insn *in, int nargs)
{
	static const uint8_t groups[] = { CS_GRP_JUMP, CS_GRP_CALL, CS_GRP_RET, CS_GRP_INT,
					  CS_GRP_IRET, CS_GRP_PRIVILEGE, CS_GRP_BRANCH_RELATIVE };
	const cs_x86 *x = &in->detail->x86;
	cs_regs rd, wr;
	uint8_t nrd, nwr, i;

	switch (in->id) {
	case X86_INS_ENDBR64:
	case X86_INS_NOP:
		return false;
	case X86_INS_SYSCALL:
	case X86_INS_SYSENTER:
	case X86_INS_UD2:
	case X86_INS_HLT:
	case X86_INS_INVALID:
		return true;
	}
	for (i = 0; i < sizeof(groups); i++)
		if (cs_insn_group(cs, in, groups[i]))
			return true;
	if (x->prefix[0] == X86_PREFIX_LOCK || x->prefix[0] == X86_PREFIX_REP ||
	    x->prefix[0] == X86_PREFIX_REPNE)
		return true; /* string ops and locked RMW: memory and rdi/rsi/rcx */

	if (cs_regs_access(cs, in, rd, &nrd, wr, &nwr) != CS_ERR_OK)
		return true;
	for (i = 0; i < nwr; i++)
		if (is_protected_reg(wr[i], nargs))
			return true;

	for (i = 0; i < x->op_count; i++) {
		const cs_x86_op *op = &x->operands[i];

		if (op->type != X86_OP_MEM || in->id == X86_INS_LEA)
			continue;
		/* access 0 means capstone does not know: assume a store. */
		if (!op->access || (op->access & CS_AC_WRITE))
			return true;
	}
	return false;
}

/* ---- the probe site --------------------------------------------------------------------- */

static const struct load_seg *exec_seg_of(const struct ht_elf_syms *e, uint64_t addr)
{
	size_t i;

	for (i = 0; i < e->nsegs; i++) {
		const struct load_seg *s = &e->segs[i];

		if (s->exec && addr >= s->vaddr && addr - s->vaddr < s->filesz)
			return s;
	}
	return NULL;
}

static int ensure_capstone(struct ht_elf_syms *e)
{
	if (e->cs_ready)
		return 0;
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &e->cs) != CS_ERR_OK)
		return -ENOMEM;
	if (cs_option(e->cs, CS_OPT_DETAIL, CS_OPT_ON) != CS_ERR_OK) {
		cs_close(&e->cs);
		return -EINVAL;
	}
	e->cs_ready = true;
	return 0;
}

/* "mnemonic op_str", truncated to size (capstone's fields are longer than ours). */
static void insn_text(const cs_insn *in, char *buf, size_t size)
{
	size_t n = 0;
	const char *p;

	for (p = in->mnemonic; *p && n + 1 < size; p++)
		buf[n++] = *p;
	if (in->op_str[0] && n + 1 < size)
		buf[n++] = ' ';
	for (p = in->op_str; *p && n + 1 < size; p++)
		buf[n++] = *p;
	buf[n] = '\0';
}

/*
 * Decodes the whole function [start, start+len) once: records its first SCAN_INSNS
 * instructions in pro[] and returns in *lowest the lowest address in [start, start+len)
 * that a direct jmp/jcc (or a call to other than start) inside the function targets.
 * Returns the number of prologue instructions, or -errno.
 */
static int decode_function(struct ht_elf_syms *e, const uint8_t *code, size_t len,
			   uint64_t start, int nargs, struct pro_insn *pro, uint64_t *lowest)
{
	const uint8_t *p = code;
	uint64_t addr = start;
	size_t left = len;
	bool in_sync = true;
	cs_insn *in;
	int n = 0;

	*lowest = UINT64_MAX;
	in = cs_malloc(e->cs);
	if (!in)
		return -ENOMEM;

	while (left) {
		const cs_x86 *x;
		uint8_t i;

		if (!cs_disasm_iter(e->cs, &p, &left, &addr, in)) {
			/* Undecodable bytes (data, padding): resynchronise one byte further.
			 * A branch decoded out of sync can only add targets, which only makes
			 * the choice more conservative; the prologue list stops here. */
			p++;
			left--;
			addr++;
			in_sync = false;
			continue;
		}
		if (in_sync && n < SCAN_INSNS) {
			struct pro_insn *q = &pro[n++];

			q->addr = in->address;
			q->size = in->size;
			q->emulated = elf_syms__kernel_emulates(in->bytes, in->size);
			q->harmful = is_harmful(e->cs, in, nargs);
			insn_text(in, q->text, sizeof(q->text));
		}

		x = &in->detail->x86;
		if (!cs_insn_group(e->cs, in, CS_GRP_JUMP) &&
		    !cs_insn_group(e->cs, in, CS_GRP_CALL))
			continue;
		for (i = 0; i < x->op_count; i++) {
			uint64_t t;

			if (x->operands[i].type != X86_OP_IMM)
				continue;
			t = (uint64_t)x->operands[i].imm;
			if (t < start || t - start >= len)
				continue;
			if (t == start && cs_insn_group(e->cs, in, CS_GRP_CALL))
				continue; /* recursion: a real new call, the probe should fire */
			if (t < *lowest)
				*lowest = t;
		}
	}
	cs_free(in, 1);
	return n;
}

int elf_syms__probe_site(struct ht_elf_syms *e, const char *name, struct ht_probe_site *out)
{
	return elf_syms__probe_site_args(e, name, 6, out);
}

int elf_syms__probe_site_args(struct ht_elf_syms *e, const char *name, int nargs,
			      struct ht_probe_site *out)
{
	struct pro_insn pro[SCAN_INSNS];
	const struct load_seg *seg;
	const struct fsym *s;
	uint64_t lowest, off, len, avail;
	int n, i, pick = -1, err;
	uint8_t *code;

	if (!e || !name || !out)
		return -EINVAL;
	s = find_sym(e, name);
	if (!s)
		return -ENOENT;
	/* An IFUNC's address is its resolver, which runs once at relocation time; the
	 * implementation it picks has no stable name we could look up reliably. */
	if (s->ifunc)
		return -ENOTSUP;

	seg = exec_seg_of(e, s->addr);
	if (!seg || !e->image)
		return -EINVAL;
	off = s->addr - seg->vaddr + seg->offset;
	avail = seg->filesz - (s->addr - seg->vaddr);
	len = s->size ? s->size : NOSIZE_BYTES;
	if (len > avail)
		len = avail;
	if (off >= e->image_size)
		return -EINVAL;
	if (len > e->image_size - off)
		len = e->image_size - off;

	err = ensure_capstone(e);
	if (err)
		return err;
	/*
	 * The code is read with pread(), not from the mapped image: a uprobe attached to this
	 * file for every process (heaptap -a, or another tracer) is also written into our own
	 * private mapping of it, and we would decode its int3 instead of the instruction.
	 */
	code = malloc(len ? len : 1);
	if (!code)
		return -ENOMEM;
	if (pread(e->fd, code, len, (off_t)off) != (ssize_t)len) {
		free(code);
		return -EIO;
	}
	n = decode_function(e, code, len, s->addr, nargs, pro, &lowest);
	if (n <= 0) {
		free(code);
		return n < 0 ? n : -EINVAL;
	}

	for (i = 0; i < n; i++) {
		if (pro[i].emulated && pro[i].addr < lowest) {
			pick = i;
			break;
		}
		if (pro[i].harmful)
			break;
	}
	if (pick < 0) {
		pick = 0;
		if (kernel_refuses(code, pro[0].size)) {
			free(code);
			return -EINVAL;
		}
	}

	memset(out, 0, sizeof(*out));
	out->sym_vaddr = s->addr;
	out->sym_size = s->size;
	out->insn_offset = (uint32_t)(pro[pick].addr - s->addr);
	out->file_offset = off + out->insn_offset;
	out->emulated = pro[pick].emulated;
	{
		const uint8_t *b = code + out->insn_offset;
		static const uint8_t endbr64[] = { 0xf3, 0x0f, 0x1e, 0xfa };

		/* Mirrors is_uprobe_at_func_entry(): the kernel's user stack walk adds the
		 * return address at [rsp] itself when the probed insn is one of these. */
		out->kernel_adds_caller =
			b[0] == 0x55 ||
			(pro[pick].size == sizeof(endbr64) && !memcmp(b, endbr64, sizeof(endbr64)));
	}
	memcpy(out->insn, pro[pick].text, sizeof(out->insn));
	free(code);
	return 0;
}
