// SPDX-License-Identifier: GPL-2.0
/*
 * Unit test for modmap and symbolize: reads this process's own map, checks biases against
 * the ELF symbol table and the dynamic loader, and symbolizes functions of this file (exact
 * IPs, return addresses, an inlined call) and of libc; then the cases that matter after
 * the fact: a child that exited, a deleted executable, a missing file, a stripped binary.
 * Exit status 0 on success; every failed check is printed to stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "modmap.h"
#include "symbolize.h"

static int failures;

#define CHECK(cond, ...)                                                               \
	do {                                                                           \
		if (!(cond)) {                                                         \
			fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond); \
			fprintf(stderr, __VA_ARGS__);                                  \
			fputc('\n', stderr);                                           \
			failures++;                                                    \
		}                                                                      \
	} while (0)

/* No inlining, and no .constprop clones whose names would not match (clang makes none). */
#ifdef __clang__
#define NOINL __attribute__((noinline))
#else
#define NOINL __attribute__((noinline, noclone))
#endif

static volatile int sink;
static int caller_line, inl_line, outer_line;

/* Where target_fn is defined: an entry IP maps to its first line or its first statement. */
NOINL int target_fn(int x);
enum { TARGET_FN_LINE = __LINE__ + 1, TARGET_FN_LAST = __LINE__ + 5 };
NOINL int target_fn(int x)
{
	sink += x;
	return sink * 3;
}

/* The return address of this call: a location inside whoever called us. */
NOINL void *get_ret(void);
NOINL void *get_ret(void)
{
	sink++;
	return __builtin_return_address(0);
}

NOINL void *caller_fn(void);
NOINL void *caller_fn(void)
{
	void *r = get_ret(); caller_line = __LINE__;
	sink++; /* keeps the call from becoming a tail jump */
	return r;
}

static inline __attribute__((always_inline)) void *inl_fn(void)
{
	void *r = get_ret(); inl_line = __LINE__;
	sink++;
	return r;
}

NOINL void *outer_fn(void);
NOINL void *outer_fn(void)
{
	void *r = inl_fn(); outer_line = __LINE__;
	sink++;
	return r;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a = s ? strlen(s) : 0, b = strlen(suffix);

	return s && a >= b && strcmp(s + a - b, suffix) == 0;
}

/* st_value of a .symtab symbol of the ELF file at path. */
static int elf_sym_value(const char *path, const char *name, uint64_t *val)
{
	Elf_Scn *scn = NULL;
	int fd, err = -ENOENT;
	Elf *elf;

	elf_version(EV_CURRENT);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	elf = elf_begin(fd, ELF_C_READ, NULL);
	while (elf && err && (scn = elf_nextscn(elf, scn))) {
		GElf_Shdr sh;
		Elf_Data *data;
		size_t i;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_SYMTAB)
			continue;
		data = elf_getdata(scn, NULL);
		for (i = 0; data && i < sh.sh_size / sh.sh_entsize; i++) {
			GElf_Sym sym;
			const char *n;

			if (!gelf_getsym(data, i, &sym))
				continue;
			n = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (n && strcmp(n, name) == 0) {
				*val = sym.st_value;
				err = 0;
				break;
			}
		}
	}
	elf_end(elf);
	close(fd);
	return err;
}

static void print_frames(const char *what, const struct ht_frame_info *f, int n)
{
	int i;

	for (i = 0; i < n; i++)
		fprintf(stderr, "  %s[%d] %s %s:%d %s+%#llx%s\n", what, i,
			f[i].function ? f[i].function : "??", f[i].file ? f[i].file : "??",
			f[i].line, f[i].module, (unsigned long long)f[i].module_offset,
			f[i].inlined ? " (inlined)" : "");
}

/* Looks up addr and checks the outermost frame is fn in this file at line (0: any). */
static int expect_fn(struct ht_symbolizer *s, uint64_t addr, bool ret, const char *fn,
		     int line_lo, int line_hi, const char *what)
{
	struct ht_frame_info f[8];
	int n = symbolizer__lookup(s, addr, ret, f, 8);

	CHECK(n >= 1, "%s: lookup returned %d", what, n);
	if (n < 1)
		return n;
	CHECK(f[n - 1].function && strcmp(f[n - 1].function, fn) == 0, "%s: function %s, want %s",
	      what, f[n - 1].function ? f[n - 1].function : "(null)", fn);
	CHECK(ends_with(f[n - 1].file, "test_symbolize.c"), "%s: file %s", what,
	      f[n - 1].file ? f[n - 1].file : "(null)");
	CHECK(f[n - 1].line >= line_lo && f[n - 1].line <= line_hi, "%s: line %d, want %d..%d",
	      what, f[n - 1].line, line_lo, line_hi);
	CHECK(!f[n - 1].inlined, "%s: last frame marked inlined", what);
	if (failures)
		print_frames(what, f, n);
	return n;
}

static void test_self(void)
{
	char exe[PATH_MAX], want_open[PATH_MAX + 32];
	struct ht_modmap map = { 0 };
	const struct ht_module *m, *libc;
	struct ht_frame_info f[8], g[8];
	struct ht_symbolizer *s;
	struct link_map *lm = NULL;
	uint64_t addr = (uint64_t)(uintptr_t)&target_fn, val = 0;
	void *h, *libc_malloc;
	const char *fn;
	ssize_t len;
	size_t i;
	int n, err;

	err = modmap__read(getpid(), &map);
	CHECK(err == 0, "modmap__read(self) = %d", err);
	if (err)
		return;
	for (i = 1; i < map.n; i++)
		CHECK(map.mods[i - 1].start < map.mods[i].start, "modules not sorted at %zu", i);
	for (i = 0; i < map.n; i++)
		CHECK(map.mods[i].start < map.mods[i].end && map.mods[i].path[0] == '/',
		      "bad module %s", map.mods[i].path);

	/* The executable: path, open_path, build-id, and bias against its .symtab. */
	len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	CHECK(len > 0, "readlink: %s", strerror(errno));
	exe[len > 0 ? len : 0] = '\0';
	m = modmap__find(&map, addr);
	CHECK(m != NULL, "no module for target_fn");
	if (m) {
		CHECK(strcmp(m->path, exe) == 0, "exe path %s, want %s", m->path, exe);
		snprintf(want_open, sizeof(want_open), "/proc/%d/root%s", (int)getpid(), exe);
		CHECK(strcmp(m->open_path, want_open) == 0, "open_path %s", m->open_path);
		CHECK(!m->deleted, "exe marked deleted");
		CHECK(strlen(m->build_id) == 40, "exe build-id '%s'", m->build_id);
		CHECK(m->executable_map, "exe has no r-x mapping");
		err = elf_sym_value(exe, "target_fn", &val);
		CHECK(err == 0, "target_fn not in .symtab: %d", err);
		CHECK(addr - m->bias == val, "exe bias %#llx: %#llx - bias != st_value %#llx",
		      (unsigned long long)m->bias, (unsigned long long)addr,
		      (unsigned long long)val);
	}
	CHECK(modmap__find(&map, 0x10) == NULL, "module found for 0x10");

	/* libc: dlsym on its own handle gives libc's malloc even under ASan's interceptor. */
	h = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
	CHECK(h != NULL, "dlopen libc: %s", dlerror());
	if (!h)
		goto out;
	libc_malloc = dlsym(h, "malloc");
	CHECK(dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0 && lm, "dlinfo: %s", dlerror());
	libc = modmap__find(&map, (uint64_t)(uintptr_t)libc_malloc);
	CHECK(libc && strstr(libc->path, "libc.so"), "libc module: %s",
	      libc ? libc->path : "(none)");
	if (libc && lm) {
		CHECK(libc->bias == (uint64_t)lm->l_addr, "libc bias %#llx, ld.so says %#llx",
		      (unsigned long long)libc->bias, (unsigned long long)lm->l_addr);
		CHECK(strlen(libc->build_id) == 40, "libc build-id '%s'", libc->build_id);
	}

	s = symbolizer__new(&map);
	CHECK(s != NULL, "symbolizer__new: %s", strerror(errno));
	if (!s)
		goto out_h;

	/* Exact IP at a function entry. */
	expect_fn(s, addr, false, "target_fn", TARGET_FN_LINE, TARGET_FN_LAST, "target_fn");
	n = symbolizer__lookup(s, addr, false, f, 8);
	CHECK(n == 1 && m && f[0].module_offset == addr - m->bias && m &&
	      strcmp(f[0].module, m->path) == 0, "target_fn module/offset");

	/* Return addresses: the exact line of the call. */
	addr = (uint64_t)(uintptr_t)caller_fn();
	expect_fn(s, addr, true, "caller_fn", caller_line, caller_line, "return address");

	/* An inlined call: [inl_fn at the call of get_ret, outer_fn at the call of inl_fn]. */
	addr = (uint64_t)(uintptr_t)outer_fn();
	n = expect_fn(s, addr, true, "outer_fn", outer_line, outer_line, "inlined");
	CHECK(n == 2, "inline chain has %d frames, want 2", n);
	n = symbolizer__lookup(s, addr, true, f, 8);
	if (n == 2) {
		CHECK(f[0].function && strcmp(f[0].function, "inl_fn") == 0, "inner %s",
		      f[0].function ? f[0].function : "(null)");
		CHECK(f[0].inlined, "inner frame not marked inlined");
		CHECK(ends_with(f[0].file, "test_symbolize.c") && f[0].line == inl_line,
		      "inner at %s:%d, want line %d", f[0].file ? f[0].file : "(null)", f[0].line,
		      inl_line);
		CHECK(f[0].module_offset == f[1].module_offset, "frames of one address differ");
	}
	if (failures)
		print_frames("inline", f, n);
	/* Cut to one frame: the real function is kept. */
	n = symbolizer__lookup(s, addr, true, g, 1);
	CHECK(n == 1 && g[0].function && strcmp(g[0].function, "outer_fn") == 0 && !g[0].inlined,
	      "max=1 gave %s", n == 1 && g[0].function ? g[0].function : "?");
	/* Cached: same strings. */
	n = symbolizer__lookup(s, addr, true, g, 8);
	CHECK(n == 2 && g[0].function == f[0].function && g[1].file == f[1].file,
	      "second lookup differs");

	/* libc by name (with libc6-dbg installed this also has a file:line). */
	addr = (uint64_t)(uintptr_t)libc_malloc;
	n = symbolizer__lookup(s, addr, false, f, 8);
	fn = n >= 1 && f[n - 1].function ? f[n - 1].function : "?";
	/* malloc is an alias of __libc_malloc: DWARF says the latter, .dynsym either. */
	CHECK(strcmp(fn, "malloc") == 0 || strcmp(fn, "__libc_malloc") == 0,
	      "libc malloc symbolized as %s", fn);
	CHECK(n >= 1 && strstr(f[n - 1].module, "libc.so"), "malloc module %s",
	      n >= 1 ? f[n - 1].module : "?");
	if (lm)
		CHECK(n >= 1 && f[n - 1].module_offset == addr - lm->l_addr,
		      "malloc module_offset");
	if (failures)
		print_frames("malloc", f, n);

	/* An address in no module. */
	n = symbolizer__lookup(s, 0x10, false, f, 8);
	CHECK(n == 1 && !f[0].function && !f[0].file && strcmp(f[0].module, "[unknown]") == 0,
	      "unknown address gave %s in %s", n == 1 && f[0].function ? f[0].function : "?",
	      n == 1 ? f[0].module : "?");

	/* Demangling. */
	CHECK(strcmp(symbolizer__demangle(s, "_ZN2ns3fooEi"), "ns::foo(int)") == 0, "demangle");
	CHECK(strcmp(symbolizer__demangle(s, "main"), "main") == 0, "demangle C name");
	CHECK(strcmp(symbolizer__demangle(s, "_Zbogus"), "_Zbogus") == 0, "demangle invalid");

	symbolizer__free(s);
out_h:
	dlclose(h);
out:
	modmap__clear(&map);
	modmap__clear(&map); /* idempotent */
}

/* A child that exited: its saved map still symbolizes through the files' plain paths. */
static void test_exited_child(void)
{
	struct ht_modmap map = { 0 }, gone = { 0 };
	struct ht_symbolizer *s;
	int pfd[2], err, status;
	pid_t pid;

	if (pipe(pfd)) {
		CHECK(0, "pipe: %s", strerror(errno));
		return;
	}
	pid = fork();
	if (pid == 0) {
		char c;

		close(pfd[1]);
		while (read(pfd[0], &c, 1) > 0)
			;
		_exit(0);
	}
	close(pfd[0]);
	err = modmap__read(pid, &map);
	CHECK(err == 0 && map.n > 0, "modmap__read(child) = %d, %zu modules", err, map.n);
	close(pfd[1]);
	waitpid(pid, &status, 0);

	err = modmap__read(pid, &gone);
	CHECK(err == -ESRCH, "modmap__read(exited) = %d, want -ESRCH", err);
	modmap__clear(&gone);

	s = symbolizer__new(&map);
	CHECK(s != NULL, "symbolizer__new(child map): %s", strerror(errno));
	if (s)
		expect_fn(s, (uint64_t)(uintptr_t)&target_fn, false, "target_fn", TARGET_FN_LINE,
			  TARGET_FN_LAST, "exited child");
	symbolizer__free(s);
	modmap__clear(&map);
}

/* Child mode for test_deleted(): say we are up, then wait for stdin to close. */
static int child_wait(void)
{
	char c = 'r';

	if (write(1, &c, 1) != 1)
		return 1;
	while (read(0, &c, 1) > 0)
		;
	return 0;
}

static int copy_file(const char *from, const char *to)
{
	char buf[65536];
	int in, out, err = 0;
	ssize_t n;

	in = open(from, O_RDONLY);
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
	while (in >= 0 && out >= 0 && (n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, n) != n)
			err = -EIO;
	if (in < 0 || out < 0)
		err = -errno;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

/* A running executable that was deleted: found through /proc/PID/map_files. */
static void test_deleted(void)
{
	char tmp[] = "/tmp/heaptap_test_symbolize_XXXXXX";
	struct ht_modmap map = { 0 };
	const struct ht_module *m = NULL;
	struct ht_symbolizer *s;
	int in[2], out[2], fd, status, err;
	uint64_t val;
	size_t i;
	pid_t pid;
	char c;

	fd = mkstemp(tmp);
	if (fd < 0) {
		CHECK(0, "mkstemp: %s", strerror(errno));
		return;
	}
	close(fd);
	err = copy_file("/proc/self/exe", tmp);
	if (!err && chmod(tmp, 0700))
		err = -errno;
	CHECK(err == 0, "copy exe: %d", err);
	if (err || pipe(in) || pipe(out))
		goto out_unlink;
	pid = fork();
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		execl(tmp, tmp, "--child-wait", (char *)NULL);
		fprintf(stderr, "exec %s: %s\n", tmp, strerror(errno));
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	CHECK(read(out[0], &c, 1) == 1, "child did not start");
	unlink(tmp);

	err = modmap__read(pid, &map);
	CHECK(err == 0, "modmap__read(deleted) = %d", err);
	for (i = 0; i < map.n; i++)
		if (strcmp(map.mods[i].path, tmp) == 0)
			m = &map.mods[i];
	CHECK(m != NULL, "no module %s", tmp);
	if (m) {
		CHECK(m->deleted, "not marked deleted");
		CHECK(strncmp(m->open_path, "/proc/", 6) == 0 &&
		      strstr(m->open_path, "/map_files/"), "open_path %s", m->open_path);
		s = symbolizer__new(&map);
		CHECK(s != NULL, "symbolizer__new: %s", strerror(errno));
		if (s && elf_sym_value("/proc/self/exe", "target_fn", &val) == 0)
			expect_fn(s, m->bias + val, false, "target_fn", TARGET_FN_LINE,
				  TARGET_FN_LAST, "deleted exe");
		symbolizer__free(s);
	}
	close(in[1]);
	close(out[0]);
	waitpid(pid, &status, 0);
	modmap__clear(&map);
	return;
out_unlink:
	unlink(tmp);
}

/* Files that are missing or stripped: no names, but module and offset still right. */
static void test_missing_and_stripped(void)
{
	char stripped[] = "/tmp/heaptap_test_stripped_XXXXXX", cmd[256];
	struct ht_module mod = {
		.path = "/nonexistent/libfoo.so",
		.open_path = "/nonexistent/root/libfoo.so",
		.start = 0x10000,
		.end = 0x20000,
		.bias = 0x10000,
	};
	struct ht_modmap map = { .mods = &mod, .n = 1 };
	struct ht_modmap self = { 0 };
	const struct ht_module *exe;
	struct ht_frame_info f[4];
	struct ht_symbolizer *s;
	uint64_t addr = (uint64_t)(uintptr_t)&target_fn;
	int n, fd;

	s = symbolizer__new(&map);
	CHECK(s != NULL, "symbolizer__new(missing): %s", strerror(errno));
	if (s) {
		n = symbolizer__lookup(s, 0x10500, true, f, 4);
		CHECK(n == 1 && !f[0].function && strcmp(f[0].module, mod.path) == 0 &&
		      f[0].module_offset == 0x500, "missing file gave %d frames", n);
		symbolizer__free(s);
	}

	/* A stripped copy of this executable standing in for it (needs binutils' strip). */
	if (system("command -v strip >/dev/null 2>&1") != 0) {
		fprintf(stderr, "skip: stripped binary (no strip)\n");
		return;
	}
	fd = mkstemp(stripped);
	if (fd < 0) {
		CHECK(0, "mkstemp: %s", strerror(errno));
		return;
	}
	close(fd);
	snprintf(cmd, sizeof(cmd), "strip -o %s /proc/%d/exe", stripped, (int)getpid());
	CHECK(system(cmd) == 0, "%s failed", cmd);
	if (modmap__read(getpid(), &self) == 0 && (exe = modmap__find(&self, addr))) {
		struct ht_module copy = *exe;
		struct ht_modmap one = { .mods = &copy, .n = 1 };

		copy.path = stripped;
		copy.open_path = stripped;
		s = symbolizer__new(&one);
		CHECK(s != NULL, "symbolizer__new(stripped): %s", strerror(errno));
		if (s) {
			n = symbolizer__lookup(s, addr, false, f, 4);
			CHECK(n == 1 && !f[0].function && !f[0].file &&
			      strcmp(f[0].module, stripped) == 0 &&
			      f[0].module_offset == addr - exe->bias,
			      "stripped gave %s", n >= 1 && f[0].function ? f[0].function : "?");
			if (failures)
				print_frames("stripped", f, n);
			symbolizer__free(s);
		}
	}
	modmap__clear(&self);
	unlink(stripped);
}

/*
 * A shared object whose first PT_LOAD is not at vaddr 0 (as prelink(8) leaves them): the
 * case where dwfl_report_elf's base means something else with add_p_vaddr false.
 */
static void test_nonzero_vaddr(void)
{
	char dir[] = "/tmp/heaptap_test_so_XXXXXX", src[64], so[64], cmd[256];
	struct ht_modmap map = { 0 };
	const struct ht_module *m;
	struct link_map *lm = NULL;
	struct ht_symbolizer *s;
	struct ht_frame_info f[4];
	void *h = NULL, *fn;
	FILE *out;
	int n;

	if (system("command -v cc >/dev/null 2>&1") != 0 || !mkdtemp(dir)) {
		fprintf(stderr, "skip: nonzero-vaddr object (no cc)\n");
		return;
	}
	snprintf(src, sizeof(src), "%s/so.c", dir);
	snprintf(so, sizeof(so), "%s/libht_high.so", dir);
	out = fopen(src, "w");
	if (!out)
		goto out_rm;
	fputs("int ht_high_fn(int x)\n{\n\treturn x * 7 + 1;\n}\n", out);
	fclose(out);
	snprintf(cmd, sizeof(cmd), "cc -shared -fPIC -g -O1 -Wl,-Ttext-segment=0x10000000 -o %s %s",
		 so, src);
	CHECK(system(cmd) == 0, "%s failed", cmd);
	h = dlopen(so, RTLD_NOW);
	CHECK(h != NULL, "dlopen %s: %s", so, dlerror());
	if (!h)
		goto out_rm;
	fn = dlsym(h, "ht_high_fn");
	CHECK(fn && dlinfo(h, RTLD_DI_LINKMAP, &lm) == 0, "dlsym/dlinfo: %s", dlerror());
	CHECK(modmap__read(getpid(), &map) == 0, "modmap__read");
	m = modmap__find(&map, (uint64_t)(uintptr_t)fn);
	CHECK(m && strcmp(m->path, so) == 0, "module of ht_high_fn: %s", m ? m->path : "(none)");
	if (m && lm)
		CHECK(m->bias == (uint64_t)lm->l_addr, "bias %#llx, ld.so says %#llx",
		      (unsigned long long)m->bias, (unsigned long long)lm->l_addr);
	s = symbolizer__new(&map);
	CHECK(s != NULL, "symbolizer__new: %s", strerror(errno));
	if (s && fn) {
		n = symbolizer__lookup(s, (uint64_t)(uintptr_t)fn, false, f, 4);
		CHECK(n == 1 && f[0].function && strcmp(f[0].function, "ht_high_fn") == 0 &&
		      ends_with(f[0].file, "so.c") && f[0].line >= 1 && f[0].line <= 3,
		      "ht_high_fn symbolized as %s", n >= 1 && f[0].function ? f[0].function : "?");
		if (failures)
			print_frames("nonzero vaddr", f, n);
	}
	symbolizer__free(s);
	modmap__clear(&map);
	dlclose(h);
out_rm:
	unlink(so);
	unlink(src);
	rmdir(dir);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--child-wait") == 0)
		return child_wait();

	CHECK(modmap__read(-2, &(struct ht_modmap){ 0 }) == -ESRCH, "bad pid not -ESRCH");
	symbolizer__free(NULL);
	modmap__clear(NULL);

	test_self();
	test_exited_child();
	test_deleted();
	test_missing_and_stripped();
	test_nonzero_vaddr();

	if (failures) {
		fprintf(stderr, "test_symbolize: %d check(s) failed\n", failures);
		return 1;
	}
	fprintf(stderr, "test_symbolize: ok\n");
	return 0;
}
