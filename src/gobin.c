/*
 * gobin: Go version, build settings, functions and source lines of a Go executable.
 *
 * How this works.
 *
 * The file is mapped read-only and read through its program headers: every address the Go
 * tables hold is a virtual address, turned into file bytes through the PT_LOAD segment that
 * holds it.  Section headers are only a shortcut to find things; without them (sstrip)
 * the same things are found by scanning segments.  In a PIE, a pointer stored in data may
 * be left for the dynamic loader to fill: such a word is read from its R_*_RELATIVE
 * relocation's addend (DT_RELA of PT_DYNAMIC) rather than from the file.
 *
 * Build info (see Go's debug/buildinfo): a 32-byte header, 16-aligned, starting with the
 * 14 bytes "\xff Go buildinf:", then the pointer size and a flags byte.  Flag bit 2 (1.18+):
 * two uvarint-length-prefixed strings follow the header, the version and the modinfo.
 * Without it (1.13-1.17): the header holds two pointers to Go string headers {data, len}.
 * The modinfo is framed by 16 sentinel bytes at each end.
 *
 * pclntab (Go's runtime/symtab.go, 1.18+): a header of 8 magic/size bytes and 8 pointer-size
 * words: nfunc, nfiles, textStart (no longer written by 1.26; 1.24 still did), and the
 * offsets from the header of funcnametab, cutab, filetab, pctab and the function table.
 * That table is nfunc pairs of uint32 {entry offset from the text start, offset of the
 * function's _func record from the table}, then the end offset.  A _func record: entryOff,
 * nameOff (into funcnametab, NUL-terminated), args, deferreturn, pcsp, pcfile, pcln
 * (offsets into pctab), npcdata, cuOffset (start of this compilation unit's slice of cutab,
 * whose uint32 entries are offsets into filetab; the pcfile value indexes that slice),
 * (1.20+) startLine, funcID, flag.  A pc-value table is a sequence of (zig-zag value delta,
 * pc delta) uvarint pairs starting from value -1 at the function entry; a zero value delta
 * after the first pair ends it, and the value in force at a pc is the one of the first pair
 * whose pc range passes it.  A function's size is where its pcsp table ends (the linker
 * covers exactly its code; the gap to the next entry is alignment padding), which is what
 * .symtab's st_size says too.  Names are respelled as .symtab spells them (see gobin.h).
 *
 * The text start (moduledata.text, the base of every entry offset) is not the .text section
 * address in general: an externally linked (cgo) binary has C code first.  It is taken from
 * .symtab's runtime.text if present; else from the runtime's moduledata, found as the data
 * word that points to the pclntab (or the relocation that fills it in) and validated by its
 * other fields (funcnametab pointer, ftab length, minpc = text + first entry offset); else
 * from the header's textStart where written; else the .text section.
 */
#include "gobin.h"

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PCLN_MAGIC_118 0xfffffff0u
#define PCLN_MAGIC_120 0xfffffff1u
#define PCLN_MAGIC_116 0xfffffffau
#define PCLN_MAGIC_12  0xfffffffbu

#define BUILDINFO_MAGIC     "\xff Go buildinf:"
#define BUILDINFO_MAGIC_LEN 14
#define BUILDINFO_HDR       32

/* Words of runtime.moduledata, the same from 1.16 to 1.27: pcHeader, then six slices
 * (funcnametab, cutab, filetab, pctab, pclntable, ftab: 3 words each), findfunctab, minpc,
 * maxpc, text. */
#define MD_PCHEADER   0
#define MD_FUNCNAMES  1
#define MD_FTAB_LEN   17
#define MD_MINPC      20
#define MD_TEXT       22
#define MD_WORDS      24

/* _func fields (byte offsets), 1.18+. */
#define FUNC_ENTRYOFF 0
#define FUNC_NAMEOFF  4
#define FUNC_PCSP     16
#define FUNC_PCFILE   20
#define FUNC_PCLN     24
#define FUNC_CUOFF    32
#define FUNC_FUNCID   36 /* 40 from 1.20 on (startLine comes first) */
#define FUNC_FLAG     37 /* 41 from 1.20 on */
#define FUNC_SIZE     40 /* 44 from 1.20 on; the fixed part, nfuncdata being its last byte */
#define FUNCFLAG_ASM  4  /* abi.FuncFlagAsm, the same 1.18-1.27 */

struct seg {
	uint64_t vaddr;
	uint64_t filesz;
	uint64_t offset;
	uint32_t flags;
};

struct reloc {
	uint64_t where; /* vaddr of the word */
	uint64_t value; /* what the loader stores there (relative to a load base of 0) */
};

struct func {
	const char *name; /* borrowed from the mapping, or from owned_names */
	uint64_t addr;
	uint64_t size;
	uint8_t funcid; /* pclntab only: the _func's funcID and flag */
	uint8_t flag;
};

struct pcln {
	const uint8_t *base; /* the header */
	uint64_t size;       /* bytes from base to the end of what holds it */
	uint64_t vaddr;
	uint32_t magic;
	uint8_t quantum;
	uint8_t ptrsize;
	uint64_t nfunc;
	uint64_t funcnames, cutab, filetab, pctab, functab; /* offsets from base */
	uint64_t text;
	bool ok; /* a format we read, with a consistent header */
};

struct setting {
	const char *key; /* both point into settings_buf */
	const char *value;
};

struct ht_gobin {
	const uint8_t *map;
	size_t size;
	uint16_t machine;

	const Elf64_Shdr *sh; /* NULL when the file has no (usable) section headers */
	size_t shnum;
	const char *shstr;
	size_t shstr_size;

	struct seg *segs;
	size_t nsegs;
	struct reloc *relocs; /* sorted by where */
	size_t nrelocs;

	char *version;     /* NULL without build info */
	char *experiments; /* never NULL */
	char *modinfo;     /* never NULL */
	char *settings_buf;
	struct setting *settings;
	size_t nsettings;

	struct pcln pcln;

	struct func *funcs; /* sorted by address, then larger size first */
	size_t nfuncs;
	const struct func **by_name;
	const char *sym_source;
	char **owned_names; /* pclntab names rewritten as .symtab spells them */
	size_t nowned;
};

/* ---- little-endian reads with bounds ---- */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
	return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static uint64_t rdword(const uint8_t *p, unsigned ptrsize)
{
	return ptrsize == 8 ? rd64(p) : rd32(p);
}

/* A NUL-terminated string starting at p, which has avail bytes after it; NULL if the NUL
 * is not there. */
static const char *cstr_at(const uint8_t *p, uint64_t avail)
{
	return memchr(p, 0, avail) ? (const char *)p : NULL;
}

/* Reads a uvarint of at most 32 bits; false past end or if too long. */
static bool uvarint32(const uint8_t **p, const uint8_t *end, uint32_t *out)
{
	uint32_t v = 0;
	unsigned shift;

	for (shift = 0; shift < 35 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint32_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

static bool uvarint64(const uint8_t **p, const uint8_t *end, uint64_t *out)
{
	uint64_t v = 0;
	unsigned shift;

	for (shift = 0; shift < 64 && *p < end; shift += 7) {
		uint8_t b = *(*p)++;

		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*out = v;
			return true;
		}
	}
	return false;
}

/* ---- ELF: segments, sections, relocations ---- */

/* The file bytes of [vaddr, vaddr + len) if one segment holds them all; *avail (optional)
 * gets how many bytes that segment holds from vaddr on. */
static const uint8_t *vaddr_bytes(const struct ht_gobin *g, uint64_t vaddr, uint64_t len,
				  uint64_t *avail)
{
	size_t i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *s = &g->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz &&
		    len <= s->filesz - (vaddr - s->vaddr)) {
			if (avail)
				*avail = s->filesz - (vaddr - s->vaddr);
			return g->map + s->offset + (vaddr - s->vaddr);
		}
	}
	return NULL;
}

static const struct reloc *reloc_at(const struct ht_gobin *g, uint64_t where)
{
	size_t lo = 0, hi = g->nrelocs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->relocs[mid].where < where)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < g->nrelocs && g->relocs[lo].where == where ? &g->relocs[lo] : NULL;
}

/* A pointer-size word of data at vaddr as the loaded program sees it (load base 0). */
static int read_ptr(const struct ht_gobin *g, uint64_t vaddr, unsigned ptrsize, uint64_t *out)
{
	const struct reloc *r = reloc_at(g, vaddr);
	const uint8_t *p;

	if (r) {
		*out = r->value;
		return 0;
	}
	p = vaddr_bytes(g, vaddr, ptrsize, NULL);
	if (!p)
		return -ENOENT;
	*out = rdword(p, ptrsize);
	return 0;
}

static const Elf64_Shdr *section_by_name(const struct ht_gobin *g, const char *name)
{
	size_t i;

	for (i = 0; g->sh && i < g->shnum; i++) {
		uint32_t n = g->sh[i].sh_name;
		const char *s;

		if (n < g->shstr_size && (s = cstr_at((const uint8_t *)g->shstr + n,
						      g->shstr_size - n)) && !strcmp(s, name))
			return &g->sh[i];
	}
	return NULL;
}

/* The section's bytes if they lie in the file. */
static const uint8_t *section_bytes(const struct ht_gobin *g, const Elf64_Shdr *s)
{
	if (s->sh_type == SHT_NOBITS || s->sh_offset > g->size ||
	    s->sh_size > g->size - s->sh_offset)
		return NULL;
	return g->map + s->sh_offset;
}

static int load_segments(struct ht_gobin *g)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)g->map;
	size_t i;

	if (eh->e_phentsize != sizeof(Elf64_Phdr) || eh->e_phoff > g->size ||
	    (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > g->size - eh->e_phoff)
		return -ENOEXEC;
	g->segs = calloc(eh->e_phnum ? eh->e_phnum : 1, sizeof(*g->segs));
	if (!g->segs)
		return -ENOMEM;
	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, g->map + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type != PT_LOAD)
			continue;
		if (ph.p_offset > g->size || ph.p_filesz > g->size - ph.p_offset)
			continue; /* truncated file: its bytes are not here */
		g->segs[g->nsegs++] = (struct seg){
			.vaddr = ph.p_vaddr,
			.filesz = ph.p_filesz,
			.offset = ph.p_offset,
			.flags = ph.p_flags,
		};
	}
	return 0;
}

/* Section headers are optional: anything odd about them and we go without. */
static void load_sections(struct ht_gobin *g)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)g->map;
	const Elf64_Shdr *sh;
	size_t shnum, shstrndx;

	if (!eh->e_shoff || eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_shoff > g->size ||
	    g->size - eh->e_shoff < sizeof(Elf64_Shdr) || eh->e_shoff % 8)
		return;
	sh = (const Elf64_Shdr *)(g->map + eh->e_shoff);
	shnum = eh->e_shnum ? eh->e_shnum : sh[0].sh_size;
	shstrndx = eh->e_shstrndx == SHN_XINDEX ? sh[0].sh_link : eh->e_shstrndx;
	if (shnum > (g->size - eh->e_shoff) / sizeof(Elf64_Shdr) || shstrndx >= shnum)
		return;
	g->sh = sh;
	g->shnum = shnum;
	g->shstr = (const char *)section_bytes(g, &sh[shstrndx]);
	g->shstr_size = g->shstr ? sh[shstrndx].sh_size : 0;
	if (!g->shstr)
		g->sh = NULL;
}

static int reloc_cmp(const void *a, const void *b)
{
	const struct reloc *x = a, *y = b;

	return x->where < y->where ? -1 : x->where > y->where;
}

static uint32_t relative_type(uint16_t machine)
{
	switch (machine) {
	case EM_X86_64:
		return R_X86_64_RELATIVE;
	case EM_AARCH64:
		return R_AARCH64_RELATIVE;
	default:
		return UINT32_MAX;
	}
}

/* The R_*_RELATIVE entries of DT_RELA, so PIE data pointers read as the loader sets them. */
static int load_relocs(struct ht_gobin *g)
{
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)g->map;
	uint64_t rela = 0, relasz = 0, relaent = sizeof(Elf64_Rela), n, i;
	const uint8_t *dyn = NULL, *tab;
	uint64_t dynsz = 0, avail;
	uint32_t want = relative_type(g->machine);

	for (i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph;

		memcpy(&ph, g->map + eh->e_phoff + i * sizeof(ph), sizeof(ph));
		if (ph.p_type == PT_DYNAMIC && ph.p_offset <= g->size &&
		    ph.p_filesz <= g->size - ph.p_offset) {
			dyn = g->map + ph.p_offset;
			dynsz = ph.p_filesz;
		}
	}
	for (i = 0; dyn && i + sizeof(Elf64_Dyn) <= dynsz; i += sizeof(Elf64_Dyn)) {
		int64_t tag = (int64_t)rd64(dyn + i);
		uint64_t val = rd64(dyn + i + 8);

		if (tag == DT_NULL)
			break;
		if (tag == DT_RELA)
			rela = val;
		else if (tag == DT_RELASZ)
			relasz = val;
		else if (tag == DT_RELAENT)
			relaent = val;
	}
	if (!rela || !relasz || relaent != sizeof(Elf64_Rela) || want == UINT32_MAX)
		return 0;
	tab = vaddr_bytes(g, rela, 0, &avail);
	if (!tab)
		return 0;
	n = (relasz < avail ? relasz : avail) / sizeof(Elf64_Rela);
	g->relocs = calloc(n ? n : 1, sizeof(*g->relocs));
	if (!g->relocs)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		const uint8_t *r = tab + i * sizeof(Elf64_Rela);

		if (ELF64_R_TYPE(rd64(r + 8)) != want)
			continue;
		g->relocs[g->nrelocs++] = (struct reloc){ rd64(r), rd64(r + 16) };
	}
	qsort(g->relocs, g->nrelocs, sizeof(*g->relocs), reloc_cmp);
	return 0;
}

/* ---- build info ---- */

/* A copy of the len bytes at p (which may hold NULs), NUL-terminated. */
static char *memdup0(const uint8_t *p, uint64_t len, uint64_t *lenp)
{
	char *s = malloc(len + 1);

	if (s) {
		memcpy(s, p, len);
		s[len] = '\0';
		*lenp = len;
	}
	return s;
}

/* A Go string {data, len} at vaddr, copied and NUL-terminated. */
static int read_gostring(const struct ht_gobin *g, uint64_t vaddr, unsigned ptrsize, char **out,
			 uint64_t *lenp)
{
	uint64_t data, len;
	const uint8_t *p;

	if (read_ptr(g, vaddr, ptrsize, &data) || read_ptr(g, vaddr + ptrsize, ptrsize, &len))
		return -EINVAL;
	if (len > 1 << 24 || !(p = vaddr_bytes(g, data, len, NULL)))
		return -EINVAL;
	*out = memdup0(p, len, lenp);
	return *out ? 0 : -ENOMEM;
}

static int read_varstring(const uint8_t **p, const uint8_t *end, char **out, uint64_t *lenp)
{
	uint64_t len;

	if (!uvarint64(p, end, &len) || len > (uint64_t)(end - *p))
		return -EINVAL;
	*out = memdup0(*p, len, lenp);
	if (!*out)
		return -ENOMEM;
	*p += len;
	return 0;
}

/* Decodes the blob at vaddr (bytes p, avail of them) into version and modinfo. */
static int decode_buildinfo(struct ht_gobin *g, uint64_t vaddr, const uint8_t *p, uint64_t avail,
			    char **vers, char **mod, uint64_t *modlen)
{
	unsigned ptrsize = p[14];
	uint64_t vlen, vhdr, mhdr;
	int err;

	if (p[15] & 2) {
		const uint8_t *q = p + BUILDINFO_HDR, *end = p + avail;

		err = read_varstring(&q, end, vers, &vlen);
		if (!err)
			err = read_varstring(&q, end, mod, modlen);
		return err;
	}
	if ((p[15] & 1) || (ptrsize != 4 && ptrsize != 8))
		return -ENOTSUP; /* big-endian or odd: not a target of ours */
	/* Two pointers to string headers: runtime.buildVersion and runtime.modinfo. */
	if (read_ptr(g, vaddr + 16, ptrsize, &vhdr) ||
	    read_ptr(g, vaddr + 16 + ptrsize, ptrsize, &mhdr))
		return -EINVAL;
	err = read_gostring(g, vhdr, ptrsize, vers, &vlen);
	if (!err)
		err = read_gostring(g, mhdr, ptrsize, mod, modlen);
	return err;
}

/* Finds the blob in [vaddr, vaddr + avail) at a 16-aligned address. */
static bool find_buildinfo_in(struct ht_gobin *g, uint64_t vaddr, const uint8_t *p,
			      uint64_t avail, char **vers, char **mod, uint64_t *modlen)
{
	uint64_t i = (16 - vaddr % 16) % 16;

	for (; i + BUILDINFO_HDR <= avail; i += 16) {
		if (p[i] != 0xff || memcmp(p + i, BUILDINFO_MAGIC, BUILDINFO_MAGIC_LEN))
			continue;
		if (!decode_buildinfo(g, vaddr + i, p + i, avail - i, vers, mod, modlen))
			return true;
		free(*vers);
		free(*mod);
		*vers = *mod = NULL;
	}
	return false;
}

/* Splits "build\tKEY=VALUE" lines of the modinfo into settings. */
static int parse_settings(struct ht_gobin *g)
{
	size_t n = 0, cap = 0;
	char *line, *next;

	g->settings_buf = strdup(g->modinfo);
	if (!g->settings_buf)
		return -ENOMEM;
	for (line = g->settings_buf; line && *line; line = next) {
		char *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		if (strncmp(line, "build\t", 6) || !(eq = strchr(line + 6, '=')))
			continue;
		*eq = '\0';
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct setting *s = realloc(g->settings, ncap * sizeof(*s));

			if (!s)
				return -ENOMEM;
			g->settings = s;
			cap = ncap;
		}
		g->settings[n++] = (struct setting){ line + 6, eq + 1 };
	}
	g->nsettings = n;
	return 0;
}

static int load_buildinfo(struct ht_gobin *g)
{
	const Elf64_Shdr *s = section_by_name(g, ".go.buildinfo");
	char *vers = NULL, *mod = NULL, *x;
	uint64_t len = 0;
	const char *exp;
	bool found = false;
	size_t i;
	int err;

	if (s) {
		const uint8_t *p = section_bytes(g, s);

		if (p)
			found = find_buildinfo_in(g, s->sh_addr, p, s->sh_size, &vers, &mod, &len);
	}
	/* No section headers: the blob is in a writable segment, at its start when Go links,
	 * anywhere in it after an external linker's PIE layout; so the whole of each is searched
	 * (16-byte steps: a few milliseconds for tens of MB). */
	for (i = 0; !found && i < g->nsegs; i++) {
		const struct seg *sg = &g->segs[i];

		if ((sg->flags & (PF_W | PF_X)) != PF_W)
			continue;
		found = find_buildinfo_in(g, sg->vaddr, g->map + sg->offset, sg->filesz, &vers,
					  &mod, &len);
	}
	if (found && !*vers) {
		free(vers);
		free(mod);
		found = false;
	}
	if (!found) {
		g->experiments = strdup("");
		g->modinfo = strdup("");
		return g->experiments && g->modinfo ? parse_settings(g) : -ENOMEM;
	}
	g->version = vers;
	/* Framing: 16 sentinel bytes (which may hold NULs) before and after the text. */
	if (len >= 33 && mod[len - 17] == '\n') {
		memmove(mod, mod + 16, len - 32);
		mod[len - 32] = '\0';
	} else {
		mod[0] = '\0';
	}
	g->modinfo = mod;
	err = parse_settings(g);
	if (err)
		return err;

	/* "go1.19.8 X:exp1,exp2" (newer: "go1.27.3-X:exp1,exp2"): the suffix is the canonical
	 * experiment list. */
	x = strstr(g->version, " X:");
	if (!x)
		x = strstr(g->version, "-X:");
	if (x) {
		*x = '\0';
		exp = x + 3;
	} else {
		exp = gobin__build_setting(g, "GOEXPERIMENT");
	}
	g->experiments = strdup(exp ? exp : "");
	return g->experiments ? 0 : -ENOMEM;
}

/* ---- pclntab ---- */

/* Checks the header at p (avail bytes) and fills pl; the text start is found later. */
static bool parse_pcln_header(struct pcln *pl, const uint8_t *p, uint64_t avail, uint64_t vaddr)
{
	uint32_t magic;
	unsigned ps;
	uint64_t nfiles, w[8];
	int i;

	if (avail < 8)
		return false;
	magic = rd32(p);
	if (magic != PCLN_MAGIC_118 && magic != PCLN_MAGIC_120 && magic != PCLN_MAGIC_116 &&
	    magic != PCLN_MAGIC_12)
		return false;
	if (p[4] || p[5] || (p[6] != 1 && p[6] != 2 && p[6] != 4) || (p[7] != 4 && p[7] != 8))
		return false;
	memset(pl, 0, sizeof(*pl));
	pl->base = p;
	pl->size = avail;
	pl->vaddr = vaddr;
	pl->magic = magic;
	pl->quantum = p[6];
	pl->ptrsize = ps = p[7];
	if (magic != PCLN_MAGIC_118 && magic != PCLN_MAGIC_120)
		return true; /* recognized, not read */
	if (avail < 8 + 8 * (uint64_t)ps)
		return false;
	for (i = 0; i < 8; i++)
		w[i] = rdword(p + 8 + i * ps, ps);
	pl->nfunc = w[0];
	nfiles = w[1];
	pl->funcnames = w[3];
	pl->cutab = w[4];
	pl->filetab = w[5];
	pl->pctab = w[6];
	pl->functab = w[7];
	if (!pl->nfunc || pl->nfunc > avail || nfiles > avail)
		return false;
	if (pl->funcnames >= avail || pl->cutab >= avail || pl->filetab >= avail ||
	    pl->pctab >= avail || pl->functab >= avail ||
	    (2 * pl->nfunc + 1) * 4 > avail - pl->functab)
		return false;
	pl->ok = true;
	return true;
}

static bool pcln_at(const struct pcln *pl, uint64_t off, uint64_t len)
{
	return off <= pl->size && len <= pl->size - off;
}

static uint32_t ftab_word(const struct pcln *pl, uint64_t i)
{
	return rd32(pl->base + pl->functab + i * 4);
}

/* The _func record of function index i, or NULL if it lies outside the table. */
static const uint8_t *func_rec(const struct pcln *pl, uint64_t i)
{
	uint64_t off = pl->functab + ftab_word(pl, 2 * i + 1);
	unsigned extra = pl->magic == PCLN_MAGIC_120 ? 4 : 0;

	return pcln_at(pl, off, FUNC_SIZE + extra) ? pl->base + off : NULL;
}

static const char *func_name(const struct pcln *pl, const uint8_t *f)
{
	int32_t nameoff = (int32_t)rd32(f + FUNC_NAMEOFF);
	uint64_t off = pl->funcnames + (uint64_t)nameoff;

	if (nameoff < 0 || off >= pl->size)
		return NULL;
	return cstr_at(pl->base + off, pl->size - off);
}

/*
 * Walks the pc-value table at pctab offset tab of a function at entry and returns in *val
 * the value in force at target.  0; -ENOENT if target is past the table (then *end, if
 * given, is where the table ends: the end of the function's code); -EINVAL if damaged.
 */
static int pcvalue(const struct pcln *pl, uint32_t tab, uint64_t entry, uint64_t target,
		   int32_t *val, uint64_t *end)
{
	const uint8_t *p, *lim = pl->base + pl->size;
	uint64_t pc = entry;
	uint32_t v = (uint32_t)-1;

	if (!tab)
		return -ENOENT; /* no table: the runtime reads it as value -1 everywhere */
	if (pl->pctab + tab >= pl->size)
		return -EINVAL;
	p = pl->base + pl->pctab + tab;
	for (;;) {
		uint32_t uv, pcd;

		if (!uvarint32(&p, lim, &uv))
			return -EINVAL;
		if (uv == 0 && pc != entry)
			break;
		if (!uvarint32(&p, lim, &pcd))
			return -EINVAL;
		v += (uv >> 1) ^ (0u - (uv & 1));
		pc += (uint64_t)pcd * pl->quantum;
		if (target < pc) {
			*val = (int32_t)v;
			return 0;
		}
	}
	if (end)
		*end = pc;
	return -ENOENT;
}

/* Text start from the runtime's moduledata: the data word pointing at the pclntab whose
 * neighbours agree with the header. */
static bool md_text_at(const struct ht_gobin *g, uint64_t md, uint64_t *text)
{
	const struct pcln *pl = &g->pcln;
	unsigned ps = pl->ptrsize;
	uint64_t w, minpc, t;
	const uint8_t *p;

	if (read_ptr(g, md + MD_FUNCNAMES * ps, ps, &w) || w != pl->vaddr + pl->funcnames)
		return false;
	p = vaddr_bytes(g, md, (uint64_t)MD_WORDS * ps, NULL);
	if (!p || rdword(p + MD_FTAB_LEN * ps, ps) != pl->nfunc + 1)
		return false;
	if (read_ptr(g, md + MD_TEXT * ps, ps, &t) || read_ptr(g, md + MD_MINPC * ps, ps, &minpc) ||
	    minpc != t + ftab_word(pl, 0))
		return false;
	*text = t;
	return true;
}

static bool text_from_moduledata(const struct ht_gobin *g, uint64_t *text)
{
	const struct pcln *pl = &g->pcln;
	unsigned ps = pl->ptrsize;
	size_t i;

	for (i = 0; i < g->nrelocs; i++)
		if (g->relocs[i].value == pl->vaddr && md_text_at(g, g->relocs[i].where, text))
			return true;
	for (i = 0; i < g->nsegs; i++) {
		const struct seg *s = &g->segs[i];
		const uint8_t *p = g->map + s->offset;
		uint64_t off = (ps - s->vaddr % ps) % ps;

		if (!(s->flags & PF_W))
			continue;
		for (; off + (uint64_t)MD_WORDS * ps <= s->filesz; off += ps)
			if (rdword(p + off, ps) == pl->vaddr && md_text_at(g, s->vaddr + off, text))
				return true;
	}
	return false;
}

static void find_text_start(struct ht_gobin *g, uint64_t symtab_text, bool have_symtab_text)
{
	struct pcln *pl = &g->pcln;
	const Elf64_Shdr *s;
	uint64_t t;

	if (have_symtab_text) {
		pl->text = symtab_text;
		return;
	}
	if (text_from_moduledata(g, &t)) {
		pl->text = t;
		return;
	}
	if (!read_ptr(g, pl->vaddr + 8 + 2 * pl->ptrsize, pl->ptrsize, &t) && t) {
		pl->text = t;
		return;
	}
	s = section_by_name(g, ".text");
	if (s) {
		pl->text = s->sh_addr;
		return;
	}
	pl->ok = false; /* nothing to anchor the offsets to */
}

static bool pcln_in_segment(struct ht_gobin *g, const struct seg *s)
{
	const uint8_t *p = g->map + s->offset;
	uint64_t off = (4 - s->vaddr % 4) % 4;

	for (; off + 16 <= s->filesz; off += 4) {
		uint32_t m = rd32(p + off);

		if ((m != PCLN_MAGIC_118 && m != PCLN_MAGIC_120) || p[off + 4] || p[off + 5])
			continue;
		if (parse_pcln_header(&g->pcln, p + off, s->filesz - off, s->vaddr + off) &&
		    g->pcln.ok)
			return true;
	}
	return false;
}

static void load_pclntab(struct ht_gobin *g, uint64_t symtab_text, bool have_symtab_text)
{
	static const char *const names[] = { ".gopclntab", ".data.rel.ro.gopclntab" };
	bool found = false;
	size_t i;

	for (i = 0; !found && i < sizeof(names) / sizeof(names[0]); i++) {
		const Elf64_Shdr *s = section_by_name(g, names[i]);
		const uint8_t *p = s ? section_bytes(g, s) : NULL;

		if (p)
			found = parse_pcln_header(&g->pcln, p, s->sh_size, s->sh_addr);
	}
	/* An externally linked PIE merges it into .data.rel.ro; sstrip drops the headers. */
	for (i = 0; !found && i < g->nsegs; i++)
		if (!(g->segs[i].flags & PF_X))
			found = pcln_in_segment(g, &g->segs[i]);
	if (!found) {
		memset(&g->pcln, 0, sizeof(g->pcln));
		return;
	}
	if (g->pcln.ok)
		find_text_start(g, symtab_text, have_symtab_text);
}

/* ---- the function list ---- */

static int func_addr_cmp(const void *a, const void *b)
{
	const struct func *x = a, *y = b;

	if (x->addr != y->addr)
		return x->addr < y->addr ? -1 : 1;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return strcmp(x->name, y->name);
}

static int func_name_cmp(const void *a, const void *b)
{
	const struct func *x = *(const struct func *const *)a, *y = *(const struct func *const *)b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return x->addr < y->addr ? -1 : x->addr > y->addr;
}

static int push_func(struct ht_gobin *g, size_t *cap, const char *name, uint64_t addr,
		     uint64_t size, uint8_t funcid, uint8_t flag)
{
	if (g->nfuncs == *cap) {
		size_t ncap = *cap ? *cap * 2 : 1024;
		struct func *f = realloc(g->funcs, ncap * sizeof(*f));

		if (!f)
			return -ENOMEM;
		g->funcs = f;
		*cap = ncap;
	}
	g->funcs[g->nfuncs++] = (struct func){ name, addr, size, funcid, flag };
	return 0;
}

/* FUNC symbols of .symtab; *text gets runtime.text when it is there. */
static int load_symtab(struct ht_gobin *g, size_t *cap, uint64_t *text, bool *have_text)
{
	const Elf64_Shdr *symtab = NULL, *strtab;
	const uint8_t *syms;
	const char *strs;
	size_t i, n;

	for (i = 0; g->sh && i < g->shnum; i++)
		if (g->sh[i].sh_type == SHT_SYMTAB)
			symtab = &g->sh[i];
	if (!symtab || symtab->sh_link >= g->shnum || symtab->sh_entsize != sizeof(Elf64_Sym))
		return 0;
	strtab = &g->sh[symtab->sh_link];
	syms = section_bytes(g, symtab);
	strs = (const char *)section_bytes(g, strtab);
	if (!syms || !strs)
		return 0;
	n = symtab->sh_size / sizeof(Elf64_Sym);
	for (i = 1; i < n; i++) {
		Elf64_Sym sym;
		const char *name;
		int err;

		memcpy(&sym, syms + i * sizeof(sym), sizeof(sym));
		if (ELF64_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_shndx == SHN_UNDEF ||
		    !sym.st_value || sym.st_name >= strtab->sh_size)
			continue;
		name = cstr_at((const uint8_t *)strs + sym.st_name, strtab->sh_size - sym.st_name);
		if (!name || !*name)
			continue;
		if (!strcmp(name, "runtime.text")) {
			*text = sym.st_value;
			*have_text = true;
		}
		err = push_func(g, cap, name, sym.st_value, sym.st_size, 0, 0);
		if (err)
			return err;
	}
	return 0;
}

/* Keeps name (malloc'd) until close; NULL and frees it if that fails. */
static char *own_name(struct ht_gobin *g, char *name)
{
	char **owned;

	if (!name)
		return NULL;
	owned = realloc(g->owned_names, (g->nowned + 1) * sizeof(*owned));
	if (!owned) {
		free(name);
		return NULL;
	}
	g->owned_names = owned;
	g->owned_names[g->nowned++] = name;
	return name;
}

#define MIDDLE_DOT "\xc2\xb7" /* U+00B7 in UTF-8 */

/* name with every middle dot as '.' (malloc'd), as the linker writes .symtab names "for
 * ASCII-only tools"; NULL if out of memory. */
static char *dotted(const char *name)
{
	char *out = malloc(strlen(name) + 1), *o = out;

	if (!out)
		return NULL;
	while (*name) {
		if (!strncmp(name, MIDDLE_DOT, 2)) {
			*o++ = '.';
			name += 2;
		} else {
			*o++ = *name++;
		}
	}
	*o = '\0';
	return out;
}

static int load_pcln_funcs(struct ht_gobin *g, size_t *cap)
{
	const struct pcln *pl = &g->pcln;
	unsigned extra = pl->magic == PCLN_MAGIC_120 ? 4 : 0;
	uint64_t i;

	for (i = 0; i < pl->nfunc; i++) {
		uint32_t off = ftab_word(pl, 2 * i), next = ftab_word(pl, 2 * i + 2);
		const uint8_t *f = func_rec(pl, i);
		uint64_t entry = pl->text + off, end;
		const char *name;
		int32_t dummy;
		int err;

		if (!f || !(name = func_name(pl, f)) || next < off)
			continue;
		if (strstr(name, MIDDLE_DOT) && !(name = own_name(g, dotted(name))))
			return -ENOMEM;
		/* Size: where the pcsp table ends; failing that, up to the next function. */
		if (pcvalue(pl, rd32(f + FUNC_PCSP), entry, UINT64_MAX, &dummy, &end) != -ENOENT ||
		    end <= entry || end > pl->text + next)
			end = pl->text + next;
		err = push_func(g, cap, name, entry, end - entry, f[FUNC_FUNCID + extra],
				f[FUNC_FLAG + extra]);
		if (err)
			return err;
	}
	return 0;
}

/* Of two pclntab functions sharing a name, whether a is the one .symtab would give the plain
 * name: the ABIInternal one.  The other is an ABI0 twin, named "NAME.abi0" there: the ABI0
 * wrapper of a Go function (funcID wrapper, where the real one is usually funcID normal) or
 * an assembly function (flag ASM) whose twin is its ABIInternal wrapper. */
static bool abi_internal_first(const struct func *a, const struct func *b)
{
	bool a_asm = a->flag & FUNCFLAG_ASM, b_asm = b->flag & FUNCFLAG_ASM;

	if (a_asm != b_asm)
		return !a_asm;
	if (!a->funcid != !b->funcid)
		return !a->funcid;
	if (a->size != b->size)
		return a->size > b->size; /* ABI wrappers are a few instructions */
	return a->addr < b->addr;
}

/* Names the ABI0 twins of pclntab functions "NAME.abi0", as the linker does in .symtab, so
 * a stripped binary names every function as its unstripped twin does. */
static int name_abi_twins(struct ht_gobin *g)
{
	size_t i, j, best, k;

	qsort(g->by_name, g->nfuncs, sizeof(*g->by_name), func_name_cmp);
	for (i = 0; i < g->nfuncs; i = j) {
		for (j = i + 1; j < g->nfuncs && !strcmp(g->by_name[i]->name, g->by_name[j]->name);)
			j++;
		if (j - i < 2)
			continue;
		for (best = i, k = i + 1; k < j; k++)
			if (abi_internal_first(g->by_name[k], g->by_name[best]))
				best = k;
		for (k = i; k < j; k++) {
			struct func *f = (struct func *)g->by_name[k];
			char *name;

			if (k == best)
				continue;
			if (asprintf(&name, "%s.abi0", f->name) < 0 || !own_name(g, name))
				return -ENOMEM;
			f->name = name;
		}
	}
	return 0;
}

static int load_funcs(struct ht_gobin *g)
{
	uint64_t text = 0;
	bool have_text = false;
	size_t cap = 0, i;
	int err;

	err = load_symtab(g, &cap, &text, &have_text);
	if (err)
		return err;
	load_pclntab(g, text, have_text);
	g->sym_source = "none";
	if (g->nfuncs) {
		g->sym_source = "symtab";
	} else if (g->pcln.ok) {
		err = load_pcln_funcs(g, &cap);
		if (err)
			return err;
		if (g->nfuncs)
			g->sym_source = "pclntab";
	}
	if (g->nfuncs)
		qsort(g->funcs, g->nfuncs, sizeof(*g->funcs), func_addr_cmp);
	g->by_name = calloc(g->nfuncs ? g->nfuncs : 1, sizeof(*g->by_name));
	if (!g->by_name)
		return -ENOMEM;
	for (i = 0; i < g->nfuncs; i++)
		g->by_name[i] = &g->funcs[i];
	if (!strcmp(g->sym_source, "pclntab")) {
		err = name_abi_twins(g);
		if (err)
			return err;
	}
	qsort(g->by_name, g->nfuncs, sizeof(*g->by_name), func_name_cmp);
	return 0;
}

/* ---- public ---- */

struct ht_gobin *gobin__open(const char *path)
{
	struct ht_gobin *g;
	struct stat st;
	const Elf64_Ehdr *eh;
	void *map;
	int fd, err;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	if (fstat(fd, &st)) {
		err = errno;
		close(fd);
		errno = err;
		return NULL;
	}
	if (!S_ISREG(st.st_mode)) {
		close(fd);
		errno = S_ISDIR(st.st_mode) ? EISDIR : ENOEXEC;
		return NULL;
	}
	if ((uint64_t)st.st_size < sizeof(Elf64_Ehdr)) {
		close(fd);
		errno = ENOEXEC;
		return NULL;
	}
	map = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	err = errno;
	close(fd);
	if (map == MAP_FAILED) {
		errno = err;
		return NULL;
	}
	g = calloc(1, sizeof(*g));
	if (!g) {
		munmap(map, st.st_size);
		errno = ENOMEM;
		return NULL;
	}
	g->map = map;
	g->size = st.st_size;
	g->sym_source = "none";

	eh = (const Elf64_Ehdr *)g->map;
	if (memcmp(eh->e_ident, ELFMAG, SELFMAG) || eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB) {
		err = -ENOEXEC;
		goto fail;
	}
	g->machine = eh->e_machine;
	err = load_segments(g);
	if (err)
		goto fail;
	load_sections(g);
	err = load_relocs(g);
	if (!err)
		err = load_buildinfo(g);
	if (!err)
		err = load_funcs(g);
	if (err)
		goto fail;
	return g;
fail:
	gobin__close(g);
	errno = -err;
	return NULL;
}

void gobin__close(struct ht_gobin *g)
{
	if (!g)
		return;
	if (g->map)
		munmap((void *)g->map, g->size);
	free(g->segs);
	free(g->relocs);
	free(g->version);
	free(g->experiments);
	free(g->modinfo);
	free(g->settings_buf);
	free(g->settings);
	free(g->funcs);
	free(g->by_name);
	while (g->nowned)
		free(g->owned_names[--g->nowned]);
	free(g->owned_names);
	free(g);
}

bool gobin__is_go(const struct ht_gobin *g)
{
	return g->version || g->pcln.magic;
}

const char *gobin__version_string(const struct ht_gobin *g)
{
	return g->version;
}

/* Reads decimal digits at *s (at least one, at most six). */
static bool read_num(const char **s, int *out)
{
	int v = 0, n;

	for (n = 0; (*s)[n] >= '0' && (*s)[n] <= '9'; n++) {
		if (n == 6)
			return false;
		v = v * 10 + ((*s)[n] - '0');
	}
	if (!n)
		return false;
	*s += n;
	*out = v;
	return true;
}

int gobin__version(const struct ht_gobin *g, int *major, int *minor, int *patch)
{
	int v[3] = { 0, 0, 0 };
	const char *s;

	if (!g->version)
		return -ENOENT;
	/* "go1.19.8", "go1.21rc2", "devel go1.24-abcdef ...": the first "go<digit>". */
	for (s = g->version; (s = strstr(s, "go")); s += 2)
		if (s[2] >= '0' && s[2] <= '9')
			break;
	if (!s)
		return -EINVAL;
	s += 2;
	if (!read_num(&s, &v[0]) || *s++ != '.' || !read_num(&s, &v[1]))
		return -EINVAL;
	if (*s == '.') {
		s++;
		if (!read_num(&s, &v[2]))
			v[2] = 0;
	}
	if (major)
		*major = v[0];
	if (minor)
		*minor = v[1];
	if (patch)
		*patch = v[2];
	return 0;
}

const char *gobin__experiments(const struct ht_gobin *g)
{
	return g->experiments;
}

const char *gobin__modinfo(const struct ht_gobin *g)
{
	return g->modinfo;
}

const char *gobin__build_setting(const struct ht_gobin *g, const char *key)
{
	size_t i;

	for (i = 0; i < g->nsettings; i++)
		if (!strcmp(g->settings[i].key, key))
			return g->settings[i].value;
	return NULL;
}

const char *gobin__symbol_source(const struct ht_gobin *g)
{
	return g->sym_source;
}

uint32_t gobin__pclntab_magic(const struct ht_gobin *g)
{
	return g->pcln.magic;
}

/* Index of the first by_name entry not less than name (by its first n bytes when prefix). */
static size_t name_lower_bound(const struct ht_gobin *g, const char *name, size_t n)
{
	size_t lo = 0, hi = g->nfuncs;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strncmp(g->by_name[mid]->name, name, n) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static const struct func *by_name_exact(const struct ht_gobin *g, const char *name)
{
	size_t i = name_lower_bound(g, name, strlen(name) + 1);

	return i < g->nfuncs && !strcmp(g->by_name[i]->name, name) ? g->by_name[i] : NULL;
}

/* name with everything between its first '[' and last ']' replaced by "...", as Go 1.18-1.19
 * linkers write generic and array-typed names into pclntab; false if that changes nothing. */
static bool shorten_brackets(const char *name, char *out, size_t outsz)
{
	const char *open = strchr(name, '['), *close = strrchr(name, ']');

	if (!open || !close || close < open + 1 || !strncmp(open, "[...]", 5))
		return false;
	return snprintf(out, outsz, "%.*s[...]%s", (int)(open - name), name, close + 1) <
	       (int)outsz;
}

int gobin__lookup(const struct ht_gobin *g, const char *name, uint64_t *addr, uint64_t *size)
{
	const struct func *f = by_name_exact(g, name);
	size_t len = strlen(name);
	char alt[1024];

	/* .symtab keeps only "NAME.abi0" for an assembly function without a wrapper, where
	 * pclntab says NAME: either spelling finds it in both. */
	if (!f && len > 5 && !strcmp(name + len - 5, ".abi0") && len - 5 < sizeof(alt)) {
		memcpy(alt, name, len - 5);
		alt[len - 5] = '\0';
		f = by_name_exact(g, alt);
	} else if (!f && snprintf(alt, sizeof(alt), "%s.abi0", name) < (int)sizeof(alt)) {
		f = by_name_exact(g, alt);
	}
	if (!f && shorten_brackets(name, alt, sizeof(alt)))
		f = by_name_exact(g, alt);
	if (!f && strstr(name, MIDDLE_DOT)) {
		char *d = dotted(name);

		if (!d)
			return -ENOMEM;
		if (strcmp(d, name))
			f = by_name_exact(g, d);
		free(d);
	}
	if (!f)
		return -ENOENT;
	if (addr)
		*addr = f->addr;
	if (size)
		*size = f->size;
	return 0;
}

int gobin__func_at(const struct ht_gobin *g, uint64_t vaddr, const char **name, uint64_t *entry)
{
	size_t lo = 0, hi = g->nfuncs, i, steps;

	/* The first function starting above vaddr; candidates are just before it. */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (g->funcs[mid].addr <= vaddr)
			lo = mid + 1;
		else
			hi = mid;
	}
	/* Zero-size markers (runtime.text, runtime.etext) can sit among the candidates. */
	for (i = lo, steps = 0; i > 0 && steps < 16; i--, steps++) {
		const struct func *f = &g->funcs[i - 1];

		if (vaddr - f->addr < f->size) {
			if (name)
				*name = f->name;
			if (entry)
				*entry = f->addr;
			return 0;
		}
		if (f->size)
			break;
	}
	return -ENOENT;
}

int gobin__line_at(const struct ht_gobin *g, uint64_t pc, const char **file, int *line)
{
	const struct pcln *pl = &g->pcln;
	uint64_t lo = 0, hi, off, entry, fileoff;
	const uint8_t *f;
	int32_t fileno, ln;
	uint32_t cu;
	int err;

	if (!pl->ok)
		return -ENOTSUP;
	if (pc < pl->text || pc - pl->text >= ftab_word(pl, 2 * pl->nfunc))
		return -ENOENT;
	off = pc - pl->text;
	hi = pl->nfunc;
	while (lo < hi) { /* the first function with entry > off */
		uint64_t mid = lo + (hi - lo) / 2;

		if (ftab_word(pl, 2 * mid) <= off)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (!lo)
		return -ENOENT;
	f = func_rec(pl, lo - 1);
	if (!f)
		return -EINVAL;
	entry = pl->text + rd32(f + FUNC_ENTRYOFF);
	if (pc < entry)
		return -EINVAL;
	err = pcvalue(pl, rd32(f + FUNC_PCFILE), entry, pc, &fileno, NULL);
	if (!err)
		err = pcvalue(pl, rd32(f + FUNC_PCLN), entry, pc, &ln, NULL);
	if (err)
		return err;
	if (fileno < 0 || ln < 0)
		return -ENOENT;
	cu = rd32(f + FUNC_CUOFF);
	fileoff = pl->cutab + ((uint64_t)cu + (uint64_t)fileno) * 4;
	if (!pcln_at(pl, fileoff, 4))
		return -EINVAL;
	fileoff = rd32(pl->base + fileoff);
	if (fileoff == UINT32_MAX)
		return -ENOENT;
	fileoff += pl->filetab;
	if (fileoff >= pl->size)
		return -EINVAL;
	if (file && !(*file = cstr_at(pl->base + fileoff, pl->size - fileoff)))
		return -EINVAL;
	if (line)
		*line = ln;
	return 0;
}

int gobin__for_each_func(const struct ht_gobin *g, const char *prefix, gobin_func_cb cb,
			 void *arg)
{
	size_t n = strlen(prefix), i;

	for (i = name_lower_bound(g, prefix, n); i < g->nfuncs; i++) {
		const struct func *f = g->by_name[i];
		int ret;

		if (strncmp(f->name, prefix, n))
			break;
		ret = cb(f->name, f->addr, f->size, arg);
		if (ret)
			return ret;
	}
	return 0;
}

int gobin__file_offset(const struct ht_gobin *g, uint64_t vaddr, uint64_t *off)
{
	size_t i;

	for (i = 0; i < g->nsegs; i++) {
		const struct seg *s = &g->segs[i];

		if (vaddr >= s->vaddr && vaddr - s->vaddr < s->filesz) {
			*off = vaddr - s->vaddr + s->offset;
			return 0;
		}
	}
	return -ENOENT;
}
