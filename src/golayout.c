#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <capstone/capstone.h>
#include <dwarf.h>
#include <elfutils/libdw.h>

#include "gobin.h"
#include "golayout.h"

/*
 * The versions heaptap was tested with, for binaries without DWARF.  Every entry is what
 * the DWARF of a default build of that version says (tests/unit/test_golayout checks each
 * against a fresh build).  A version not here and a binary without DWARF: GC figures and
 * the special kind stay unknown.
 */
static const struct version_row {
	int minor;
	uint32_t special_kind_off, kind_profile, heap_live_off, heap_marked_off;
	uint32_t numgc_off, pause_ns_off, pause_total_off;
} version_table[] = {
	{ 19, 10, 2, 0x88, 0xb8, 0x1e18, 0xe18, 0xe10 },
	{ 23, 10, 3, 0x68, 0x98, 0x1e18, 0xe18, 0xe10 },
	{ 27, 16, 4, 0x68, 0x98, 0x1e00, 0xe00, 0xdf8 },
};

enum {
	F_RATE = 1 << 0, F_MEMSTATS = 1 << 1, F_KIND_OFF = 1 << 2, F_KIND = 1 << 3,
	F_LIVE = 1 << 4, F_MARKED = 1 << 5, F_NUMGC = 1 << 6, F_PAUSE = 1 << 7,
	F_PAUSE_TOTAL = 1 << 8,
	F_ALL = (1 << 9) - 1,
};

static bool die_udata(Dwarf_Die *die, unsigned name, uint64_t *v)
{
	Dwarf_Attribute a;
	Dwarf_Word w;

	if (!dwarf_attr(die, name, &a) || dwarf_formudata(&a, &w))
		return false;
	*v = w;
	return true;
}

static bool die_addr(Dwarf_Die *die, uint64_t *v)
{
	Dwarf_Attribute a;
	Dwarf_Op *ops;
	size_t nops;

	if (!dwarf_attr(die, DW_AT_location, &a) || dwarf_getlocation(&a, &ops, &nops) ||
	    nops != 1 || ops[0].atom != DW_OP_addr)
		return false;
	*v = ops[0].number;
	return true;
}

/* Offsets of the named members of a structure DIE. */
static void members(Dwarf_Die *st, const char *const names[], uint32_t *offs[],
		    const unsigned flags[], unsigned *found)
{
	Dwarf_Die m;

	if (dwarf_child(st, &m))
		return;
	do {
		const char *mn = dwarf_diename(&m);
		uint64_t off;

		if (dwarf_tag(&m) != DW_TAG_member || !mn)
			continue;
		for (int i = 0; names[i]; i++)
			if (!strcmp(mn, names[i]) && die_udata(&m, DW_AT_data_member_location, &off)) {
				*offs[i] = (uint32_t)off;
				*found |= flags[i];
			}
	} while (dwarf_siblingof(&m, &m) == 0);
}

static void visit(Dwarf_Die *d, struct ht_go_layout *l, unsigned *found)
{
	const char *name = dwarf_diename(d);
	uint64_t v;

	if (!name || strncmp(name, "runtime.", 8))
		return;
	name += 8;
	switch (dwarf_tag(d)) {
	case DW_TAG_constant:
		if (!strcmp(name, "_KindSpecialProfile") && die_udata(d, DW_AT_const_value, &v)) {
			l->kind_profile = (uint32_t)v;
			*found |= F_KIND;
		}
		break;
	case DW_TAG_variable:
		if (!strcmp(name, "MemProfileRate") && die_addr(d, &v)) {
			l->mem_profile_rate = v;
			*found |= F_RATE;
		} else if (!strcmp(name, "memstats") && die_addr(d, &v)) {
			l->memstats = v;
			*found |= F_MEMSTATS;
		}
		break;
	case DW_TAG_structure_type:
		if (!strcmp(name, "special")) {
			members(d, (const char *const[]){ "kind", NULL },
				(uint32_t *[]){ &l->special_kind_off }, (const unsigned[]){ F_KIND_OFF },
				found);
		} else if (!strcmp(name, "gcControllerState")) {
			members(d, (const char *const[]){ "heapLive", "heapMarked", NULL },
				(uint32_t *[]){ &l->heap_live_off, &l->heap_marked_off },
				(const unsigned[]){ F_LIVE, F_MARKED }, found);
		} else if (!strcmp(name, "mstats")) {
			members(d, (const char *const[]){ "numgc", "pause_ns", "pause_total_ns", NULL },
				(uint32_t *[]){ &l->numgc_off, &l->pause_ns_off, &l->pause_total_off },
				(const unsigned[]){ F_NUMGC, F_PAUSE, F_PAUSE_TOTAL }, found);
		}
		break;
	}
}

/* Everything the runtime package's DWARF unit says; what it found, as F_* bits. */
static unsigned from_dwarf(int fd, struct ht_go_layout *l)
{
	Dwarf *dw = dwarf_begin(fd, DWARF_C_READ);
	Dwarf_Off off = 0, next;
	unsigned found = 0;
	size_t hsize;

	if (!dw)
		return 0;
	while (found != F_ALL && dwarf_nextcu(dw, off, &next, &hsize, NULL, NULL, NULL) == 0) {
		Dwarf_Die cu, d;
		const char *cu_name;

		/* Go writes one unit per package, named by its import path. */
		if (dwarf_offdie(dw, off + hsize, &cu) && (cu_name = dwarf_diename(&cu)) &&
		    !strcmp(cu_name, "runtime") && dwarf_child(&cu, &d) == 0) {
			do
				visit(&d, l, &found);
			while (dwarf_siblingof(&d, &d) == 0);
		}
		off = next;
	}
	dwarf_end(dw);
	return found;
}

/* Data symbols from .symtab (a -w build keeps it, -s drops it). */
static unsigned from_symtab(int fd, struct ht_go_layout *l, unsigned found)
{
	Elf *elf = elf_begin(fd, ELF_C_READ, NULL);
	Elf_Scn *scn = NULL;

	if (!elf)
		return found;
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB || !sh.sh_entsize ||
		    !(data = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(data, (int)i, &sym) || GELF_ST_TYPE(sym.st_info) != STT_OBJECT ||
			    !(n = elf_strptr(elf, sh.sh_link, sym.st_name)))
				continue;
			if (!(found & F_RATE) && !strcmp(n, "runtime.MemProfileRate")) {
				l->mem_profile_rate = sym.st_value;
				found |= F_RATE;
			} else if (!(found & F_MEMSTATS) && !strcmp(n, "runtime.memstats")) {
				l->memstats = sym.st_value;
				found |= F_MEMSTATS;
			}
		}
	}
	elf_end(elf);
	return found;
}

/*
 * runtime.profilealloc reads MemProfileRate (to draw the next sample distance) with a
 * RIP-relative 8-byte load, in 1.19-1.27; its other such load (mcache0, inlined getMCache)
 * is followed by a nil test.  MemProfileRate is the one whose initial value in the file is
 * 512 KiB (`var MemProfileRate int = 512 * 1024`; 1.23+), or the one compared with 1 right
 * after (the `MemProfileRate == 1` test of nextSample; 1.19-1.23, where 1.19 sets the
 * variable in runtime.init, so the file holds 0).  This is how a stripped binary's rate is
 * found.
 */
static bool compared_with_one(const cs_insn *insn, size_t n, x86_reg reg)
{
	for (size_t i = 0; i < n && i < 3; i++) {
		const cs_x86 *x = &insn[i].detail->x86;

		if (insn[i].id == X86_INS_CMP && x->op_count == 2 && x->operands[0].type == X86_OP_REG &&
		    x->operands[0].reg == reg && x->operands[1].type == X86_OP_IMM &&
		    x->operands[1].imm == 1)
			return true;
	}
	return false;
}

int golayout__rate_from_code(int fd, const struct ht_gobin *g, uint64_t *rate_vaddr)
{
	uint64_t vaddr, size, foff;
	uint8_t code[256];
	cs_insn *insn = NULL;
	int err = -ENOENT;
	csh cs;
	size_t n;
	ssize_t got;

	if (gobin__lookup(g, "runtime.profilealloc", &vaddr, &size) ||
	    gobin__file_offset(g, vaddr, &foff))
		return -ENOENT;
	if (size > sizeof(code) || !size)
		size = sizeof(code);
	got = pread(fd, code, size, (off_t)foff);
	if (got <= 0 || cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK)
		return -EIO;
	cs_option(cs, CS_OPT_DETAIL, CS_OPT_ON);
	n = cs_disasm(cs, code, (size_t)got, vaddr, 0, &insn);
	for (size_t i = 0; i < n; i++) {
		const cs_x86 *x = &insn[i].detail->x86;
		uint64_t at, off;
		int64_t init = 0;

		if (insn[i].id != X86_INS_MOV || x->op_count != 2 || x->operands[0].type != X86_OP_REG ||
		    x->operands[1].type != X86_OP_MEM || x->operands[1].mem.base != X86_REG_RIP ||
		    x->operands[1].size != 8)
			continue;
		at = insn[i].address + insn[i].size + x->operands[1].mem.disp;
		if (!gobin__file_offset(g, at, &off) &&
		    pread(fd, &init, sizeof(init), (off_t)off) != sizeof(init))
			init = 0;
		if (init == 512 * 1024 || compared_with_one(insn + i + 1, n - i - 1, x->operands[0].reg)) {
			*rate_vaddr = at;
			err = 0;
			break;
		}
	}
	cs_free(insn, n);
	cs_close(&cs);
	return err;
}

static unsigned from_profilealloc(int fd, const struct ht_gobin *g, struct ht_go_layout *l,
				  unsigned found)
{
	if (!(found & F_RATE) && !golayout__rate_from_code(fd, g, &l->mem_profile_rate))
		found |= F_RATE;
	return found;
}

static unsigned from_table(struct ht_go_layout *l, unsigned found)
{
	for (size_t i = 0; i < sizeof(version_table) / sizeof(version_table[0]); i++) {
		const struct version_row *r = &version_table[i];

		if (r->minor != l->minor)
			continue;
		l->special_kind_off = r->special_kind_off;
		l->kind_profile = r->kind_profile;
		l->heap_live_off = r->heap_live_off;
		l->heap_marked_off = r->heap_marked_off;
		l->numgc_off = r->numgc_off;
		l->pause_ns_off = r->pause_ns_off;
		l->pause_total_off = r->pause_total_off;
		return found | F_KIND_OFF | F_KIND | F_LIVE | F_MARKED | F_NUMGC | F_PAUSE |
		       F_PAUSE_TOTAL;
	}
	return found;
}

void golayout__read(const char *path, const struct ht_gobin *g, struct ht_go_layout *l)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), major = 0, minor = 0;
	unsigned found = 0;

	memset(l, 0, sizeof(*l));
	l->special_kind_off = l->kind_profile = l->heap_live_off = l->heap_marked_off =
		l->numgc_off = l->pause_ns_off = l->pause_total_off = GOLAYOUT_UNKNOWN;
	l->source = "none";
	if (!gobin__version(g, &major, &minor, NULL) && major == 1)
		l->minor = minor;
	if (fd >= 0) {
		elf_version(EV_CURRENT);
		found = from_dwarf(fd, l);
		if (found & (F_KIND | F_LIVE | F_NUMGC))
			l->source = "dwarf";
		found = from_symtab(fd, l, found);
		found = from_profilealloc(fd, g, l, found);
		/* The table fills fields as a whole, only for a binary whose DWARF had none. */
		if (!(found & (F_KIND_OFF | F_KIND | F_LIVE | F_NUMGC))) {
			unsigned before = found;

			found = from_table(l, found);
			if (found != before)
				l->source = "version table";
		}
		close(fd);
	}
	if (!(found & (F_KIND_OFF | F_KIND)))
		snprintf(l->note, sizeof(l->note), "go1.%d is not in heaptap's table and the binary "
			 "has no DWARF: in-use figures may include other specials' frees", l->minor);
	else if (!(found & F_RATE))
		snprintf(l->note, sizeof(l->note), "runtime.MemProfileRate not found: sample "
			 "weights assume the default 512 KiB");
	else if ((found & (F_MEMSTATS | F_NUMGC | F_PAUSE | F_PAUSE_TOTAL)) !=
		 (F_MEMSTATS | F_NUMGC | F_PAUSE | F_PAUSE_TOTAL))
		snprintf(l->note, sizeof(l->note), "%s", (found & F_NUMGC) && !(found & F_MEMSTATS)
			 ? "GC pause times need runtime.memstats, which a stripped (-s) binary "
			   "does not name: omitted"
			 : "GC figures omitted: this Go version's runtime layout is unknown");
}

bool golayout__gc_known(const struct ht_go_layout *l)
{
	return l->memstats && l->numgc_off != GOLAYOUT_UNKNOWN &&
	       l->pause_ns_off != GOLAYOUT_UNKNOWN && l->pause_total_off != GOLAYOUT_UNKNOWN;
}
