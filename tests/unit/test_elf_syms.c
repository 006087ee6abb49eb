/*
 * Unit test for src/elf_syms.c: symbol loading and probe-site choice, on this machine's
 * real glibc and libstdc++ and on small objects assembled here so every rule of the site
 * choice has a case with a known answer.  Prints the chosen sites to stderr; returns 0 when
 * every check passes.  Needs gcc for the assembled cases (skipped with a message if absent).
 */
#include <capstone/capstone.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <libelf.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "elf_syms.h"

#define LIBC "/lib/x86_64-linux-gnu/libc.so.6"
#define LIBSTDCXX "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"

static int failures;

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

#define CHECK(cond, ...)              \
	do {                          \
		if (!(cond))          \
			fail(__VA_ARGS__); \
	} while (0)

/* File offset of vaddr computed a second, independent way: through the section headers. */
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

/* Reads the bytes at the site's file offset, decodes one instruction there and checks it
 * is the instruction the module described. */
static void check_site_bytes(const char *path, const char *name, const struct ht_probe_site *s)
{
	uint8_t buf[16];
	uint64_t sec_off = 0;
	cs_insn *in = NULL;
	char text[256];
	ssize_t got;
	size_t n;
	csh cs;
	int fd;

	if (section_offset(path, s->sym_vaddr + s->insn_offset, &sec_off))
		fail("%s: no section holds 0x%llx", name,
		     (unsigned long long)(s->sym_vaddr + s->insn_offset));
	else
		CHECK(sec_off == s->file_offset, "%s: file_offset 0x%llx, sections say 0x%llx",
		      name, (unsigned long long)s->file_offset, (unsigned long long)sec_off);

	fd = open(path, O_RDONLY);
	if (fd < 0) {
		fail("%s: cannot reopen %s", name, path);
		return;
	}
	got = pread(fd, buf, sizeof(buf), (off_t)s->file_offset);
	close(fd);
	if (got <= 0) {
		fail("%s: cannot read at file_offset 0x%llx", name,
		     (unsigned long long)s->file_offset);
		return;
	}
	if (cs_open(CS_ARCH_X86, CS_MODE_64, &cs) != CS_ERR_OK) {
		fail("cs_open");
		return;
	}
	n = cs_disasm(cs, buf, (size_t)got, s->sym_vaddr + s->insn_offset, 1, &in);
	if (n != 1) {
		fail("%s: bytes at file_offset do not decode", name);
	} else {
		if (in->op_str[0])
			snprintf(text, sizeof(text), "%s %s", in->mnemonic, in->op_str);
		else
			snprintf(text, sizeof(text), "%s", in->mnemonic);
		CHECK(!strncmp(text, s->insn, sizeof(s->insn) - 1),
		      "%s: file bytes decode to '%s', site says '%s'", name, text, s->insn);
		CHECK(elf_syms__kernel_emulates(in->bytes, in->size) == s->emulated,
		      "%s: emulated flag disagrees with the bytes", name);
		CHECK(s->kernel_adds_caller ==
			      (in->bytes[0] == 0x55 ||
			       (in->size == 4 && !memcmp(in->bytes, "\xf3\x0f\x1e\xfa", 4))),
		      "%s: kernel_adds_caller disagrees with the bytes", name);
		cs_free(in, n);
	}
	cs_close(&cs);
}

static void print_site(const char *name, const struct ht_probe_site *s)
{
	fprintf(stderr, "  %-16s +%-3u file_off=0x%-8llx %-9s %-7s %s\n", name, s->insn_offset,
		(unsigned long long)s->file_offset, s->emulated ? "emulated" : "sstep",
		s->kernel_adds_caller ? "caller" : "-", s->insn);
}

/* Resolves name, prints it and checks the file offset; returns probe_site's result. */
static int site_of(struct ht_elf_syms *e, const char *path, const char *name,
		   struct ht_probe_site *s)
{
	int err = elf_syms__probe_site(e, name, s);

	if (err) {
		fprintf(stderr, "  %-16s error %d (%s)\n", name, err, strerror(-err));
		return err;
	}
	print_site(name, s);
	check_site_bytes(path, name, s);
	return 0;
}

static void test_libc(void)
{
	static const char *const names[] = {
		"malloc",   "calloc", "realloc", "free", "posix_memalign", "aligned_alloc",
		"memalign", "valloc", "pvalloc", "reallocarray",
	};
	struct ht_probe_site s;
	struct ht_elf_syms *e;
	size_t i;

	e = elf_syms__open(LIBC);
	if (!e) {
		fail("open %s: %s", LIBC, strerror(errno));
		return;
	}
	CHECK(elf_syms__is_dyn(e), "libc is not ET_DYN");
	CHECK(elf_syms__has_symbols(e), "libc has no symbols");

	fprintf(stderr, "%s:\n", LIBC);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECK(elf_syms__defines(e, names[i]), "libc does not define %s", names[i]);
		if (site_of(e, LIBC, names[i], &s))
			fail("libc %s: no probe site", names[i]);
		else if (!strcmp(names[i], "malloc"))
			CHECK(s.emulated, "malloc's site is not emulated");
		else if (!strcmp(names[i], "free"))
			CHECK(s.emulated && s.insn_offset != 0,
			      "free's site should be emulated and past the leading test");
	}

	/* strlen is an IFUNC in glibc: its symbol is the resolver. */
	CHECK(elf_syms__defines(e, "strlen"), "libc does not define strlen");
	CHECK(elf_syms__probe_site(e, "strlen", &s) == -ENOTSUP, "strlen (IFUNC) not -ENOTSUP");
	/* memcpy has a hidden old FUNC version and a default IFUNC; the default wins. */
	CHECK(elf_syms__probe_site(e, "memcpy", &s) == -ENOTSUP,
	      "memcpy resolved to its hidden compat version, not the default IFUNC");

	CHECK(!elf_syms__defines(e, "heaptap_no_such_function"), "defines a missing name");
	CHECK(elf_syms__probe_site(e, "heaptap_no_such_function", &s) == -ENOENT,
	      "missing name not -ENOENT");
	CHECK(!elf_syms__defines(e, "mallo"), "prefix of a name matched");
	CHECK(!elf_syms__defines(e, "malloc@@GLIBC_2.2.5"), "versioned query matched");
	elf_syms__close(e);
}

static void test_libstdcxx(void)
{
	static const char *const names[] = { "_Znwm", "_ZdlPv" };
	struct ht_probe_site s;
	struct ht_elf_syms *e;
	size_t i;

	e = elf_syms__open(LIBSTDCXX);
	if (!e) {
		fail("open %s: %s", LIBSTDCXX, strerror(errno));
		return;
	}
	fprintf(stderr, "%s:\n", LIBSTDCXX);
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		CHECK(elf_syms__defines(e, names[i]), "libstdc++ does not define %s", names[i]);
		if (site_of(e, LIBSTDCXX, names[i], &s))
			fail("libstdc++ %s: no probe site", names[i]);
	}
	elf_syms__close(e);
}

static void test_errors(void)
{
	const char *path = "/tmp/heaptap_test_elf_syms_notelf.txt";
	struct ht_elf_syms *e;
	FILE *f;

	elf_syms__close(NULL);

	errno = 0;
	e = elf_syms__open("/nonexistent/heaptap/libc.so");
	CHECK(!e && errno == ENOENT, "missing file: %p errno %d", (void *)e, errno);
	elf_syms__close(e);

	f = fopen(path, "w");
	if (!f) {
		fail("cannot write %s", path);
		return;
	}
	fputs("this is not an ELF file\n", f);
	fclose(f);
	errno = 0;
	e = elf_syms__open(path);
	CHECK(!e && errno == ENOEXEC, "non-ELF file: %p errno %d", (void *)e, errno);
	elf_syms__close(e);
	unlink(path);
}

static int run(const char *cmd)
{
	int rc = system(cmd);

	return rc == 0 ? 0 : -1;
}

static void test_static_stripped(void)
{
	const char *src = "/tmp/heaptap_test_elf_syms_static.c";
	const char *bin = "/tmp/heaptap_test_elf_syms_static";
	struct ht_probe_site s;
	struct ht_elf_syms *e;
	FILE *f;

	f = fopen(src, "w");
	if (!f) {
		fail("cannot write %s", src);
		return;
	}
	fputs("#include <stdlib.h>\nint main(void) { free(malloc(7)); return 0; }\n", f);
	fclose(f);
	if (run("gcc -static -s -o /tmp/heaptap_test_elf_syms_static "
		"/tmp/heaptap_test_elf_syms_static.c 2>/dev/null")) {
		fprintf(stderr, "SKIP: gcc -static -s failed, stripped static check skipped\n");
		unlink(src);
		return;
	}
	e = elf_syms__open(bin);
	if (!e) {
		fail("open %s: %s", bin, strerror(errno));
	} else {
		CHECK(!elf_syms__has_symbols(e), "stripped static binary has symbols");
		CHECK(!elf_syms__is_dyn(e), "static binary is ET_DYN");
		CHECK(elf_syms__probe_site(e, "malloc", &s) == -ENOENT,
		      "stripped static: malloc not -ENOENT");
		elf_syms__close(e);
	}
	unlink(src);
	unlink(bin);
}

/*
 * Hand-written functions, one per rule; expects[] below holds the answer for each.
 * Branches inside them go to local labels: a reference to a global name from a shared
 * object would go through the PLT instead.
 */
static const char asm_main[] =
	"\t.text\n"
	/* free's shape: flags-only test, then a jcc nothing jumps back over. */
	"\t.globl t_fwd\n\t.type t_fwd,@function\n"
	"t_fwd:\ttest %rdi,%rdi\n\tje 1f\n\tpush %rbx\n\tpop %rbx\n1:\tret\n"
	"\t.size t_fwd,.-t_fwd\n"
	/* A later jump back to +3 makes +3 (and everything after) fire twice: offset 0. */
	"\t.globl t_back\n\t.type t_back,@function\n"
	"t_back:\ttest %rdi,%rdi\n.Lback3:\tjne 1f\n1:\tpush %rbx\n\tdec %rdi\n"
	"\tjmp .Lback3\n\t.size t_back,.-t_back\n"
	/* A loop to the entry: nothing qualifies; the start is still reported as a push. */
	"\t.globl t_entry_loop\n\t.type t_entry_loop,@function\n"
	"t_entry_loop:\n.Lentry:\tpush %rbx\n\tpop %rbx\n\tdec %rdi\n\tjnz .Lentry\n\tret\n"
	"\t.size t_entry_loop,.-t_entry_loop\n"
	/* Recursion is a real call: the push after endbr64 still qualifies. */
	"\t.globl t_recurse\n\t.type t_recurse,@function\n"
	"t_recurse:\n.Lrec:\tendbr64\n\tpush %rbx\n\tcall .Lrec\n\tpop %rbx\n\tret\n"
	"\t.size t_recurse,.-t_recurse\n"
	/* An argument register is written before the push: offset 0. */
	"\t.globl t_clobber\n\t.type t_clobber,@function\n"
	"t_clobber:\tmov %rsi,%rdi\n\tpush %rbx\n\tpop %rbx\n\tret\n"
	"\t.size t_clobber,.-t_clobber\n"
	/* A sub-register of an argument register: offset 0. */
	"\t.globl t_clobber8\n\t.type t_clobber8,@function\n"
	"t_clobber8:\txor %r9b,%r9b\n\tpush %rbx\n\tpop %rbx\n\tret\n"
	"\t.size t_clobber8,.-t_clobber8\n"
	/* A store to memory before the push: offset 0. */
	"\t.globl t_store\n\t.type t_store,@function\n"
	"t_store:\tmov %rdi,-8(%rsp)\n\tpush %rbx\n\tpop %rbx\n\tret\n"
	"\t.size t_store,.-t_store\n"
	/* Scratch-register and flags-only work may be skipped: push at +9. */
	"\t.globl t_scratch\n\t.type t_scratch,@function\n"
	"t_scratch:\tmov $1,%eax\n\tcmp $0,%rdi\n\tpush %rbx\n\tpop %rbx\n\tret\n"
	"\t.size t_scratch,.-t_scratch\n"
	/* push %rbp at the entry: emulated and the kernel adds the caller. */
	"\t.globl t_rbp\n\t.type t_rbp,@function\n"
	"t_rbp:\tpush %rbp\n\tmov %rsp,%rbp\n\tpop %rbp\n\tret\n"
	"\t.size t_rbp,.-t_rbp\n"
	/* endbr64 then an argument clobber: falls back to endbr64 (slow, adds caller). */
	"\t.globl t_endbr\n\t.type t_endbr,@function\n"
	"t_endbr:\tendbr64\n\tmov %rsi,%rdi\n\tret\n"
	"\t.size t_endbr,.-t_endbr\n"
	/* The kernel's 5-byte nop is emulated. */
	"\t.globl t_nop5\n\t.type t_nop5,@function\n"
	"t_nop5:\tendbr64\n\t.byte 0x0f,0x1f,0x44,0x00,0x00\n\tret\n"
	"\t.size t_nop5,.-t_nop5\n"
	/* 66 0f 1f 84 ... (9 bytes) is not one of the kernel's nops, and ret stops: offset 0. */
	"\t.globl t_nop9\n\t.type t_nop9,@function\n"
	"t_nop9:\tendbr64\n\t.byte 0x66,0x0f,0x1f,0x84,0,0,0,0,0\n\tret\n"
	"\t.size t_nop9,.-t_nop9\n"
	/* push r12 (41 54) is emulated. */
	"\t.globl t_r12\n\t.type t_r12,@function\n"
	"t_r12:\n.Lr12:\tpush %r12\n\tpop %r12\n\tret\n"
	"\t.size t_r12,.-t_r12\n"
	/* push with REX.W (48 53) is not: offset 0, single-stepped. */
	"\t.globl t_rexw\n\t.type t_rexw,@function\n"
	"t_rexw:\t.byte 0x48,0x53\n\tpop %rbx\n\tret\n"
	"\t.size t_rexw,.-t_rexw\n"
	/* An IFUNC: the symbol is the resolver. */
	"\t.globl t_ifunc\n\t.type t_ifunc,@gnu_indirect_function\n"
	"t_ifunc:\tlea .Lr12(%rip),%rax\n\tret\n"
	"\t.size t_ifunc,.-t_ifunc\n"
	/* Two GLOBAL versions of one name: the default (@@V2) must win over the hidden (@V1),
	 * which sits at the lower address so that a tie broken by address would pick it. */
	"\t.globl vfunc_v1\n\t.type vfunc_v1,@function\n"
	"vfunc_v1:\tpush %rbp\n\tpop %rbp\n\tret\n\t.size vfunc_v1,.-vfunc_v1\n"
	"\t.globl vfunc_v2\n\t.type vfunc_v2,@function\n"
	"vfunc_v2:\tpush %rbx\n\tpop %rbx\n\tret\n\t.size vfunc_v2,.-vfunc_v2\n"
	"\t.symver vfunc_v1,vfunc@V1\n"
	"\t.symver vfunc_v2,vfunc@@V2\n"
	/* A GLOBAL dup here, a LOCAL dup in local.s (linked first, so at a lower address): the
	 * GLOBAL one must win. */
	"\t.globl dup\n\t.type dup,@function\n"
	"dup:\tpush %rbx\n\tpop %rbx\n\tret\n\t.size dup,.-dup\n"
	"\t.section .note.GNU-stack,\"\",@progbits\n";

static const char asm_local[] =
	"\t.text\n"
	"\t.type dup,@function\n"
	"dup:\tpush %rbp\n\tpop %rbp\n\tret\n\t.size dup,.-dup\n"
	"\t.type lonly,@function\n"
	"lonly:\tpush %rbp\n\tpop %rbp\n\tret\n\t.size lonly,.-lonly\n"
	"\t.globl t_uses_locals\n\t.type t_uses_locals,@function\n"
	"t_uses_locals:\tcall dup\n\tcall lonly\n\tret\n\t.size t_uses_locals,.-t_uses_locals\n"
	"\t.section .note.GNU-stack,\"\",@progbits\n";

static const char version_script[] = "V1 { global: t_*; vfunc; dup; local: *; };\n"
				      "V2 { global: vfunc; } V1;\n";

struct expect {
	const char *name;
	int err;
	unsigned int offset;
	bool emulated;
	bool adds_caller;
	const char *mnemonic;
};

static const struct expect expects[] = {
	{ "t_fwd", 0, 3, true, false, "je" },
	{ "t_back", 0, 0, false, false, "test" },
	{ "t_entry_loop", 0, 0, true, false, "push" },
	{ "t_recurse", 0, 4, true, false, "push" },
	{ "t_clobber", 0, 0, false, false, "mov" },
	{ "t_clobber8", 0, 0, false, false, "xor" },
	{ "t_store", 0, 0, false, false, "mov" },
	{ "t_scratch", 0, 9, true, false, "push" },
	{ "t_rbp", 0, 0, true, true, "push" },
	{ "t_endbr", 0, 0, false, true, "endbr64" },
	{ "t_nop5", 0, 4, true, false, "nop" },
	{ "t_nop9", 0, 0, false, true, "endbr64" },
	{ "t_r12", 0, 0, true, false, "push" },
	{ "t_rexw", 0, 0, false, false, "push" },
	{ "t_ifunc", -ENOTSUP, 0, false, false, NULL },
	{ "vfunc", 0, 0, true, false, "push rbx" },
	{ "dup", 0, 0, true, false, "push rbx" },
	{ "heaptap_none", -ENOENT, 0, false, false, NULL },
};

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f) ? -1 : 0;
}

static void check_expects(const char *path, bool stripped)
{
	struct ht_probe_site s;
	struct ht_elf_syms *e;
	size_t i;

	e = elf_syms__open(path);
	if (!e) {
		fail("open %s: %s", path, strerror(errno));
		return;
	}
	fprintf(stderr, "%s:\n", path);
	CHECK(elf_syms__has_symbols(e), "%s: no symbols", path);
	CHECK(elf_syms__is_dyn(e), "%s: not ET_DYN", path);
	/* lonly is LOCAL: in .symtab only, so gone once stripped. */
	CHECK(elf_syms__defines(e, "lonly") == !stripped, "%s: lonly defined=%d", path,
	      elf_syms__defines(e, "lonly"));

	for (i = 0; i < sizeof(expects) / sizeof(expects[0]); i++) {
		const struct expect *x = &expects[i];
		int err = site_of(e, path, x->name, &s);

		if (err != x->err) {
			fail("%s: %s returned %d, expected %d", path, x->name, err, x->err);
			continue;
		}
		if (err)
			continue;
		CHECK(s.insn_offset == x->offset, "%s: site +%u, expected +%u", x->name,
		      s.insn_offset, x->offset);
		CHECK(s.emulated == x->emulated, "%s: emulated %d, expected %d", x->name,
		      s.emulated, x->emulated);
		CHECK(s.kernel_adds_caller == x->adds_caller, "%s: adds_caller %d, expected %d",
		      x->name, s.kernel_adds_caller, x->adds_caller);
		CHECK(!strncmp(s.insn, x->mnemonic, strlen(x->mnemonic)),
		      "%s: insn '%s', expected '%s...'", x->name, s.insn, x->mnemonic);
	}
	elf_syms__close(e);
}

static void test_assembled(void)
{
	const char *dir = "/tmp/heaptap_test_elf_syms_asm";

	mkdir(dir, 0700);
	if (write_file("/tmp/heaptap_test_elf_syms_asm/main.s", asm_main) ||
	    write_file("/tmp/heaptap_test_elf_syms_asm/local.s", asm_local) ||
	    write_file("/tmp/heaptap_test_elf_syms_asm/vers.map", version_script)) {
		fail("cannot write into %s", dir);
		return;
	}
	if (run("cd /tmp/heaptap_test_elf_syms_asm && "
		"gcc -shared -nostdlib -Wl,--version-script=vers.map -o t.so local.s main.s && "
		"gcc -shared -nostdlib -s -Wl,--version-script=vers.map -o t_stripped.so "
		"local.s main.s")) {
		fprintf(stderr, "SKIP: could not assemble the test objects with gcc\n");
	} else {
		check_expects("/tmp/heaptap_test_elf_syms_asm/t.so", false);
		check_expects("/tmp/heaptap_test_elf_syms_asm/t_stripped.so", true);
	}
	run("rm -rf /tmp/heaptap_test_elf_syms_asm");
}

/* The emulated set, byte for byte (Linux 6.18 arch/x86/kernel/uprobes.c). */
static void test_kernel_emulates(void)
{
	static const struct {
		const char *what;
		uint8_t len;
		uint8_t b[11];
		bool emulated;
	} cases[] = {
		{ "push rbp", 1, { 0x55 }, true },
		{ "push rbx", 1, { 0x53 }, true },
		{ "push r12", 2, { 0x41, 0x54 }, true },
		{ "push rbx, REX.W", 2, { 0x48, 0x53 }, false },
		{ "pushw ax", 2, { 0x66, 0x50 }, false },
		{ "nop", 1, { 0x90 }, true },
		{ "xchg r8d,eax", 2, { 0x41, 0x90 }, false },
		{ "pause", 2, { 0xf3, 0x90 }, true },
		{ "nop2", 2, { 0x66, 0x90 }, true },
		{ "nop3", 3, { 0x0f, 0x1f, 0x00 }, true },
		{ "nop4", 4, { 0x0f, 0x1f, 0x40, 0x00 }, true },
		{ "nop5", 5, { 0x0f, 0x1f, 0x44, 0x00, 0x00 }, true },
		{ "nop6", 6, { 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00 }, true },
		{ "nop7", 7, { 0x0f, 0x1f, 0x80, 0, 0, 0, 0 }, true },
		{ "nop8", 8, { 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, true },
		{ "nopw 9 (gcc pad)", 9, { 0x66, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, false },
		{ "cs nopw 10", 10, { 0x66, 0x2e, 0x0f, 0x1f, 0x84, 0, 0, 0, 0, 0 }, false },
		{ "nopl 4, other modrm", 4, { 0x0f, 0x1f, 0x41, 0x00 }, false },
		{ "je rel8", 2, { 0x74, 0x05 }, true },
		{ "jne rel32", 6, { 0x0f, 0x85, 1, 0, 0, 0 }, true },
		{ "je rel8, 66", 3, { 0x66, 0x74, 0x05 }, false },
		{ "je rel8, ds hint", 3, { 0x3e, 0x74, 0x05 }, false },
		{ "jmp rel8", 2, { 0xeb, 0x00 }, true },
		{ "jmp rel32", 5, { 0xe9, 1, 0, 0, 0 }, true },
		{ "bnd jmp rel32", 6, { 0xf2, 0xe9, 1, 0, 0, 0 }, true },
		{ "call rel32", 5, { 0xe8, 1, 0, 0, 0 }, true },
		{ "jmp rax", 2, { 0xff, 0xe0 }, false },
		{ "ret", 1, { 0xc3 }, false },
		{ "test rdi,rdi", 3, { 0x48, 0x85, 0xff }, false },
		{ "endbr64", 4, { 0xf3, 0x0f, 0x1e, 0xfa }, false },
		{ "mov eax,1", 5, { 0xb8, 1, 0, 0, 0 }, false },
	};
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		CHECK(elf_syms__kernel_emulates(cases[i].b, cases[i].len) == cases[i].emulated,
		      "kernel_emulates(%s) != %d", cases[i].what, cases[i].emulated);
	CHECK(!elf_syms__kernel_emulates(NULL, 1), "kernel_emulates(NULL)");
}

int main(void)
{
	if (elf_version(EV_CURRENT) == EV_NONE) {
		fprintf(stderr, "libelf: %s\n", elf_errmsg(-1));
		return 1;
	}
	test_kernel_emulates();
	test_errors();
	test_libc();
	test_libstdcxx();
	test_static_stripped();
	test_assembled();

	if (failures) {
		fprintf(stderr, "test_elf_syms: %d failure(s)\n", failures);
		return 1;
	}
	fprintf(stderr, "test_elf_syms: ok\n");
	return 0;
}
