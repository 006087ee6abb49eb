// SPDX-License-Identifier: GPL-2.0
/*
 * modmap: /proc/PID/maps -> the ELF objects of a process.
 *
 * How this works: maps lists one line per mapping, in address order.  A loaded ELF object
 * shows up as several mappings of the same file (one per PT_LOAD, plus PROT_NONE gaps the
 * dynamic loader leaves between segments).  Each file is opened once per read (through
 * /proc/PID/root so containers work, or /proc/PID/map_files when the file was deleted) to
 * check it is ELF and to read its PT_LOAD headers and build-id.  A mapping whose file
 * offset is the page-aligned p_offset of a PT_LOAD gives the load bias:
 *   bias = mapping start - page-aligned p_vaddr of that PT_LOAD
 * which is 0 for ET_EXEC and the load address for PIE and shared objects.  Mappings of
 * the same file with the same bias (or contiguous gap mappings whose offset matches no
 * PT_LOAD) form one module; the same file mapped again elsewhere with another bias (a
 * dlmopen namespace, or the program mmapping an ELF file itself) is a separate module.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <inttypes.h>
#include <libelf.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "modmap.h"

#define DELETED_SUFFIX " (deleted)"

/* A PT_LOAD, both fields rounded down to the page. */
struct load_seg {
	uint64_t off;
	uint64_t vaddr;
	bool exec;
};

/* What one read learned about one file (dev+inode), so each file is opened once. */
struct file_info {
	uint64_t dev;
	uint64_t inode;
	bool is_elf;
	struct load_seg *segs;
	size_t nsegs;
	char build_id[41];
};

struct read_ctx {
	pid_t pid;
	uint64_t page_mask;
	struct file_info *files;
	size_t nfiles;
	struct ht_module *mods;
	size_t nmods;
	size_t cap;
};

static void hex_encode(const uint8_t *bits, size_t len, char *out, size_t size)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	if (len > (size - 1) / 2)
		len = (size - 1) / 2;
	for (i = 0; i < len; i++) {
		out[2 * i] = digits[bits[i] >> 4];
		out[2 * i + 1] = digits[bits[i] & 0xf];
	}
	out[2 * len] = '\0';
}

/* Scans one note blob for NT_GNU_BUILD_ID.  true if found. */
static bool scan_notes(Elf_Data *data, char *out, size_t size)
{
	GElf_Nhdr nhdr;
	size_t off = 0, next, name_off, desc_off;

	while (off < data->d_size &&
	       (next = gelf_getnote(data, off, &nhdr, &name_off, &desc_off)) > 0) {
		const char *name = (const char *)data->d_buf + name_off;

		if (nhdr.n_type == NT_GNU_BUILD_ID && nhdr.n_namesz == sizeof(ELF_NOTE_GNU) &&
		    memcmp(name, ELF_NOTE_GNU, sizeof(ELF_NOTE_GNU)) == 0 && nhdr.n_descsz > 0) {
			hex_encode((uint8_t *)data->d_buf + desc_off, nhdr.n_descsz, out, size);
			return true;
		}
		off = next;
	}
	return false;
}

static void elf_build_id(Elf *elf, char *out, size_t size)
{
	size_t phnum, i;
	Elf_Scn *scn = NULL;

	out[0] = '\0';
	/* Program headers first: they survive section-header stripping. */
	if (elf_getphdrnum(elf, &phnum) == 0) {
		for (i = 0; i < phnum; i++) {
			GElf_Phdr mem, *ph = gelf_getphdr(elf, i, &mem);
			Elf_Data *data;

			if (!ph || ph->p_type != PT_NOTE)
				continue;
			data = elf_getdata_rawchunk(elf, ph->p_offset, ph->p_filesz,
						    ph->p_align == 8 ? ELF_T_NHDR8 : ELF_T_NHDR);
			if (data && scan_notes(data, out, size))
				return;
		}
	}
	while ((scn = elf_nextscn(elf, scn))) {
		GElf_Shdr mem, *sh = gelf_getshdr(scn, &mem);
		Elf_Data *data;

		if (!sh || sh->sh_type != SHT_NOTE)
			continue;
		data = elf_getdata(scn, NULL);
		if (data && scan_notes(data, out, size))
			return;
	}
}

int modmap__file_build_id(int fd, char *out, size_t size)
{
	Elf *elf;
	int err = 0;

	if (size == 0)
		return -EINVAL;
	out[0] = '\0';
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;
	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return -ENOEXEC;
	if (elf_kind(elf) != ELF_K_ELF)
		err = -ENOEXEC;
	else
		elf_build_id(elf, out, size);
	elf_end(elf);
	if (!err && !out[0])
		err = -ENOENT;
	return err;
}

/*
 * Fills fi from the open file: is_elf, PT_LOADs, build-id.  A file that is not an ELF
 * executable or shared object just gets is_elf = false.
 */
static int load_file_info(struct read_ctx *ctx, int fd, struct file_info *fi)
{
	GElf_Ehdr ehdr;
	size_t phnum, i;
	Elf *elf;
	int err = 0;

	elf = elf_begin(fd, ELF_C_READ_MMAP, NULL);
	if (!elf)
		return 0;
	if (elf_kind(elf) != ELF_K_ELF || !gelf_getehdr(elf, &ehdr) ||
	    (ehdr.e_type != ET_EXEC && ehdr.e_type != ET_DYN) || elf_getphdrnum(elf, &phnum))
		goto out;
	fi->segs = calloc(phnum ? phnum : 1, sizeof(*fi->segs));
	if (!fi->segs) {
		err = -ENOMEM;
		goto out;
	}
	for (i = 0; i < phnum; i++) {
		GElf_Phdr mem, *ph = gelf_getphdr(elf, i, &mem);

		if (!ph || ph->p_type != PT_LOAD)
			continue;
		fi->segs[fi->nsegs].off = ph->p_offset & ctx->page_mask;
		fi->segs[fi->nsegs].vaddr = ph->p_vaddr & ctx->page_mask;
		fi->segs[fi->nsegs].exec = ph->p_flags & PF_X;
		fi->nsegs++;
	}
	if (fi->nsegs == 0)
		goto out;
	elf_build_id(elf, fi->build_id, sizeof(fi->build_id));
	fi->is_elf = true;
out:
	elf_end(elf);
	return err;
}

/*
 * Opens a mapped file: through open_path; if that fails and the file was not deleted,
 * through its plain path, accepted only if it is the very same inode (the process may
 * have exited between reading maps and opening, taking /proc/PID/root with it).
 */
static int open_mapped(const char *open_path, const char *path, bool deleted, uint64_t dev,
		       uint64_t inode)
{
	struct stat st;
	int fd;

	fd = open(open_path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0 || deleted)
		return fd < 0 ? -errno : fd;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || (uint64_t)st.st_dev != dev || (uint64_t)st.st_ino != inode) {
		close(fd);
		return -ESTALE;
	}
	return fd;
}

/*
 * What earlier reads learnt of each file (segments, build-id), for the whole run: a
 * system-wide session reads the maps of every process that starts, mostly of the same
 * few dozen objects, and opening and parsing each ELF again dominated its CPU.  An entry
 * is used only while the file's size and mtime are unchanged.  Bounded: cleared when full.
 */
#define FILE_CACHE_MAX 4096

struct cached_file {
	struct file_info fi; /* segs owned by the cache */
	int64_t mtime_ns, size;
};

static struct {
	struct cached_file *e;
	size_t n;
} file_cache;

static void file_cache_clear(void)
{
	for (size_t i = 0; i < file_cache.n; i++)
		free(file_cache.e[i].fi.segs);
	free(file_cache.e);
	file_cache.e = NULL;
	file_cache.n = 0;
}

static bool stat_either(const char *open_path, const char *path, uint64_t dev, uint64_t inode,
			struct stat *st)
{
	return (!stat(open_path, st) || !stat(path, st)) && (uint64_t)st->st_dev == dev &&
	       (uint64_t)st->st_ino == inode;
}

/* A copy of the cached facts into fi (which the read owns), or false. */
static bool file_cache_get(const struct stat *st, struct file_info *fi)
{
	for (size_t i = 0; i < file_cache.n; i++) {
		const struct cached_file *c = &file_cache.e[i];

		if (c->fi.dev != fi->dev || c->fi.inode != fi->inode)
			continue;
		if (c->size != st->st_size ||
		    c->mtime_ns != st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec)
			return false;
		*fi = c->fi;
		fi->segs = NULL;
		if (c->fi.nsegs && !(fi->segs = malloc(c->fi.nsegs * sizeof(*fi->segs)))) {
			fi->nsegs = 0;
			fi->is_elf = false;
			return false;
		}
		if (c->fi.nsegs)
			memcpy(fi->segs, c->fi.segs, c->fi.nsegs * sizeof(*fi->segs));
		return true;
	}
	return false;
}

static void file_cache_put(const struct stat *st, const struct file_info *fi)
{
	struct cached_file *c;

	if (file_cache.n == FILE_CACHE_MAX)
		file_cache_clear();
	if (!(file_cache.n % 64)) {
		void *np = realloc(file_cache.e, (file_cache.n + 64) * sizeof(*file_cache.e));

		if (!np)
			return;
		file_cache.e = np;
	}
	c = &file_cache.e[file_cache.n];
	c->fi = *fi;
	c->fi.segs = NULL;
	if (fi->nsegs && !(c->fi.segs = malloc(fi->nsegs * sizeof(*fi->segs))))
		return;
	if (fi->nsegs)
		memcpy(c->fi.segs, fi->segs, fi->nsegs * sizeof(*fi->segs));
	c->size = st->st_size;
	c->mtime_ns = st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec;
	file_cache.n++;
}

static struct file_info *get_file_info(struct read_ctx *ctx, uint64_t dev, uint64_t inode,
				       const char *open_path, const char *path, bool deleted,
				       int *err)
{
	struct stat st;
	bool cacheable;
	struct file_info *fi, *files;
	size_t i;
	int fd;

	/* Newest first: a file's mappings are usually adjacent. */
	for (i = ctx->nfiles; i-- > 0;)
		if (ctx->files[i].dev == dev && ctx->files[i].inode == inode)
			return &ctx->files[i];
	files = realloc(ctx->files, (ctx->nfiles + 1) * sizeof(*files));
	if (!files) {
		*err = -ENOMEM;
		return NULL;
	}
	ctx->files = files;
	fi = &files[ctx->nfiles++];
	memset(fi, 0, sizeof(*fi));
	fi->dev = dev;
	fi->inode = inode;
	cacheable = !deleted && stat_either(open_path, path, dev, inode, &st);
	if (cacheable && file_cache_get(&st, fi))
		return fi;
	/* An unreadable file stays is_elf = false: we could not compute its bias anyway. */
	fd = open_mapped(open_path, path, deleted, dev, inode);
	if (fd >= 0) {
		*err = load_file_info(ctx, fd, fi);
		close(fd);
		if (!*err && cacheable)
			file_cache_put(&st, fi);
	}
	return fi;
}

static void free_module(struct ht_module *m)
{
	free(m->path);
	free(m->open_path);
}

static struct ht_module *last_module_of(struct read_ctx *ctx, uint64_t dev, uint64_t inode)
{
	size_t i;

	for (i = ctx->nmods; i-- > 0;)
		if (ctx->mods[i].dev == dev && ctx->mods[i].inode == inode)
			return &ctx->mods[i];
	return NULL;
}

struct mapping {
	uint64_t start, end, off, dev, inode;
	bool exec;
	bool deleted;
	char *path; /* points into the line */
};

static int add_mapping(struct read_ctx *ctx, const struct mapping *mp)
{
	char open_path[PATH_MAX + 64];
	struct file_info *fi;
	struct ht_module *mod, *prev;
	uint64_t bias = 0;
	int best = -1;
	size_t i;
	int err = 0;

	if (mp->deleted)
		snprintf(open_path, sizeof(open_path), "/proc/%d/map_files/%" PRIx64 "-%" PRIx64,
			 (int)ctx->pid, mp->start, mp->end);
	else
		snprintf(open_path, sizeof(open_path), "/proc/%d/root%s", (int)ctx->pid,
			 mp->path);

	fi = get_file_info(ctx, mp->dev, mp->inode, open_path, mp->path, mp->deleted, &err);
	if (!fi || !fi->is_elf)
		return err;

	prev = last_module_of(ctx, mp->dev, mp->inode);
	/*
	 * Two PT_LOADs can share a file page (small objects linked without separate code),
	 * so several may match: prefer the one agreeing with a module already seen, then the
	 * one whose X flag matches the mapping's.
	 */
	for (i = 0; i < fi->nsegs; i++) {
		int score;
		uint64_t b;

		if (fi->segs[i].off != mp->off || mp->start < fi->segs[i].vaddr)
			continue;
		b = mp->start - fi->segs[i].vaddr;
		score = prev && prev->bias == b ? 2 : fi->segs[i].exec == mp->exec;
		if (score > best) {
			best = score;
			bias = b;
		}
	}

	/*
	 * A mapping right after the previous one of the same file belongs to it whatever its
	 * offset says (the PROT_NONE gaps ld.so leaves between segments keep the offsets of
	 * its initial whole-object reservation, which may look like another PT_LOAD).
	 */
	if (prev && (prev->end == mp->start || (best >= 0 && prev->bias == bias))) {
		if (mp->end > prev->end)
			prev->end = mp->end;
		if (mp->start < prev->start)
			prev->start = mp->start;
		prev->executable_map |= mp->exec;
		return 0;
	}
	/* A stray mapping of some other part of the file: not code we can place. */
	if (best < 0)
		return 0;

	if (ctx->nmods == ctx->cap) {
		size_t cap = ctx->cap ? 2 * ctx->cap : 32;
		struct ht_module *mods = realloc(ctx->mods, cap * sizeof(*mods));

		if (!mods)
			return -ENOMEM;
		ctx->mods = mods;
		ctx->cap = cap;
	}
	mod = &ctx->mods[ctx->nmods];
	memset(mod, 0, sizeof(*mod));
	mod->path = strdup(mp->path);
	mod->open_path = strdup(open_path);
	if (!mod->path || !mod->open_path) {
		free_module(mod);
		return -ENOMEM;
	}
	mod->deleted = mp->deleted;
	mod->start = mp->start;
	mod->file_offset = mp->off;
	mod->end = mp->end;
	mod->bias = bias;
	mod->dev = mp->dev;
	mod->inode = mp->inode;
	memcpy(mod->build_id, fi->build_id, sizeof(mod->build_id));
	mod->executable_map = mp->exec;
	ctx->nmods++;
	return 0;
}

/* One maps line: "start-end perms offset maj:min inode   path".  false: not a file. */
static bool parse_line(char *line, struct mapping *mp)
{
	unsigned int maj, min;
	char perms[8];
	size_t len;
	int n = 0;

	if (sscanf(line, "%" SCNx64 "-%" SCNx64 " %7s %" SCNx64 " %x:%x %" SCNu64 " %n",
		   &mp->start, &mp->end, perms, &mp->off, &maj, &min, &mp->inode, &n) < 7 ||
	    n == 0)
		return false;
	mp->path = line + n;
	len = strlen(mp->path);
	if (len && mp->path[len - 1] == '\n')
		mp->path[--len] = '\0';
	/* Anonymous memory, [heap], [stack], [vdso] and friends. */
	if (mp->inode == 0 || mp->path[0] != '/')
		return false;
	mp->deleted = false;
	if (len > strlen(DELETED_SUFFIX) &&
	    strcmp(mp->path + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX) == 0) {
		mp->path[len - strlen(DELETED_SUFFIX)] = '\0';
		mp->deleted = true;
	}
	mp->dev = makedev(maj, min);
	mp->exec = perms[2] == 'x';
	return true;
}

static int cmp_start(const void *a, const void *b)
{
	const struct ht_module *x = a, *y = b;

	return x->start < y->start ? -1 : x->start > y->start;
}

int modmap__read(pid_t pid, struct ht_modmap *out)
{
	struct read_ctx ctx = { .pid = pid };
	char maps_path[64];
	char *line = NULL;
	size_t line_cap = 0, i;
	FILE *f;
	int err = 0;

	if (elf_version(EV_CURRENT) == EV_NONE)
		return -ENOSYS;
	ctx.page_mask = ~((uint64_t)sysconf(_SC_PAGESIZE) - 1);

	snprintf(maps_path, sizeof(maps_path), "/proc/%d/maps", (int)pid);
	f = fopen(maps_path, "re");
	if (!f)
		return errno == ENOENT ? -ESRCH : -errno;
	errno = 0;
	while (getline(&line, &line_cap, f) > 0) {
		struct mapping mp;

		if (!parse_line(line, &mp))
			continue;
		err = add_mapping(&ctx, &mp);
		if (err)
			break;
	}
	/* A process exiting while we read makes the read fail with ESRCH. */
	if (!err && ferror(f))
		err = errno ? -errno : -EIO;
	fclose(f);
	free(line);

	/* A process that exited between open and read leaves an empty map behind. */
	if (!err && ctx.nmods == 0) {
		char dir[32];

		snprintf(dir, sizeof(dir), "/proc/%d", (int)pid);
		if (access(dir, F_OK) != 0)
			err = -ESRCH;
	}

	for (i = 0; i < ctx.nfiles; i++)
		free(ctx.files[i].segs);
	free(ctx.files);
	if (err) {
		for (i = 0; i < ctx.nmods; i++)
			free_module(&ctx.mods[i]);
		free(ctx.mods);
		return err;
	}
	if (ctx.nmods > 1)
		qsort(ctx.mods, ctx.nmods, sizeof(*ctx.mods), cmp_start);
	out->mods = ctx.mods;
	out->n = ctx.nmods;
	return 0;
}

void modmap__clear(struct ht_modmap *m)
{
	size_t i;

	if (!m)
		return;
	for (i = 0; i < m->n; i++)
		free_module(&m->mods[i]);
	free(m->mods);
	m->mods = NULL;
	m->n = 0;
}

const struct ht_module *modmap__find(const struct ht_modmap *m, uint64_t addr)
{
	size_t lo = 0, hi;

	if (!m || !m->n)
		return NULL;
	/* Last module whose start <= addr. */
	hi = m->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->mods[mid].start <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == 0)
		return NULL;
	if (addr < m->mods[lo - 1].end)
		return &m->mods[lo - 1];
	return NULL;
}
