/*
 * Unit test for src/gobin.c: builds small Go programs with this machine's Go (Debian 12:
 * 1.19) and with newer Debian toolchains fetched by scripts/fetch-go.sh into
 * build/go-toolchains (HEAPTAP_GO_VERSIONS, default "1.27 1.23"; "none" for none), each as
 * an executable and a PIE, with and without `-ldflags=-s -w`, pure Go and cgo (externally
 * linked), plus one build with a GOEXPERIMENT; then checks gobin against Go's own tools:
 *   - version and experiments = `go version BIN`, modinfo = `go version -m BIN`;
 *   - address and size of runtime.mallocgc, profilealloc, freeSpecial, gcStart,
 *     (*gcControllerState).startCycle, main.main, main.hotAlloc = `go tool nm -size`, the
 *     same in the unstripped, stripped and section-header-less (sstrip-like) copies, and
 *     every function of the stripped build found at the same address and size unstripped;
 *   - file:line of every instruction of main.hotAlloc, main.main and runtime.profilealloc =
 *     `go tool objdump`, including the marked `make` line in hotAlloc, and the instruction
 *     bytes objdump shows = the file bytes at gobin__file_offset (and that offset = the
 *     ones the program headers and the section headers give);
 *   - the runtime.mallocgc* family = nm's (Go 1.27's size-class entry points among them).
 * Then, with gcc: build info blobs of both formats (old pointer-based one in a PIE with its
 * pointers zeroed in the file, so only the relocations hold them) and odd version strings;
 * bad input (missing, not ELF, directory, 32-bit, truncated) and 400 corrupted copies
 * of a stripped Go binary, which must not crash (run it under `make SAN=1`).
 *
 * Go builds run with GOPATH, sources and binaries in a temporary directory, GOCACHE in
 * build/go-cache (see setup_go_env()), GOPROXY=off, GOTOOLCHAIN=local, GOFLAGS=-mod=mod and
 * no external modules: no network.  A toolchain
 * that cannot be fetched is skipped with a message; so is everything Go when go is missing.
 * Returns 0 when every check passes.
 */
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "gobin.h"

#define DEFAULT_GO_VERSIONS "1.27 1.23"
#define FETCH_BUDGET_S 120 /* no further toolchain is started after this many seconds */

static int failures, checks;
static char sysver[64]; /* the version of the machine's own go, once it ran */
static char tmp[] = "/tmp/heaptap-gobin-XXXXXX";
static char root[PATH_MAX];
static struct timespec t_start;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("FAIL: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	failures++;
}

#define CHECK(cond, ...)                   \
	do {                               \
		checks++;                  \
		if (!(cond))               \
			fail(__VA_ARGS__); \
	} while (0)

static double elapsed(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t_start.tv_sec) + (t.tv_nsec - t_start.tv_nsec) / 1e9;
}

/* ---- small helpers ---- */

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[8192];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	return rc == -1 ? -1 : WIFEXITED(rc) ? WEXITSTATUS(rc) : 128;
}

/* The command's whole stdout (malloc'd), or NULL if it could not run or exited non-zero. */
static char *capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *capture(const char *fmt, ...)
{
	char cmd[8192], *buf = NULL;
	size_t len = 0, cap = 0, n;
	va_list ap;
	FILE *p;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	p = popen(cmd, "r");
	if (!p)
		return NULL;
	do {
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap = cap ? cap * 2 : 65536);

			if (!nb) {
				free(buf);
				pclose(p);
				return NULL;
			}
			buf = nb;
		}
		n = fread(buf + len, 1, cap - len - 1, p);
		len += n;
	} while (n > 0);
	buf[len] = '\0';
	if (pclose(p) != 0) {
		free(buf);
		return NULL;
	}
	return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "w");
	int ok;

	if (!f)
		return -1;
	ok = fwrite(data, 1, len, f) == len;
	ok &= fclose(f) == 0;
	return ok ? 0 : -1;
}

static uint8_t *read_file(const char *path, size_t *len)
{
	struct stat st;
	uint8_t *buf;
	FILE *f;

	if (stat(path, &st) || !(f = fopen(path, "r")))
		return NULL;
	buf = malloc(st.st_size + 1);
	if (buf && fread(buf, 1, st.st_size, f) != (size_t)st.st_size) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	*len = st.st_size;
	return buf;
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

/* File offset of vaddr through the section headers (an independent way to the same). */
static int section_offset(const char *path, uint64_t vaddr, uint64_t *off)
{
	Elf_Scn *scn = NULL;
	int fd, ret = -ENOENT;
	Elf *elf;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
		    !(sh.sh_flags & SHF_ALLOC))
			continue;
		if (vaddr >= sh.sh_addr && vaddr - sh.sh_addr < sh.sh_size) {
			*off = vaddr - sh.sh_addr + sh.sh_offset;
			ret = 0;
			break;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

/* File offset of vaddr through the PT_LOAD program headers, read with libelf. */
static int phdr_offset(const char *path, uint64_t vaddr, uint64_t *off)
{
	size_t n = 0, i;
	int fd, ret = -ENOENT;
	Elf *elf;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getphdrnum(elf, &n)) {
		for (i = 0; i < n; i++) {
			GElf_Phdr ph;

			if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD ||
			    vaddr < ph.p_vaddr || vaddr - ph.p_vaddr >= ph.p_filesz)
				continue;
			*off = vaddr - ph.p_vaddr + ph.p_offset;
			ret = 0;
			break;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

/* File range of the named section, 0 or -ENOENT. */
static int section_range(const char *path, const char *name, uint64_t *off, uint64_t *size)
{
	Elf_Scn *scn = NULL;
	int fd, ret = -ENOENT;
	size_t shstrndx;
	Elf *elf;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	if (elf && !elf_getshdrstrndx(elf, &shstrndx)) {
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;
			const char *n;

			if (!gelf_getshdr(scn, &sh) ||
			    !(n = elf_strptr(elf, shstrndx, sh.sh_name)) || strcmp(n, name))
				continue;
			*off = sh.sh_offset;
			*size = sh.sh_size;
			ret = 0;
			break;
		}
	}
	if (elf)
		elf_end(elf);
	close(fd);
	return ret;
}

/* A copy of src without section headers (e_shoff, e_shnum, e_shstrndx zeroed): what sstrip
 * leaves, as far as a reader that trusts only the program headers can tell. */
static int copy_without_sections(const char *src, const char *dst)
{
	size_t len;
	uint8_t *b = read_file(src, &len);
	Elf64_Ehdr eh;
	int ret;

	if (!b || len < sizeof(eh)) {
		free(b);
		return -1;
	}
	memcpy(&eh, b, sizeof(eh));
	eh.e_shoff = 0;
	eh.e_shnum = 0;
	eh.e_shstrndx = 0;
	memcpy(b, &eh, sizeof(eh));
	ret = write_file(dst, b, len);
	chmod(dst, 0755);
	free(b);
	return ret;
}

/* ---- Go ground truth ---- */

struct toolchain {
	char go[PATH_MAX]; /* the go command */
	char version[64];  /* "go1.19.8", from `go version` */
	int minor;
};

struct nm_sym {
	uint64_t addr;
	uint64_t size;
	char name[200];
};

struct nm_table {
	struct nm_sym *syms;
	size_t n;
};

/* `go tool nm -size -n` of path, text symbols only. */
static int nm_load(const struct toolchain *tc, const char *path, struct nm_table *t)
{
	char *out = capture("'%s' tool nm -size -n '%s'", tc->go, path), *line, *save = NULL;
	size_t cap = 0;

	t->syms = NULL;
	t->n = 0;
	if (!out)
		return -1;
	for (line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned long long a, s;
		char type, name[200];

		if (sscanf(line, " %llx %llu %c %199[^\n]", &a, &s, &type, name) != 4 ||
		    (type != 'T' && type != 't'))
			continue;
		if (t->n == cap) {
			struct nm_sym *ns;

			cap = cap ? cap * 2 : 1024;
			ns = realloc(t->syms, cap * sizeof(*ns));

			if (!ns)
				break;
			t->syms = ns;
		}
		t->syms[t->n].addr = a;
		t->syms[t->n].size = s;
		snprintf(t->syms[t->n].name, sizeof(t->syms[t->n].name), "%s", name);
		t->n++;
	}
	free(out);
	return 0;
}

static const struct nm_sym *nm_find(const struct nm_table *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->n; i++)
		if (!strcmp(t->syms[i].name, name))
			return &t->syms[i];
	return NULL;
}

struct insn {
	char file[PATH_MAX]; /* objdump's base name, or addr2line's full path */
	bool full_path;
	int line;
	uint64_t addr;
	char hex[64];
};

/* Where addr2line (binutils, from DWARF) puts each instruction: the ground truth when
 * objdump has no positions (Go 1.19's objdump does not find a PIE's pclntab). */
static int addr2line_fill(const char *path, struct insn *ins, size_t n)
{
	char list[PATH_MAX + 16];
	char *out, *line, *save = NULL;
	size_t i, len = 0;
	FILE *f;

	snprintf(list, sizeof(list), "%s/addrs", tmp);
	f = fopen(list, "w");
	if (!f)
		return -1;
	for (i = 0; i < n; i++)
		fprintf(f, "0x%llx\n", (unsigned long long)ins[i].addr);
	fclose(f);
	out = capture("addr2line -e '%s' <'%s'", path, list);
	if (!out)
		return -1;
	for (i = 0, line = strtok_r(out, "\n", &save); line && i < n;
	     line = strtok_r(NULL, "\n", &save), i++) {
		char *colon = strrchr(line, ':');

		if (!colon || sscanf(colon + 1, "%d", &ins[i].line) != 1)
			break;
		*colon = '\0';
		snprintf(ins[i].file, sizeof(ins[i].file), "%s", line);
		ins[i].full_path = true;
		len++;
	}
	free(out);
	return len == n ? 0 : -1;
}

/* The instructions `go tool objdump -s '^func$'` lists, with their file:line and bytes. */
static size_t objdump_load(const struct toolchain *tc, const char *path, const char *func,
			   struct insn **out)
{
	char *text = capture("'%s' tool objdump -s '^%s$' '%s'", tc->go, func, path);
	char *line, *save = NULL;
	size_t n = 0, cap = 0;
	bool nopos = false;

	*out = NULL;
	if (!text)
		return 0;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char pos[PATH_MAX], *colon;
		unsigned long long a;
		struct insn in;

		/* "  main.go:9\t\t0x480fc0\t\t493b6610\t\tCMPQ ..." (":0" without a position) */
		if (sscanf(line, " %4095s 0x%llx %63s", pos, &a, in.hex) != 3 ||
		    !(colon = strrchr(pos, ':')) || sscanf(colon + 1, "%d", &in.line) != 1)
			continue;
		*colon = '\0';
		snprintf(in.file, sizeof(in.file), "%s", pos);
		in.full_path = false;
		nopos |= !*in.file;
		in.addr = a;
		if (n == cap) {
			struct insn *ni = realloc(*out, (cap = cap ? cap * 2 : 256) * sizeof(*ni));

			if (!ni)
				break;
			*out = ni;
		}
		(*out)[n++] = in;
	}
	free(text);
	if (nopos && addr2line_fill(path, *out, n))
		fail("%s: objdump has no positions and addr2line failed", path);
	return n;
}

/* What `go version BIN` says after "BIN: ", e.g. "go1.26.1 X:sizespecializedmalloc". */
static char *go_version_of(const struct toolchain *tc, const char *path)
{
	char *out = capture("'%s' version '%s'", tc->go, path), *s, *nl;

	if (!out)
		return NULL;
	s = strstr(out, ": ");
	if (!s) {
		free(out);
		return NULL;
	}
	memmove(out, s + 2, strlen(s + 2) + 1);
	nl = strchr(out, '\n');
	if (nl)
		*nl = '\0';
	return out;
}

/* The modinfo text `go version -m BIN` shows: the lines after the first, one tab removed. */
static char *go_modinfo_of(const struct toolchain *tc, const char *path)
{
	char *out = capture("'%s' version -m '%s'", tc->go, path), *line, *save = NULL, *res;
	size_t len = 0;
	bool first = true;

	if (!out)
		return NULL;
	res = calloc(1, strlen(out) + 1);
	for (line = strtok_r(out, "\n", &save); res && line; line = strtok_r(NULL, "\n", &save)) {
		if (first) {
			first = false;
			continue;
		}
		if (*line == '\t')
			line++;
		len += sprintf(res + len, "%s\n", line);
	}
	free(out);
	return res;
}

/* ---- the Go programs ---- */

/* %s slots: the cgo preamble (or ""), then a cgo call in main (or ""). */
static const char go_src_fmt[] =
	"package main\n"
	"\n"
	"%s"
	"var sink [][]byte\n"
	"\n"
	"type pair struct{ a, b int }\n"
	"\n"
	"//go:noinline\n"
	"func hotAlloc(n int) []byte {\n"
	"\tb := make([]byte, n) // HOTLINE\n"
	"\treturn b\n"
	"}\n"
	"\n"
	"//go:noinline\n"
	"func newPair(i int) *pair {\n"
	"\treturn &pair{i, i}\n"
	"}\n"
	"\n"
	"func main() {\n"
	"\tfor i := 0; i < 10; i++ {\n"
	"\t\tsink = append(sink, hotAlloc(100+i))\n"
	"\t}\n"
	"%s"
	"\tprintln(\"ok\", len(sink), newPair(3).a)\n"
	"}\n";

struct program {
	char dir[PATH_MAX];
	char src[PATH_MAX + 16]; /* main.go */
	int hotline;        /* the line of the HOTLINE statement */
	bool cgo;
};

static int make_program(struct program *p, const char *name, bool cgo)
{
	char text[4096], path[PATH_MAX + 16];
	const char *s;
	int line = 1;

	snprintf(p->dir, sizeof(p->dir), "%s/%s", tmp, name);
	snprintf(p->src, sizeof(p->src), "%s/main.go", p->dir);
	p->cgo = cgo;
	snprintf(text, sizeof(text), go_src_fmt,
		 cgo ? "// #include <stdlib.h>\nimport \"C\"\n\n" : "",
		 cgo ? "\tC.free(C.malloc(16))\n" : "");
	for (s = text; *s && !(s == strstr(s, "// HOTLINE")); s++)
		line += *s == '\n';
	p->hotline = line;
	if (mkdir(p->dir, 0755) && errno != EEXIST)
		return -1;
	snprintf(path, sizeof(path), "%s/go.mod", p->dir);
	if (write_file(path, "module example.com/gobintest\n\ngo 1.19\n", 38))
		return -1;
	return write_file(p->src, text, strlen(text));
}

/* Builds prog with tc into out.  extra: more `go build` flags; env: more environment. */
static int go_build(const struct toolchain *tc, const struct program *p, const char *out,
		    const char *flags, const char *env)
{
	char log[PATH_MAX + 8];
	int rc;

	snprintf(log, sizeof(log), "%s.log", out);
	rc = run("cd '%s' && CGO_ENABLED=%d %s '%s' build %s -o '%s' . >'%s' 2>&1", p->dir,
		 p->cgo ? 1 : 0, env, tc->go, flags, out, log);
	if (rc) {
		fail("%s build %s -o %s: exit %d", tc->version, flags, out, rc);
		run("tail -n 20 '%s' >&2", log);
		return -1;
	}
	return 0;
}

/* ---- checks on one build: unstripped, stripped (-s -w) and header-less copies ---- */

struct build {
	const char *what; /* "go1.19.8 pie cgo" */
	char full[PATH_MAX];
	char strip[PATH_MAX + 8];
	char nosh[PATH_MAX + 16];
};

static const char *const key_funcs[] = {
	"runtime.mallocgc",
	"runtime.profilealloc",
	"runtime.freeSpecial",
	"runtime.gcStart",
	"runtime.(*gcControllerState).startCycle",
	"main.main",
	"main.hotAlloc",
	"main.newPair",
};

struct cmp_ctx {
	struct ht_gobin *other;
	const char *what;
	int compared;
	int bad;
	bool other_is_symtab;
};

/* For each function of one object, the other has it by name at the same address/size. */
static int cmp_cb(const char *name, uint64_t addr, uint64_t size, void *arg)
{
	struct cmp_ctx *c = arg;
	const char *oname = NULL;
	uint64_t a = 0, s = 0, e = 0;

	/* The unstripped side has C functions pclntab does not list, and zero-size markers
	 * (runtime.text, runtime.etext). */
	if (c->other_is_symtab && (!size || gobin__func_at(c->other, addr, &oname, &e)))
		return 0;
	c->compared++;
	if (strstr(name, "[...]") && !gobin__func_at(c->other, addr, &oname, &e)) {
		/* Go 1.18-1.19 pclntab: "type..eq.[...]T" for .symtab's "type..eq.[5]T". */
		const char *open = strchr(oname, '['), *close = strrchr(oname, ']');
		char shortname[512];

		if (open && close > open)
			snprintf(shortname, sizeof(shortname), "%.*s[...]%s", (int)(open - oname),
				 oname, close + 1);
		else
			snprintf(shortname, sizeof(shortname), "%s", oname);
		if (strcmp(shortname, name) && ++c->bad <= 5)
			fail("%s: %s at 0x%llx is %s on the other side", c->what, name,
			     (unsigned long long)addr, oname);
		if (!gobin__lookup(c->other, name, &a, &s) && a != addr && ++c->bad <= 5)
			fail("%s: lookup of %s on the other side gives 0x%llx", c->what, name,
			     (unsigned long long)a);
		return 0;
	}
	if (gobin__lookup(c->other, name, &a, &s)) {
		if (++c->bad <= 5)
			fail("%s: %s (0x%llx) not found by name on the other side", c->what, name,
			     (unsigned long long)addr);
		return 0;
	}
	/* Markers with no pc tables (go:textfipsstart, 1.24+): .symtab says 1 byte, pclntab
	 * can only tell the distance to the next function. */
	if (a != addr || (s != size && strncmp(name, "go:", 3))) {
		if (++c->bad <= 5)
			fail("%s: %s at 0x%llx size %llu, other side 0x%llx size %llu",
			     c->what, name, (unsigned long long)addr, (unsigned long long)size,
			     (unsigned long long)a, (unsigned long long)s);
	}
	return 0;
}

static int collect_cb(const char *name, uint64_t addr, uint64_t size, void *arg)
{
	char *buf = arg;
	size_t len = strlen(buf);

	(void)size;
	if (len + strlen(name) + 32 < 16384)
		sprintf(buf + len, "%s@%llx ", name, (unsigned long long)addr);
	return 0;
}

static int count_sc_cb(const char *name, uint64_t addr, uint64_t size, void *arg)
{
	(void)addr;
	(void)size;
	if (strstr(name, "SC"))
		(*(int *)arg)++;
	return 0;
}

static int stop_cb(const char *name, uint64_t addr, uint64_t size, void *arg)
{
	(void)name;
	(void)addr;
	(void)size;
	return ++*(int *)arg == 3 ? 42 : 0;
}

/* file:line and bytes of each instruction objdump lists for func, in all three files. */
static void check_lines(const struct toolchain *tc, const struct build *b,
			struct ht_gobin *const objs[3], const char *const paths[3],
			const char *func, const struct program *p)
{
	struct insn *ins;
	size_t n = objdump_load(tc, b->full, func, &ins), i;
	int bad = 0, hot = 0, k;

	CHECK(n > 0, "%s: objdump lists no instruction of %s", b->what, func);
	for (k = 0; k < 3; k++) {
		size_t flen = 0;
		uint8_t *bytes = read_file(paths[k], &flen);

		for (i = 0; i < n && bytes; i++) {
			const char *file = NULL, *fname = NULL;
			uint64_t off = 0, entry = 0;
			int line = 0, err, j;

			err = gobin__line_at(objs[k], ins[i].addr, &file, &line);
			if (err || strcmp(ins[i].full_path ? file : base_name(file), ins[i].file) ||
			    line != ins[i].line) {
				if (++bad <= 5)
					fail("%s: %s: %s+0x%llx: line_at %d %s:%d, objdump %s:%d",
					     b->what, paths[k], func,
					     (unsigned long long)ins[i].addr, err,
					     err ? "-" : file, line, ins[i].file, ins[i].line);
				continue;
			}
			checks++;
			if (k == 0 && !strcmp(func, "main.hotAlloc"))
				CHECK(strlen(file) > 8 &&
					      !strcmp(file + strlen(file) - 8, "/main.go"),
				      "%s: %s file is '%s', not .../main.go", b->what, func, file);
			if (!strcmp(func, "main.hotAlloc") && line == p->hotline) {
				hot++;
				CHECK(!gobin__func_at(objs[k], ins[i].addr, &fname, &entry) &&
					      !strcmp(fname, "main.hotAlloc"),
				      "%s: func_at(hot PC) is not main.hotAlloc", b->what);
			}
			/* The instruction bytes at the file offset gobin gives (in the unstripped
			 * file only: RIP-relative displacements differ in the stripped ones). */
			if (k)
				continue;
			if (gobin__file_offset(objs[k], ins[i].addr, &off) ||
			    off + strlen(ins[i].hex) / 2 > flen) {
				fail("%s: no file offset for 0x%llx", b->what,
				     (unsigned long long)ins[i].addr);
				continue;
			}
			for (j = 0; ins[i].hex[2 * j]; j++) {
				unsigned v;

				sscanf(ins[i].hex + 2 * j, "%2x", &v);
				if (bytes[off + j] != v)
					break;
			}
			if (ins[i].hex[2 * j] && ++bad <= 5)
				fail("%s: %s: bytes at file offset 0x%llx are not objdump's %s",
				     b->what, paths[k], (unsigned long long)off, ins[i].hex);
		}
		free(bytes);
	}
	if (!strcmp(func, "main.hotAlloc"))
		CHECK(hot >= 3, "%s: no instruction of main.hotAlloc at main.go:%d in all three",
		      b->what, p->hotline);
	fprintf(stderr, "    %-24s %3zu insns: file:line and bytes as objdump%s\n", func, n,
		bad ? " (MISMATCHES)" : "");
	free(ins);
}

static void check_build(const struct toolchain *tc, const struct build *b,
			const struct program *p, const char *experiment)
{
	const char *const paths[3] = { b->full, b->strip, b->nosh };
	struct ht_gobin *objs[3] = { NULL, NULL, NULL };
	char *gv = go_version_of(tc, b->full);
	char *gms[2] = { go_modinfo_of(tc, b->full), go_modinfo_of(tc, b->strip) };
	char want_ver[160], fam[3][16384];
	struct nm_table nm;
	size_t i;
	int k;

	fprintf(stderr, "  %s [%.0fs]\n", b->what, elapsed());
	for (k = 0; k < 3; k++) {
		objs[k] = gobin__open(paths[k]);
		CHECK(objs[k], "%s: gobin__open(%s): %s", b->what, paths[k], strerror(errno));
	}
	if (!objs[0] || !objs[1] || !objs[2] || nm_load(tc, b->full, &nm)) {
		fail("%s: cannot go on", b->what);
		goto out;
	}

	/* Version, experiments and settings: what `go version [-m]` says. */
	/* Go 1.19 writes "go1.19.8 X:exp", later ones "go1.27.3-X:exp". */
	snprintf(want_ver, sizeof(want_ver), "%s%s%s", tc->version, *experiment ? " X:" : "",
		 experiment);
	if (gv && *experiment && strstr(gv, "-X:"))
		want_ver[strlen(tc->version)] = '-';
	CHECK(gv && !strcmp(gv, want_ver), "%s: go version says '%s', expected '%s'", b->what,
	      gv ? gv : "(failed)", want_ver);
	for (k = 0; k < 3; k++) {
		int maj = -1, min = -1, pat = -1;
		const char *v = gobin__version_string(objs[k]), *cgo_setting;

		CHECK(gobin__is_go(objs[k]), "%s: %s: not Go?", b->what, paths[k]);
		CHECK(v && !strcmp(v, tc->version), "%s: %s: version '%s', want '%s'", b->what,
		      paths[k], v ? v : "(null)", tc->version);
		CHECK(!gobin__version(objs[k], &maj, &min, &pat) && maj == 1 && min == tc->minor,
		      "%s: version numbers %d.%d.%d", b->what, maj, min, pat);
		CHECK(!strcmp(gobin__experiments(objs[k]), experiment),
		      "%s: %s: experiments '%s', want '%s'", b->what, paths[k],
		      gobin__experiments(objs[k]), experiment);
		/* (-ldflags is one of the settings: the stripped ones have their own) */
		CHECK(gms[!!k] && !strcmp(gobin__modinfo(objs[k]), gms[!!k]),
		      "%s: %s: modinfo differs from go version -m:\n%s---\n%s", b->what, paths[k],
		      gobin__modinfo(objs[k]), gms[!!k] ? gms[!!k] : "(failed)");
		cgo_setting = gobin__build_setting(objs[k], "CGO_ENABLED");
		CHECK(cgo_setting && !strcmp(cgo_setting, p->cgo ? "1" : "0"),
		      "%s: CGO_ENABLED setting", b->what);
		CHECK(!*experiment || (gobin__build_setting(objs[k], "GOEXPERIMENT") &&
				       !strcmp(gobin__build_setting(objs[k], "GOEXPERIMENT"),
					       experiment)),
		      "%s: GOEXPERIMENT setting", b->what);
		CHECK(gobin__pclntab_magic(objs[k]) ==
			      (tc->minor >= 20 ? 0xfffffff1u : 0xfffffff0u),
		      "%s: pclntab magic 0x%x", b->what, gobin__pclntab_magic(objs[k]));
	}
	CHECK(!strcmp(gobin__symbol_source(objs[0]), "symtab") &&
		      !strcmp(gobin__symbol_source(objs[1]), "pclntab") &&
		      !strcmp(gobin__symbol_source(objs[2]), "pclntab"),
	      "%s: symbol sources %s %s %s", b->what, gobin__symbol_source(objs[0]),
	      gobin__symbol_source(objs[1]), gobin__symbol_source(objs[2]));

	/* The functions a tracer needs: where nm puts them, in all three. */
	for (i = 0; i < sizeof(key_funcs) / sizeof(key_funcs[0]); i++) {
		const struct nm_sym *s = nm_find(&nm, key_funcs[i]);
		uint64_t off = 0, soff = 0;

		if (!s) {
			fail("%s: nm has no %s", b->what, key_funcs[i]);
			continue;
		}
		for (k = 0; k < 3; k++) {
			uint64_t a = 0, sz = 0, e = 0;
			const char *name = NULL;

			CHECK(!gobin__lookup(objs[k], key_funcs[i], &a, &sz) && a == s->addr &&
				      sz == s->size,
			      "%s: %s: %s at 0x%llx+%llu, nm says 0x%llx+%llu", b->what, paths[k],
			      key_funcs[i], (unsigned long long)a, (unsigned long long)sz,
			      (unsigned long long)s->addr, (unsigned long long)s->size);
			CHECK(!gobin__func_at(objs[k], s->addr + s->size / 2, &name, &e) &&
				      !strcmp(name, key_funcs[i]) && e == s->addr,
			      "%s: %s: func_at(middle of %s) = %s", b->what, paths[k],
			      key_funcs[i], name ? name : "-");
		}
		for (k = 0; k < 3; k++) {
			uint64_t poff = 0;

			CHECK(!gobin__file_offset(objs[k], s->addr, &off) &&
				      !phdr_offset(paths[k], s->addr, &poff) && off == poff &&
				      (k == 2 || (!section_offset(paths[k], s->addr, &soff) &&
						  off == soff)),
			      "%s: %s: file_offset(%s) 0x%llx, program headers say 0x%llx, "
			      "sections 0x%llx", b->what, paths[k], key_funcs[i],
			      (unsigned long long)off, (unsigned long long)poff,
			      (unsigned long long)soff);
		}
		if (!strcmp(key_funcs[i], "main.hotAlloc")) {
			const char *name = NULL;
			uint64_t e;
			int err;

			/* Alignment padding after a function belongs to none. */
			for (k = 0; k < 3; k++) {
				err = gobin__func_at(objs[k], s->addr + s->size, &name, &e);
				CHECK(err == -ENOENT || (name && strcmp(name, "main.hotAlloc")),
				      "%s: func_at(end of hotAlloc) = %d %s", b->what, err,
				      name ? name : "-");
			}
		}
	}

	/* Every function of the stripped builds, by name, in the unstripped one, and back. */
	for (k = 1; k < 3; k++) {
		struct cmp_ctx c = { objs[0], b->what, 0, 0, false };
		struct cmp_ctx back = { objs[k], b->what, 0, 0, true };

		gobin__for_each_func(objs[k], "", cmp_cb, &c);
		CHECK(c.compared > 500 && !c.bad, "%s: %s: %d of %d functions differ", b->what,
		      paths[k], c.bad, c.compared);
		gobin__for_each_func(objs[0], "", cmp_cb, &back);
		CHECK(back.compared > 500 && !back.bad,
		      "%s: %s: %d of %d unstripped functions differ", b->what, paths[k], back.bad,
		      back.compared);
		if (k == 1)
			fprintf(stderr,
				"    %d functions stripped = unstripped (name, address, size)\n",
				c.compared);
	}

	/* The allocation entry point family (Go 1.26+ size classes), as nm lists it. */
	{
		char want[16384] = "";
		int sc = 0, stops = 0;

		for (i = 0; i < nm.n; i++)
			if (!strncmp(nm.syms[i].name, "runtime.mallocgc", 16))
				collect_cb(nm.syms[i].name, nm.syms[i].addr, 0, want);
		for (k = 0; k < 3; k++) {
			fam[k][0] = '\0';
			gobin__for_each_func(objs[k], "runtime.mallocgc", collect_cb, fam[k]);
		}
		/* nm lists by address, gobin by name: compare as sorted word sets. */
		for (k = 0; k < 3; k++) {
			char *w, *save = NULL, copy[16384];
			int n_w = 0, n_f = 0;

			snprintf(copy, sizeof(copy), "%s", want);
			for (w = strtok_r(copy, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
				char pat[260];

				n_w++;
				snprintf(pat, sizeof(pat), "%s ", w);
				CHECK(strstr(fam[k], pat), "%s: %s: for_each_func misses %s",
				      b->what, paths[k], w);
			}
			for (w = fam[k]; (w = strchr(w, ' ')); w++)
				n_f++;
			CHECK(n_f == n_w, "%s: for_each_func(runtime.mallocgc) %d, nm %d", b->what,
			      n_f, n_w);
		}
		gobin__for_each_func(objs[1], "runtime.mallocgcSmall", count_sc_cb, &sc);
		gobin__for_each_func(objs[1], "runtime.mallocgcTiny", count_sc_cb, &sc);
		{
			size_t nfam = 0;
			const char *q;

			for (q = fam[1]; (q = strchr(q, ' ')); q++)
				nfam++;
			fprintf(stderr,
				"    runtime.mallocgc*: %zu functions, %d size-class ones\n", nfam,
				sc);
		}
		if (tc->minor >= 27 || !strcmp(experiment, "sizespecializedmalloc"))
			CHECK(sc > 0, "%s: no size-class allocation functions", b->what);
		else if (tc->minor <= 25)
			CHECK(sc == 0, "%s: size-class functions before 1.26?", b->what);
		CHECK(gobin__for_each_func(objs[1], "runtime.", stop_cb, &stops) == 42 &&
			      stops == 3,
		      "%s: for_each_func does not stop when the callback says so", b->what);
	}

	/* Source lines against objdump, instruction by instruction. */
	check_lines(tc, b, objs, paths, "main.hotAlloc", p);
	check_lines(tc, b, objs, paths, "main.main", p);
	check_lines(tc, b, objs, paths, "runtime.profilealloc", p);
	{
		const char *file = NULL;
		int line = 0;

		CHECK(gobin__line_at(objs[1], 0, &file, &line) == -ENOENT,
		      "%s: line_at(0) found something", b->what);
	}
	free(nm.syms);
out:
	for (k = 0; k < 3; k++)
		gobin__close(objs[k]);
	free(gv);
	free(gms[0]);
	free(gms[1]);
}

/* Builds prog four ways (exe, pie; each unstripped and -s -w) and checks each pair. */
static void check_toolchain_program(const struct toolchain *tc, const struct program *p,
				    const char *tag)
{
	static const struct {
		const char *mode;
		const char *flags;
	} modes[] = { { "exe", "" }, { "pie", "-buildmode=pie" } };
	size_t m;

	for (m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct build b;
		char what[128], flags[256];

		snprintf(what, sizeof(what), "%s %s %s", tc->version, modes[m].mode, tag);
		b.what = what;
		snprintf(b.full, sizeof(b.full), "%s/%s-%s-%s", tmp, tc->version, tag,
			 modes[m].mode);
		snprintf(b.strip, sizeof(b.strip), "%s-s", b.full);
		snprintf(b.nosh, sizeof(b.nosh), "%s-nosh", b.strip);
		snprintf(flags, sizeof(flags), "%s -ldflags='-s -w'", modes[m].flags);
		if (go_build(tc, p, b.full, modes[m].flags, "") ||
		    go_build(tc, p, b.strip, flags, ""))
			continue;
		if (copy_without_sections(b.strip, b.nosh)) {
			fail("cannot write %s", b.nosh);
			continue;
		}
		check_build(tc, &b, p, "");
	}
}

/* One build with a GOEXPERIMENT: the experiments and version as `go version` says. */
static void check_experiment(const struct toolchain *tc, const struct program *p)
{
	const char *exp = tc->minor == 26 ? "sizespecializedmalloc" : "heapminimum512kib";
	char env[128], what[160];
	struct build b;

	snprintf(env, sizeof(env), "GOEXPERIMENT=%s", exp);
	snprintf(what, sizeof(what), "%s exe GOEXPERIMENT=%s", tc->version, exp);
	b.what = what;
	snprintf(b.full, sizeof(b.full), "%s/%s-exp", tmp, tc->version);
	snprintf(b.strip, sizeof(b.strip), "%s-s", b.full);
	snprintf(b.nosh, sizeof(b.nosh), "%s-nosh", b.strip);
	if (go_build(tc, p, b.full, "", env) || go_build(tc, p, b.strip, "-ldflags='-s -w'", env) ||
	    copy_without_sections(b.strip, b.nosh))
		return;
	check_build(tc, &b, p, exp);
}

static int toolchain_init(struct toolchain *tc, const char *go)
{
	char *out = capture("'%s' version 2>/dev/null", go);
	char *v;

	snprintf(tc->go, sizeof(tc->go), "%s", go);
	if (!out || !(v = strstr(out, " go1."))) {
		free(out);
		return -1;
	}
	sscanf(v + 1, "%63s", tc->version);
	sscanf(v + 5, "%d", &tc->minor);
	free(out);
	return 0;
}

/* Checks every build of one toolchain; its version into version (if not NULL). */
static void check_toolchain(const char *go, const struct program *plain,
			    const struct program *cgo, char *version, size_t vsize)
{
	struct toolchain tc;

	if (toolchain_init(&tc, go)) {
		fail("%s version failed", go);
		return;
	}
	if (version)
		snprintf(version, vsize, "%s", tc.version);
	fprintf(stderr, "%s (%s) [%.0fs]\n", tc.version, go, elapsed());
	check_toolchain_program(&tc, plain, "go");
	if (cgo)
		check_toolchain_program(&tc, cgo, "cgo");
	check_experiment(&tc, plain);
}

/* ---- build info formats and bad input, with gcc ---- */

/* Compiles a C program whose .go.buildinfo section holds the given initializer text. */
static int cc_buildinfo(const char *out, const char *decls, const char *pie)
{
	char src[PATH_MAX + 8];
	char text[16384];

	snprintf(src, sizeof(src), "%s.c", out);
	snprintf(text, sizeof(text), "%s\nint main(void) { return 0; }\n", decls);
	if (write_file(src, text, strlen(text)))
		return -1;
	return run("cc -O1 %s -o '%s' '%s' 2>&1", pie, out, src);
}

/* The 1.13-1.17 format: two pointers to Go string headers, relocated in a PIE. */
static void check_old_buildinfo(void)
{
	static const char decls[] =
		"struct gostr { const char *p; unsigned long n; };\n"
		"static const char v[] = \"go1.17.13\";\n"
		"static const char m[] = \"0123456789abcdef"
		"path\\tx\\nbuild\\tCGO_ENABLED=0\\nbuild\\tGOEXPERIMENT=fieldtrack\\n"
		"0123456789abcdef\";\n"
		"static const struct gostr vs = { v, sizeof(v) - 1 }, ms = { m, sizeof(m) - 1 };\n"
		"struct bi { char magic[14]; unsigned char ps, flags;\n"
		"            const struct gostr *v, *m; };\n"
		"__attribute__((section(\".go.buildinfo\"), used, aligned(16)))\n"
		"static struct bi info = { \"\\xff Go buildinf:\", 8, 0, &vs, &ms };\n";
	static const char *const pies[] = { "-no-pie", "-pie -fPIE" };
	size_t i;

	fprintf(stderr, "old build info format (pointers), built with cc\n");
	for (i = 0; i < 3; i++) {
		char out[PATH_MAX];
		struct ht_gobin *g;
		int maj = 0, min = 0, pat = 0;

		snprintf(out, sizeof(out), "%s/oldbi%zu", tmp, i);
		if (cc_buildinfo(out, decls, pies[i ? 1 : 0])) {
			fail("cc for the old build info format failed");
			return;
		}
		if (i == 2) {
			/* The PIE's two pointers zeroed in the file: only DT_RELA holds them. */
			uint64_t off = 0, size = 0;
			size_t len;
			uint8_t *b = read_file(out, &len);

			CHECK(b && !section_range(out, ".go.buildinfo", &off, &size) && size >= 32,
			      "no .go.buildinfo in %s", out);
			if (!b || size < 32) {
				free(b);
				return;
			}
			memset(b + off + 16, 0, 16);
			write_file(out, b, len);
			free(b);
		}
		g = gobin__open(out);
		CHECK(g, "open %s: %s", out, strerror(errno));
		if (!g)
			continue;
		CHECK(gobin__is_go(g) && gobin__version_string(g) &&
			      !strcmp(gobin__version_string(g), "go1.17.13"),
		      "old format %zu: version %s", i,
		      gobin__version_string(g) ? gobin__version_string(g) : "(null)");
		CHECK(!gobin__version(g, &maj, &min, &pat) && maj == 1 && min == 17 && pat == 13,
		      "old format: %d.%d.%d", maj, min, pat);
		CHECK(!strcmp(gobin__experiments(g), "fieldtrack"), "old format: experiments '%s'",
		      gobin__experiments(g));
		CHECK(!strcmp(gobin__modinfo(g),
			      "path\tx\nbuild\tCGO_ENABLED=0\nbuild\tGOEXPERIMENT=fieldtrack\n"),
		      "old format: modinfo '%s'", gobin__modinfo(g));
		CHECK(gobin__build_setting(g, "CGO_ENABLED") &&
			      !strcmp(gobin__build_setting(g, "CGO_ENABLED"), "0") &&
			      !gobin__build_setting(g, "GOOS"),
		      "old format: settings");
		CHECK(gobin__line_at(g, 0x1000, NULL, NULL) == -ENOTSUP && !gobin__pclntab_magic(g),
		      "old format: a C program has no pclntab");
		gobin__close(g);
	}
}

/* The 1.18+ inline format with version strings of every shape. */
static void check_version_strings(void)
{
	static const struct {
		const char *raw;     /* runtime.buildVersion */
		const char *mod;     /* modinfo text without framing; NULL: none */
		const char *version; /* gobin__version_string */
		const char *exp;
		int rc, maj, min, pat;
	} cases[] = {
		{ "go1.20", "path\tx\n", "go1.20", "", 0, 1, 20, 0 },
		{ "go1.21rc2", "path\tx\n", "go1.21rc2", "", 0, 1, 21, 0 },
		{ "go1.19.13", NULL, "go1.19.13", "", 0, 1, 19, 13 },
		{ "devel go1.24-1a2b3c4 Tue Jan 7 10:00:00 2025 +0000", "path\tx\n",
		  "devel go1.24-1a2b3c4 Tue Jan 7 10:00:00 2025 +0000", "", 0, 1, 24, 0 },
		{ "go1.26.1 X:sizespecializedmalloc,nogreenteagc",
		  "build\tGOEXPERIMENT=sizespecializedmalloc,nogreenteagc\n", "go1.26.1",
		  "sizespecializedmalloc,nogreenteagc", 0, 1, 26, 1 },
		{ "go1.22.0", "build\tGOEXPERIMENT=rangefunc\n", "go1.22.0", "rangefunc", 0, 1, 22,
		  0 },
		{ "gccgo-ish", "path\tx\n", "gccgo-ish", "", -EINVAL, 0, 0, 0 },
		{ "go1", "path\tx\n", "go1", "", -EINVAL, 0, 0, 0 },
	};
	size_t i;

	fprintf(stderr, "inline build info format, version strings, built with cc\n");
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char decls[8192], out[PATH_MAX], blob[2048], mod[1024];
		size_t n = 0, j, vlen = strlen(cases[i].raw), mlen;
		struct ht_gobin *g;
		int maj = -1, min = -1, pat = -1, rc;
		const char *vs;

		if (cases[i].mod)
			snprintf(mod, sizeof(mod), "0123456789abcdef%s%s0123456789abcdef",
				 cases[i].mod, "");
		else
			mod[0] = '\0';
		/* The framing check wants "\n" 17 bytes from the end: true for these texts. */
		mlen = strlen(mod);
		memcpy(blob, "\xff Go buildinf:", 14);
		blob[14] = 8;
		blob[15] = 2;
		memset(blob + 16, 0, 16);
		n = 32;
		blob[n++] = (char)vlen; /* all < 128: one-byte uvarints */
		memcpy(blob + n, cases[i].raw, vlen);
		n += vlen;
		if (mlen >= 128) {
			blob[n++] = (char)(0x80 | (mlen & 0x7f));
			blob[n++] = (char)(mlen >> 7);
		} else {
			blob[n++] = (char)mlen;
		}
		memcpy(blob + n, mod, mlen);
		n += mlen;
		j = (size_t)snprintf(decls, sizeof(decls), "%s",
				     "__attribute__((section(\".go.buildinfo\"), used, "
				     "aligned(16)))\nstatic const unsigned char bi[] = {");
		for (size_t k = 0; k < n; k++)
			j += (size_t)snprintf(decls + j, sizeof(decls) - j, "%s0x%02x",
					      k ? "," : "", (unsigned char)blob[k]);
		snprintf(decls + j, sizeof(decls) - j, "};\n");
		snprintf(out, sizeof(out), "%s/inlinebi%zu", tmp, i);
		if (cc_buildinfo(out, decls, "")) {
			fail("cc for the inline build info format failed");
			return;
		}
		g = gobin__open(out);
		CHECK(g, "open %s: %s", out, strerror(errno));
		if (!g)
			continue;
		rc = gobin__version(g, &maj, &min, &pat);
		vs = gobin__version_string(g);
		CHECK(vs && !strcmp(vs, cases[i].version), "'%s': version string '%s'",
		      cases[i].raw, vs ? vs : "(null)");
		CHECK(rc == cases[i].rc && (rc || (maj == cases[i].maj && min == cases[i].min &&
						   pat == cases[i].pat)),
		      "'%s': gobin__version %d %d.%d.%d", cases[i].raw, rc, maj, min, pat);
		CHECK(!strcmp(gobin__experiments(g), cases[i].exp), "'%s': experiments '%s'",
		      cases[i].raw, gobin__experiments(g));
		CHECK(!strcmp(gobin__modinfo(g), cases[i].mod ? cases[i].mod : ""),
		      "'%s': modinfo '%s'", cases[i].raw, gobin__modinfo(g));
		gobin__close(g);
	}
}

static void check_bad_input(void)
{
	static const char not_elf[] = "package main\n\nfunc main() {}\n"
				      "// longer than an ELF header, not rejected for size\n";
	char path[PATH_MAX];
	uint64_t a = 0, off = 0, soff = 0, entry = 0;
	const char *name = NULL;
	struct ht_gobin *g;
	Elf64_Ehdr eh;
	size_t len;
	uint8_t *self;

	fprintf(stderr, "bad input\n");
	errno = 0;
	CHECK(!gobin__open("/nonexistent/heaptap") && errno == ENOENT, "missing file: errno %d",
	      errno);
	errno = 0;
	CHECK(!gobin__open(tmp) && errno == EISDIR, "directory: errno %d", errno);
	snprintf(path, sizeof(path), "%s/notelf", tmp);
	write_file(path, not_elf, sizeof(not_elf) - 1);
	errno = 0;
	CHECK(!gobin__open(path) && errno == ENOEXEC, "text file: errno %d", errno);
	write_file(path, "", 0);
	errno = 0;
	CHECK(!gobin__open(path) && errno == ENOEXEC, "empty file: errno %d", errno);
	self = read_file("/proc/self/exe", &len);
	if (!self || len < sizeof(eh)) {
		fail("cannot read /proc/self/exe");
		free(self);
		return;
	}
	memcpy(&eh, self, sizeof(eh));
	eh.e_ident[EI_CLASS] = ELFCLASS32;
	write_file(path, &eh, sizeof(eh));
	errno = 0;
	CHECK(!gobin__open(path) && errno == ENOEXEC, "32-bit ELF: errno %d", errno);
	memcpy(&eh, self, sizeof(eh));
	eh.e_phoff = len; /* program headers past the end */
	write_file(path, &eh, sizeof(eh));
	errno = 0;
	CHECK(!gobin__open(path) && errno == ENOEXEC, "truncated ELF: errno %d", errno);
	free(self);

	/* This test program: an ELF with a .symtab but no Go in it. */
	g = gobin__open("/proc/self/exe");
	CHECK(g, "open self: %s", strerror(errno));
	if (!g)
		return;
	CHECK(!gobin__is_go(g) && !gobin__version_string(g) &&
		      gobin__version(g, NULL, NULL, NULL) == -ENOENT && !*gobin__experiments(g) &&
		      !*gobin__modinfo(g) && !gobin__build_setting(g, "GOOS"),
	      "self: looks like Go");
	CHECK(!strcmp(gobin__symbol_source(g), "symtab") && !gobin__pclntab_magic(g),
	      "self: symbol source %s", gobin__symbol_source(g));
	CHECK(!gobin__lookup(g, "gobin__open", &a, NULL) &&
		      !gobin__func_at(g, a + 1, &name, &entry) && !strcmp(name, "gobin__open") &&
		      entry == a,
	      "self: gobin__open by name and address");
	CHECK(!gobin__file_offset(g, a, &off) && !section_offset("/proc/self/exe", a, &soff) &&
		      off == soff,
	      "self: file offset 0x%llx vs sections 0x%llx", (unsigned long long)off,
	      (unsigned long long)soff);
	CHECK(gobin__line_at(g, a, NULL, NULL) == -ENOTSUP, "self: line_at without pclntab");
	CHECK(gobin__lookup(g, "no.such.function", NULL, NULL) == -ENOENT, "self: lookup miss");
	CHECK(gobin__func_at(g, 0, NULL, NULL) == -ENOENT, "self: func_at(0)");
	CHECK(gobin__file_offset(g, 0, &off) == -ENOENT || off == 0, "self: file_offset(0)");
	gobin__close(g);
	gobin__close(NULL);
}

static int walk_cb(const char *name, uint64_t addr, uint64_t size, void *arg)
{
	(void)addr;
	(void)size;
	*(size_t *)arg += strlen(name);
	return 0;
}

/* Everything the API offers, on a (corrupted) object: nothing may crash or read out of
 * bounds (the SAN build checks that); results only have to keep the documented shapes. */
static void exercise(struct ht_gobin *g, uint64_t lo, uint64_t hi, unsigned *seed)
{
	size_t names = 0;
	int i, maj, min, pat;

	gobin__version(g, &maj, &min, &pat);
	gobin__experiments(g);
	gobin__modinfo(g);
	gobin__build_setting(g, "GOEXPERIMENT");
	gobin__for_each_func(g, "", walk_cb, &names);
	gobin__lookup(g, "runtime.mallocgc", NULL, NULL);
	gobin__lookup(g, "type..eq.[5]internal/cpu.option", NULL, NULL);
	for (i = 0; i < 400; i++) {
		uint64_t pc = lo + (uint64_t)rand_r(seed) % (hi - lo + 1), e, off;
		const char *file = NULL, *name = NULL;
		int line = 0, err;

		gobin__func_at(g, pc, &name, &e);
		gobin__file_offset(g, pc, &off);
		err = gobin__line_at(g, pc, &file, &line);
		CHECK(err == 0 || err == -ENOENT || err == -EINVAL || err == -ENOTSUP,
		      "line_at returned %d", err);
		CHECK(err || (file && line >= 0), "line_at: 0 without a file");
	}
}

static void check_corrupt(const char *src)
{
	uint64_t poff = 0, psize = 0, boff = 0, bsize = 0;
	char path[PATH_MAX];
	unsigned seed = 12345;
	size_t len, cuts[] = { 64, 4096, 0, 0 };
	uint8_t *orig = read_file(src, &len);
	struct ht_gobin *g;
	int i, opened = 0;
	int fd;

	fprintf(stderr, "corrupted copies of %s\n", base_name(src));
	if (!orig || section_range(src, ".gopclntab", &poff, &psize) ||
	    section_range(src, ".go.buildinfo", &boff, &bsize)) {
		fail("%s: cannot find its .gopclntab and .go.buildinfo", src);
		free(orig);
		return;
	}
	snprintf(path, sizeof(path), "%s/corrupt", tmp);
	if (write_file(path, orig, len) || (fd = open(path, O_WRONLY)) < 0) {
		fail("cannot write %s", path);
		free(orig);
		return;
	}
	for (i = 0; i < 400; i++) {
		/* A few random bytes in the pclntab header, its tables, the build info, or the
		 * ELF and program headers. */
		uint64_t where[8];
		int n = 1 + rand_r(&seed) % 8, j;

		for (j = 0; j < n; j++) {
			static const uint64_t spans[4] = { 128, 0, 0, 64 + 16 * 56 };
			uint8_t v = (uint8_t)rand_r(&seed);
			uint64_t span = i % 4 == 1 ? psize : i % 4 == 2 ? bsize : spans[i % 4];
			uint64_t base = i % 4 == 2 ? boff : i % 4 == 3 ? 0 : poff;

			span = span ? span : 1;
			where[j] = base + (uint64_t)rand_r(&seed) % span;
			if (pwrite(fd, &v, 1, (off_t)where[j]) != 1)
				fail("pwrite");
		}
		g = gobin__open(path);
		if (g) {
			opened++;
			exercise(g, 0x400000, 0x500000, &seed);
			gobin__close(g);
		}
		for (j = 0; j < n; j++)
			if (pwrite(fd, orig + where[j], 1, (off_t)where[j]) != 1)
				fail("pwrite");
	}
	close(fd);
	cuts[2] = len / 2;
	cuts[3] = len - 1;
	for (i = 0; i < 4; i++) {
		if (write_file(path, orig, cuts[i]))
			continue;
		g = gobin__open(path);
		if (g) {
			exercise(g, 0x400000, 0x500000, &seed);
			gobin__close(g);
		}
	}
	fprintf(stderr, "    400 corrupted copies (%d opened), 4 truncated: no crash\n", opened);
	free(orig);
}

/* ---- main ---- */

static int find_root(void)
{
	char exe[PATH_MAX], probe[PATH_MAX + 32];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	int up;

	if (access("scripts/fetch-go.sh", X_OK) == 0 && getcwd(root, sizeof(root)))
		return 0; /* run from the repository root, as tests/run.py does */
	if (n <= 0)
		return -1;
	exe[n] = '\0';
	/* build/unit/test_gobin or build-san/unit/test_gobin: the root is three levels up. */
	for (up = 0; up < 3; up++) {
		char *s = strrchr(exe, '/');

		if (!s)
			return -1;
		*s = '\0';
	}
	snprintf(probe, sizeof(probe), "%s/scripts/fetch-go.sh", exe);
	if (access(probe, X_OK))
		return -1;
	snprintf(root, sizeof(root), "%s", exe);
	return 0;
}

/* GOCACHE: $HEAPTAP_GOCACHE, else build/go-cache of this repository (gitignored; tests/run.py
 * gives a unit test 300 s, and compiling the std of a new toolchain twice, plain and PIE,
 * takes a minute or more: the cache lets the build-san run and later runs skip that), else
 * a directory in tmp.  The cache is content-addressed: it changes no result. */
static void setup_go_env(void)
{
	char path[PATH_MAX + 16];
	const char *cache = getenv("HEAPTAP_GOCACHE");

	if (cache && *cache)
		snprintf(path, sizeof(path), "%s", cache);
	else if (*root)
		snprintf(path, sizeof(path), "%s/build/go-cache", root);
	else
		snprintf(path, sizeof(path), "%s/gocache", tmp);
	setenv("GOCACHE", path, 1);
	fprintf(stderr, "GOCACHE=%s\n", path);
	snprintf(path, sizeof(path), "%s/gopath", tmp);
	setenv("GOPATH", path, 1);
	setenv("GOPROXY", "off", 1);
	setenv("GOTOOLCHAIN", "local", 1);
	setenv("GOFLAGS", "-mod=mod", 1);
	setenv("GO111MODULE", "on", 1);
	setenv("GOWORK", "off", 1);
	setenv("GOENV", "off", 1);
	setenv("GOTELEMETRY", "off", 1);
	unsetenv("GOROOT");
	unsetenv("GOEXPERIMENT");
	unsetenv("GOOS");
	unsetenv("GOARCH");
}

/* Fetches Go version v ("1.27") with scripts/fetch-go.sh; its go command into go. */
static int fetch_toolchain(const char *v, char *go, size_t gosize)
{
	char goroot[PATH_MAX], *out;

	if (!*root) {
		fprintf(stderr, "SKIP go %s: no scripts/fetch-go.sh found\n", v);
		return -1;
	}
	if (elapsed() > FETCH_BUDGET_S) {
		fprintf(stderr, "SKIP go %s: %.0f s spent already (budget %d s)\n", v, elapsed(),
			FETCH_BUDGET_S);
		return -1;
	}
	out = capture("'%s/scripts/fetch-go.sh' '%s' '%s/build/go-toolchains'", root, v, root);
	if (!out || sscanf(out, "%4095s", goroot) != 1) {
		fprintf(stderr, "SKIP go %s: scripts/fetch-go.sh could not get it (above)\n", v);
		free(out);
		return -1;
	}
	free(out);
	snprintf(go, gosize, "%s/bin/go", goroot);
	return 0;
}

static void check_go(void)
{
	bool have_cc = !run("command -v cc >/dev/null 2>&1");
	const char *versions = getenv("HEAPTAP_GO_VERSIONS");
	char list[256], *v, *save = NULL, go[PATH_MAX + 16];
	char *which = capture("command -v go");
	struct program plain, cgo;
	const struct program *pc = have_cc ? &cgo : NULL;

	if (!which || sscanf(which, "%4095s", go) != 1) {
		fprintf(stderr, "SKIP Go builds: no go command (apt-get install golang-go)\n");
		free(which);
		return;
	}
	free(which);
	setup_go_env();
	if (make_program(&plain, "prog", false) || make_program(&cgo, "progcgo", true)) {
		fail("cannot write the Go programs");
		return;
	}
	if (!have_cc)
		fprintf(stderr, "SKIP cgo builds: no C compiler\n");

	check_toolchain(go, &plain, pc, sysver, sizeof(sysver));
	snprintf(list, sizeof(list), "%s", versions ? versions : DEFAULT_GO_VERSIONS);
	for (v = strtok_r(list, " ,", &save); v && strcmp(v, "none");
	     v = strtok_r(NULL, " ,", &save))
		if (!fetch_toolchain(v, go, sizeof(go)))
			check_toolchain(go, &plain, pc, NULL, 0);
	if (*sysver) {
		char bin[PATH_MAX];

		snprintf(bin, sizeof(bin), "%s/%s-go-exe-s", tmp, sysver);
		check_corrupt(bin);
	}
}

int main(void)
{
	clock_gettime(CLOCK_MONOTONIC, &t_start);
	elf_version(EV_CURRENT);
	if (!mkdtemp(tmp)) {
		perror("mkdtemp");
		return 1;
	}
	if (find_root())
		fprintf(stderr, "note: repository root not found from /proc/self/exe\n");

	check_bad_input();
	if (!run("command -v cc >/dev/null 2>&1")) {
		check_old_buildinfo();
		check_version_strings();
	} else {
		fprintf(stderr, "SKIP build info format cases: no C compiler\n");
	}
	check_go();

	if (!getenv("HEAPTAP_KEEP_TMP"))
		run("chmod -R u+w '%s' 2>/dev/null; rm -rf '%s'", tmp, tmp);
	else
		fprintf(stderr, "kept %s\n", tmp);
	fprintf(stderr, "test_gobin: %d checks, %d failures [%.0fs]\n", checks, failures,
		elapsed());
	return failures ? 1 : 0;
}
