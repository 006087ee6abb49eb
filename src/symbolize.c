// SPDX-License-Identifier: GPL-2.0
/*
 * symbolize: addresses -> function, file:line and inline chain, with libdwfl.
 *
 * How this works: symbolizer__new() reports every module of the map to one Dwfl with
 * dwfl_report_elf(), passing the load bias as base with add_p_vaddr = true.  (With
 * add_p_vaddr = false libdwfl takes base as the address of the first PT_LOAD, page-
 * rounded to p_align, and sets bias = base - that p_vaddr: equal to our bias only when
 * the first PT_LOAD is at vaddr 0, which prelinked objects break.  For ET_EXEC libdwfl
 * ignores base and uses bias 0, which is what the mapping gives anyway.)  We open each
 * file ourselves so a process that exited can still be symbolized: its /proc/PID paths are
 * gone, so we fall back to the plain path and accept it only if the build-id (or, without
 * one, dev+inode) still matches.  Debug info is found by dwfl_standard_find_debuginfo
 * (the file itself, /usr/lib/debug/.build-id, .gnu_debuglink).
 *
 * A lookup finds the module in our copy of the map (not dwfl_addrmodule: we want the
 * module even when its file could not be opened), the ELF symbol, the line-table row,
 * and the DWARF scopes at the address.  Walking those scopes outwards, each
 * DW_TAG_inlined_subroutine is one frame whose location is where we are, and its
 * DW_AT_call_file/DW_AT_call_line become the location of the next frame out; the
 * enclosing DW_TAG_subprogram is the real function.
 *
 * Results are cached per (address, is_return_address); every string handed out is
 * interned here (or is a module path in our copy of the map), so it outlives the Dwfl.
 */
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "modmap.h"
#include "gobin.h"
#include "symbolize.h"
#include "u64map.h"

/* libstdc++'s demangler (the binary links -lstdc++); C has no header for it. */
char *__cxa_demangle(const char *mangled, char *buf, size_t *len, int *status);

/* Deeper inline nests than this are cut (the real function is always kept). */
#define MAX_CHAIN 64

struct cache_ent {
	uint64_t addr;
	size_t first; /* index of the first frame in s->frames */
	uint32_t n;
	bool used;
	bool ret;
};

struct ht_symbolizer {
	struct ht_modmap map;  /* our copy; module paths are handed out from it */
	Dwfl *dwfl;
	Dwfl_Module **dmods;   /* per map.mods[i]; NULL when its file could not be used */
	/* Per map.mods[i], opened on first need: a Go binary's own tables, which name the
	 * functions of a stripped (-s -w) build that libdwfl cannot name. */
	struct ht_gobin **gobins;
	uint8_t *gobin_tried;

	struct cache_ent *cache;
	size_t cache_cap;      /* power of two */
	size_t cache_len;

	struct ht_frame_info *frames; /* all cached chains, back to back */
	size_t nframes;
	size_t frames_cap;

	char **strs;           /* intern table, open addressing, NULL = empty */
	size_t str_cap;        /* power of two */
	size_t str_len;
};

static char *debuginfo_path; /* NULL: libdwfl's default search path */

static const Dwfl_Callbacks dwfl_callbacks = {
	/* Only used for modules whose ELF we did not preinstall, i.e. never. */
	.find_elf = dwfl_build_id_find_elf,
	.find_debuginfo = dwfl_standard_find_debuginfo,
	.section_address = dwfl_offline_section_address,
	.debuginfo_path = &debuginfo_path,
};

/* ---- strings ---- */

static uint64_t str_hash(const char *str)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

	for (; *str; str++) {
		h ^= (unsigned char)*str;
		h *= 0x100000001b3ULL;
	}
	return h;
}

static int strs_grow(struct ht_symbolizer *s)
{
	size_t cap = s->str_cap ? 2 * s->str_cap : 256, i;
	char **strs = calloc(cap, sizeof(*strs));

	if (!strs)
		return -ENOMEM;
	for (i = 0; i < s->str_cap; i++) {
		size_t j;

		if (!s->strs[i])
			continue;
		for (j = str_hash(s->strs[i]) & (cap - 1); strs[j]; j = (j + 1) & (cap - 1))
			;
		strs[j] = s->strs[i];
	}
	free(s->strs);
	s->strs = strs;
	s->str_cap = cap;
	return 0;
}

/* Returns the symbolizer's own copy of str (len bytes, not necessarily terminated). */
static const char *intern_n(struct ht_symbolizer *s, const char *str, size_t len)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	size_t i, j;
	char *copy;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)str[i];
		h *= 0x100000001b3ULL;
	}
	if (s->str_len + 1 > s->str_cap / 2 && strs_grow(s))
		return NULL;
	for (j = h & (s->str_cap - 1); s->strs[j]; j = (j + 1) & (s->str_cap - 1))
		if (strncmp(s->strs[j], str, len) == 0 && s->strs[j][len] == '\0')
			return s->strs[j];
	copy = strndup(str, len);
	if (!copy)
		return NULL;
	s->strs[j] = copy;
	s->str_len++;
	return copy;
}

static const char *intern(struct ht_symbolizer *s, const char *str)
{
	return str ? intern_n(s, str, strlen(str)) : NULL;
}

const char *symbolizer__demangle(struct ht_symbolizer *s, const char *name)
{
	const char *ret;
	char *dem;
	int status = -1;

	if (!name)
		return NULL;
	/* Only Itanium C++ names; anything else (C, Go, Rust v0) passes through. */
	if (strncmp(name, "_Z", 2) != 0)
		return intern(s, name);
	dem = __cxa_demangle(name, NULL, NULL, &status);
	if (!dem || status != 0) {
		free(dem);
		return intern(s, name);
	}
	ret = intern(s, dem);
	free(dem);
	return ret;
}

/* ELF symbol names may carry a version ("memcpy@GLIBC_2.2.5" in .symtab): drop it. */
static const char *symbol_name(struct ht_symbolizer *s, const char *name)
{
	const char *at;
	char *tmp;
	const char *ret;

	if (!name)
		return NULL;
	at = strchr(name, '@');
	if (!at || at == name)
		return symbolizer__demangle(s, name);
	tmp = strndup(name, at - name);
	if (!tmp)
		return NULL;
	ret = symbolizer__demangle(s, tmp);
	free(tmp);
	return ret;
}

/* ---- setup ---- */

static int copy_map(struct ht_modmap *dst, const struct ht_modmap *src)
{
	size_t i;

	dst->n = 0;
	dst->mods = calloc(src->n ? src->n : 1, sizeof(*dst->mods));
	if (!dst->mods)
		return -ENOMEM;
	for (i = 0; i < src->n; i++) {
		struct ht_module *m = &dst->mods[i];

		*m = src->mods[i];
		m->path = strdup(src->mods[i].path ? src->mods[i].path : "");
		m->open_path = src->mods[i].open_path ? strdup(src->mods[i].open_path) : NULL;
		if (!m->path || (src->mods[i].open_path && !m->open_path)) {
			free(m->path);
			free(m->open_path);
			return -ENOMEM;
		}
		dst->n++;
	}
	return 0;
}

/* Whether the file on fd is the one that was mapped. */
static bool same_file(int fd, const struct ht_module *mod)
{
	char id[sizeof(mod->build_id)];
	struct stat st;

	if (mod->build_id[0])
		return modmap__file_build_id(fd, id, sizeof(id)) == 0 &&
		       strcmp(id, mod->build_id) == 0;
	return fstat(fd, &st) == 0 && (uint64_t)st.st_dev == mod->dev &&
	       (uint64_t)st.st_ino == mod->inode;
}

/*
 * Opens the module's file: open_path while the process lives, else the plain path (the
 * process is gone, or was another process with the same pid by now).  -errno if neither
 * is the mapped file.
 */
static int open_module(const struct ht_module *mod)
{
	const char *paths[2] = { mod->open_path, mod->path };
	int i, fd, err = -ENOENT;

	for (i = 0; i < 2; i++) {
		if (!paths[i] || paths[i][0] != '/')
			continue;
		fd = open(paths[i], O_RDONLY | O_CLOEXEC);
		if (fd < 0) {
			err = -errno;
			continue;
		}
		/* With a build-id, even open_path is checked: the pid may have been reused. */
		if ((i == 0 && !mod->build_id[0]) || same_file(fd, mod))
			return fd;
		close(fd);
		err = -ESTALE;
	}
	return err;
}

struct ht_symbolizer *symbolizer__new(const struct ht_modmap *map)
{
	struct ht_symbolizer *s;
	size_t i;
	int err;

	if (!map) {
		errno = EINVAL;
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		errno = ENOMEM;
		return NULL;
	}
	err = copy_map(&s->map, map);
	if (err)
		goto err_out;
	s->dmods = calloc(map->n ? map->n : 1, sizeof(*s->dmods));
	s->gobins = calloc(map->n ? map->n : 1, sizeof(*s->gobins));
	s->gobin_tried = calloc(map->n ? map->n : 1, 1);
	s->dwfl = dwfl_begin(&dwfl_callbacks);
	if (!s->dmods || !s->gobins || !s->gobin_tried || !s->dwfl) {
		err = -ENOMEM;
		goto err_out;
	}
	dwfl_report_begin(s->dwfl);
	for (i = 0; i < s->map.n; i++) {
		const struct ht_module *mod = &s->map.mods[i];
		int fd = open_module(mod);

		/* A missing or replaced file only costs this module its names. */
		if (fd < 0)
			continue;
		/*
		 * file_name is the plain path even when we opened another one: libdwfl only
		 * names the file with it and searches .gnu_debuglink targets next to it.
		 */
		s->dmods[i] = dwfl_report_elf(s->dwfl, mod->path, mod->path, fd, mod->bias, true);
		if (!s->dmods[i])
			close(fd); /* libdwfl consumes fd only on success */
	}
	if (dwfl_report_end(s->dwfl, NULL, NULL) != 0) {
		err = -ENOMEM;
		goto err_out;
	}
	return s;

err_out:
	symbolizer__free(s);
	errno = -err;
	return NULL;
}

struct Dwfl *symbolizer__dwfl(struct ht_symbolizer *s)
{
	return s->dwfl;
}

void symbolizer__free(struct ht_symbolizer *s)
{
	size_t i;

	if (!s)
		return;
	if (s->dwfl)
		dwfl_end(s->dwfl);
	free(s->dmods);
	for (i = 0; s->gobins && i < s->map.n; i++)
		gobin__close(s->gobins[i]);
	free(s->gobins);
	free(s->gobin_tried);
	modmap__clear(&s->map);
	free(s->cache);
	free(s->frames);
	for (i = 0; i < s->str_cap; i++)
		free(s->strs[i]);
	free(s->strs);
	free(s);
}

/* ---- lookup ---- */

/* Name of a subprogram or inlined instance: the demangled linkage name, else DW_AT_name. */
static const char *die_name(struct ht_symbolizer *s, Dwarf_Die *die)
{
	Dwarf_Attribute attr;
	const char *name, *plain;

	/*
	 * _integrate follows DW_AT_abstract_origin and DW_AT_specification.  The linkage
	 * name is only worth having when it is a C++ one: C gets one from asm renames
	 * (glibc's __libc_malloc is "__GI___libc_malloc"), where DW_AT_name is the real name.
	 */
	name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
	if (!name)
		name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
	if (name && strncmp(name, "_Z", 2) == 0)
		return symbolizer__demangle(s, name);
	plain = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
	return intern(s, plain ? plain : name);
}

/* Where an inlined instance was called from (the call site in the function around it). */
static void call_site(Dwarf_Die *inl, const char **file, int *line)
{
	Dwarf_Attribute attr;
	Dwarf_Word idx, ln;
	Dwarf_Files *files;
	Dwarf_Die cu;
	size_t nfiles;

	*file = NULL;
	*line = 0;
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_line, &attr), &ln) == 0)
		*line = (int)ln;
	/* The index is into the line-table file list of the unit holding the DIE. */
	if (dwarf_formudata(dwarf_attr(inl, DW_AT_call_file, &attr), &idx) == 0 &&
	    dwarf_diecu(inl, &cu, NULL, NULL) && dwarf_getsrcfiles(&cu, &files, &nfiles) == 0 &&
	    idx < nfiles)
		*file = dwarf_filesrc(files, idx, NULL, NULL);
}

/*
 * Fills chain[] (innermost first) with the inline frames and the real function at pc.
 * Strings are libdw's here; the caller interns them.  Returns the number of frames.
 */
static int dwarf_chain(struct ht_symbolizer *s, Dwfl_Module *dm, uint64_t pc,
		       const char *file, int line, const char *sym, struct ht_frame_info *chain)
{
	Dwarf_Die *scopes = NULL, *dies = NULL, *cu;
	Dwarf_Addr dbias;
	int nscopes, ndies, i, n = 0;
	bool done = false;

	cu = dwfl_module_addrdie(dm, pc, &dbias);
	if (cu && (nscopes = dwarf_getscopes(cu, pc - dbias, &scopes)) > 0) {
		/*
		 * dwarf_getscopes stops at the innermost inlined instance and continues into its
		 * abstract origin; the concrete parents (the functions it was inlined into) come
		 * from walking the DIE tree from that innermost scope.
		 */
		ndies = dwarf_getscopes_die(&scopes[0], &dies);
		for (i = 0; i < ndies && !done; i++) {
			Dwarf_Die *die = &dies[i];
			int tag = dwarf_tag(die);

			if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_subprogram)
				continue;
			chain[n].file = file;
			chain[n].line = line;
			if (tag == DW_TAG_subprogram) {
				/* The real function: C++ gets its qualified name from the linkage
				 * name; fall back to the ELF symbol for odd DWARF. */
				chain[n].function = die_name(s, die);
				if (!chain[n].function)
					chain[n].function = sym;
				chain[n++].inlined = false;
				done = true;
				break;
			}
			if (n == MAX_CHAIN - 1)
				continue; /* too deep: keep looking for the real function */
			chain[n].function = die_name(s, die);
			chain[n++].inlined = true;
			call_site(die, &file, &line);
		}
	}
	free(dies);
	free(scopes);
	if (!done) {
		/* No subprogram around pc (assembly, or no DWARF): the ELF symbol's frame. */
		chain[n].function = sym;
		chain[n].file = file;
		chain[n].line = line;
		chain[n++].inlined = false;
	}
	return n;
}

/* A Go binary without symbols: name and position from its .gopclntab.  false on ENOMEM. */
static bool go_name(struct ht_symbolizer *s, const struct ht_module *mod, uint64_t pc,
		    const char **sym, const char **file, int *line)
{
	size_t i = mod - s->map.mods;
	struct ht_gobin *g;
	const char *n, *f;
	int l;

	if (!s->gobin_tried[i]) {
		s->gobin_tried[i] = 1;
		/* open_path (/proc/PID/root/...) dies with the process; the plain path may
		 * still be the same file */
		g = mod->open_path ? gobin__open(mod->open_path) : NULL;
		if (!g)
			g = gobin__open(mod->path);
		if (g && !gobin__is_go(g)) {
			gobin__close(g);
			g = NULL;
		}
		s->gobins[i] = g;
	}
	g = s->gobins[i];
	if (!g || gobin__func_at(g, pc - mod->bias, &n, NULL))
		return true;
	if (!(*sym = intern(s, n)))
		return false;
	if (!*file && !gobin__line_at(g, pc - mod->bias, &f, &l)) {
		*file = f; /* interned by the caller */
		*line = l;
	}
	return true;
}

static int symbolize(struct ht_symbolizer *s, uint64_t addr, bool is_return,
		     struct ht_frame_info *chain)
{
	const struct ht_module *mod;
	const char *sym = NULL, *file = NULL, *name;
	Dwfl_Module *dm;
	Dwfl_Line *dl;
	GElf_Off off;
	GElf_Sym esym;
	uint64_t pc;
	int line = 0, n, i;

	/* A return address points after the call; the call itself is at addr-1. */
	pc = is_return && addr ? addr - 1 : addr;
	memset(chain, 0, sizeof(*chain));
	mod = modmap__find(&s->map, pc);
	if (!mod) {
		chain[0].module = "[unknown]";
		chain[0].module_offset = addr;
		return 1;
	}
	dm = s->dmods[mod - s->map.mods];
	if (!dm) {
		chain[0].module = mod->path;
		chain[0].module_offset = addr - mod->bias;
		if (!go_name(s, mod, pc, &sym, &file, &line))
			return -ENOMEM;
		chain[0].function = sym;
		chain[0].file = file ? intern(s, file) : NULL;
		chain[0].line = file ? line : 0;
		return 1;
	}

	name = dwfl_module_addrinfo(dm, pc, &off, &esym, NULL, NULL, NULL);
	if (name) {
		sym = symbol_name(s, name);
		if (!sym)
			return -ENOMEM;
	}
	dl = dwfl_module_getsrc(dm, pc);
	if (dl)
		file = dwfl_lineinfo(dl, NULL, &line, NULL, NULL, NULL);
	if (!file)
		line = 0;

	if (!name && !go_name(s, mod, pc, &sym, &file, &line))
		return -ENOMEM;
	n = dwarf_chain(s, dm, pc, file, line, sym, chain);
	for (i = 0; i < n; i++) {
		if (chain[i].file) {
			chain[i].file = intern(s, chain[i].file);
			if (!chain[i].file)
				return -ENOMEM;
		} else {
			chain[i].line = 0;
		}
		chain[i].module = mod->path;
		chain[i].module_offset = addr - mod->bias;
	}
	return n;
}

static int cache_grow(struct ht_symbolizer *s)
{
	size_t cap = s->cache_cap ? 2 * s->cache_cap : 1024, i;
	struct cache_ent *cache = calloc(cap, sizeof(*cache));

	if (!cache)
		return -ENOMEM;
	for (i = 0; i < s->cache_cap; i++) {
		struct cache_ent *e = &s->cache[i];
		size_t j;

		if (!e->used)
			continue;
		j = u64_hash(e->addr ^ e->ret) & (cap - 1);
		while (cache[j].used)
			j = (j + 1) & (cap - 1);
		cache[j] = *e;
	}
	free(s->cache);
	s->cache = cache;
	s->cache_cap = cap;
	return 0;
}

/* The cache slot for (addr, ret): the entry if used, else where to insert it. */
static struct cache_ent *cache_slot(struct ht_symbolizer *s, uint64_t addr, bool ret)
{
	size_t j;

	for (j = u64_hash(addr ^ ret) & (s->cache_cap - 1); s->cache[j].used;
	     j = (j + 1) & (s->cache_cap - 1))
		if (s->cache[j].addr == addr && s->cache[j].ret == ret)
			break;
	return &s->cache[j];
}

int symbolizer__lookup(struct ht_symbolizer *s, uint64_t addr, bool is_return_address,
		       struct ht_frame_info *out, int max)
{
	struct ht_frame_info chain[MAX_CHAIN];
	const struct ht_frame_info *frames;
	struct cache_ent *e;
	int n, k;

	if (!s || !out || max <= 0)
		return max <= 0 ? 0 : -EINVAL;
	if (s->cache_len + 1 > s->cache_cap / 2 && cache_grow(s))
		return -ENOMEM;
	e = cache_slot(s, addr, is_return_address);
	if (!e->used) {
		n = symbolize(s, addr, is_return_address, chain);
		if (n < 0)
			return n;
		if (s->nframes + n > s->frames_cap) {
			size_t cap = s->frames_cap ? 2 * s->frames_cap : 1024;
			struct ht_frame_info *f;

			while (cap < s->nframes + n)
				cap *= 2;
			f = realloc(s->frames, cap * sizeof(*f));
			if (!f)
				return -ENOMEM;
			s->frames = f;
			s->frames_cap = cap;
		}
		memcpy(s->frames + s->nframes, chain, n * sizeof(*chain));
		e->used = true;
		e->addr = addr;
		e->ret = is_return_address;
		e->first = s->nframes;
		e->n = n;
		s->nframes += n;
		s->cache_len++;
	}

	frames = s->frames + e->first;
	n = e->n;
	if (n <= max) {
		memcpy(out, frames, n * sizeof(*out));
		return n;
	}
	/* Too many for out: the innermost max-1 inline frames, then the real function. */
	for (k = 0; k < max - 1; k++)
		out[k] = frames[k];
	out[max - 1] = frames[n - 1];
	return max;
}
