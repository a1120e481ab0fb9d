/* Go binary analysis: build info, function lookup (.symtab / .gopclntab), RET
 * offsets, runtime.allgs (.symtab / disassembly), struct offsets (DWARF /
 * table), `weft inspect`, hostile inputs.
 *
 * Runs on the binaries scripts/build_go_apps makes from tests/apps/go/httpapp
 * with every installed Go toolchain (build/go/1.XX/); the setup runs that
 * script (it rebuilds only what is out of date). No toolchain = failure. */
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "go_offsets.h"
#include "goasm.h"
#include "goelf.h"
#include "gopclntab.h"
#include "inspect.h"

#define MAXV 16

static char root[PATH_MAX];
static char versions[MAXV][16]; /* "1.21" */
static char toolchain_version[MAXV][64]; /* "go1.21.13" from `go version` */
static int nversions;
static char tmpdir[PATH_MAX];

static const char *const variants[] = {"httpapp", "httpapp-stripped", "httpapp-extld",
				       "httpapp-pie", "httpapp-extld-pie"};
#define NVARIANTS (sizeof(variants) / sizeof(variants[0]))

/* snprintf that fails the test rather than truncate */
__attribute__((format(printf, 3, 4))) static void pathf(char *buf, size_t len, const char *fmt,
							 ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len)
		fail_msg("path too long: %s", buf);
}

static void app_path(char *buf, size_t len, int v, const char *variant)
{
	pathf(buf, len, "%s/build/go/%s/%s", root, versions[v], variant);
}

static struct go_elf *open_ok(const char *path)
{
	char err[512];
	struct go_elf *ge = NULL;
	int rc = go_elf_open(path, &ge, err, sizeof(err));
	if (rc)
		print_error("go_elf_open(%s): %s\n", path, err);
	assert_int_equal(rc, 0);
	assert_non_null(ge);
	return ge;
}

static int copy_file(const char *from, const char *to)
{
	char cmd[3 * PATH_MAX];
	pathf(cmd, sizeof(cmd), "cp '%s' '%s'", from, to);
	return system(cmd);
}

static bool find_root(void)
{
	char exe[PATH_MAX];
	if (getenv("WEFT_ROOT")) {
		pathf(root, sizeof(root), "%s", getenv("WEFT_ROOT"));
		return true;
	}
	if (access("scripts/build_go_apps", X_OK) == 0 && getcwd(root, sizeof(root)))
		return true;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0)
		return false;
	exe[n] = 0;
	for (int up = 0; up < 4; up++) { /* build/tests/test_goelf -> root */
		char *s = strrchr(exe, '/');
		if (!s)
			return false;
		*s = 0;
		char probe[PATH_MAX + 32];
		pathf(probe, sizeof(probe), "%s/scripts/build_go_apps", exe);
		if (access(probe, X_OK) == 0) {
			pathf(root, sizeof(root), "%s", exe);
			return true;
		}
	}
	return false;
}

static int setup_apps(void **state)
{
	if (!find_root()) {
		fprintf(stderr, "test_goelf: cannot find the weft tree (set WEFT_ROOT)\n");
		return -1;
	}
	glob_t g;
	if (glob("/usr/lib/go-1.*/bin/go", 0, NULL, &g) != 0 || g.gl_pathc == 0) {
		fprintf(stderr, "test_goelf: FAIL: no Go toolchain in /usr/lib/go-1.*/bin/go; "
				"install golang-1.19-go golang-1.21-go golang-1.22-go golang-1.23-go "
				"(scripts/setup)\n");
		return -1;
	}
	for (size_t i = 0; i < g.gl_pathc && nversions < MAXV; i++) {
		const char *p = strstr(g.gl_pathv[i], "/go-") + 4;
		pathf(versions[nversions++], sizeof(versions[0]), "%.*s",
			 (int)(strchr(p, '/') - p), p);
	}
	globfree(&g);

	char cmd[PATH_MAX + 64];
	pathf(cmd, sizeof(cmd), "'%s/scripts/build_go_apps' >&2", root);
	if (system(cmd) != 0) {
		fprintf(stderr, "test_goelf: FAIL: scripts/build_go_apps failed\n");
		return -1;
	}
	for (int v = 0; v < nversions; v++) {
		char p[PATH_MAX + 64], line[256] = "";
		pathf(p, sizeof(p), "%s/build/go/%s/go-version", root, versions[v]);
		FILE *f = fopen(p, "r");
		if (!f || !fgets(line, sizeof(line), f) ||
		    sscanf(line, "go version %63s", toolchain_version[v]) != 1) {
			fprintf(stderr, "test_goelf: FAIL: cannot read %s\n", p);
			if (f)
				fclose(f);
			return -1;
		}
		fclose(f);
	}
	pathf(tmpdir, sizeof(tmpdir), "/tmp/weft-test-goelf-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	fprintf(stderr, "test_goelf: %d Go toolchains:", nversions);
	for (int v = 0; v < nversions; v++)
		fprintf(stderr, " %s", toolchain_version[v]);
	fprintf(stderr, "\n");
	return 0;
}

static int teardown_apps(void **state)
{
	char cmd[PATH_MAX + 16];
	if (tmpdir[0]) {
		pathf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		if (system(cmd) != 0)
			return -1;
	}
	return 0;
}

/* ---- build info ---------------------------------------------------------- */

static void test_buildinfo(void **state)
{
	for (int v = 0; v < nversions; v++) {
		for (size_t k = 0; k < NVARIANTS; k++) {
			char p[PATH_MAX];
			app_path(p, sizeof(p), v, variants[k]);
			struct go_elf *ge = open_ok(p);
			assert_true(ge->is_go);
			assert_true(ge->bi.present);
			assert_true(ge->bi.inline_fmt);
			assert_non_null(ge->go_version);
			assert_string_equal(ge->go_version, toolchain_version[v]);
			assert_string_equal(ge->bi.path, "weft.test/httpapp");
			assert_string_equal(ge->bi.main.path, "weft.test/httpapp");
			assert_string_equal(ge->bi.main.version, "(devel)");
			assert_int_equal(ge->bi.n_deps, 0);
			assert_string_equal(go_elf_goarch(ge), "amd64");
			bool stripped = k != 0 && k != 2;
			assert_int_equal(ge->has_symtab, !stripped);
			assert_int_equal(ge->has_dwarf, !stripped);
			bool has_goarch = false;
			for (size_t i = 0; i < ge->bi.n_settings; i++)
				has_goarch |= !strcmp(ge->bi.settings[i], "GOARCH=amd64");
			assert_true(has_goarch);
			go_elf_close(ge);
		}
	}
}

static void test_version_parse(void **state)
{
	int ma, mi, pa;
	assert_int_equal(go_version_parse("go1.21.13", &ma, &mi, &pa), 0);
	assert_int_equal(ma, 1);
	assert_int_equal(mi, 21);
	assert_int_equal(pa, 13);
	assert_int_equal(go_version_parse("go1.22rc1", &ma, &mi, &pa), 0);
	assert_int_equal(mi, 22);
	assert_int_equal(pa, 0);
	assert_int_equal(go_version_parse("devel go1.24-abcdef", &ma, &mi, NULL), 0);
	assert_int_equal(mi, 24);
	assert_int_equal(go_version_parse("1.21", &ma, &mi, &pa), -EINVAL);
	assert_int_equal(go_version_parse("go", &ma, &mi, &pa), -EINVAL);
	assert_int_equal(go_version_parse(NULL, &ma, &mi, &pa), -EINVAL);
}

/* A copy of a stripped build whose .go.buildinfo is rewritten in the
 * pre-Go-1.18 pointer format: header, two Go string headers, the strings. */
static void test_buildinfo_old_format(void **state)
{
	static const char start[] = "0w\xaf\x0c\x92t\x08\x02\x41\xe1\xc1\x07\xe6\xd6\x18\xe6";
	static const char end[] = "\xf9\x32\x43\x31\x86\x18\x20\x72\x00\x82\x42\x10\x41\x16\xd8\xf2";
	char src[PATH_MAX], dst[PATH_MAX + 64];
	app_path(src, sizeof(src), 0, "httpapp-stripped");
	pathf(dst, sizeof(dst), "%s/oldbuildinfo", tmpdir);
	assert_int_equal(copy_file(src, dst), 0);
	struct go_elf *ge = open_ok(dst);
	assert_true(ge->buildinfo.found);
	uint64_t addr = ge->buildinfo.addr, off = ge->buildinfo.offset;
	go_elf_close(ge);

	const char *ver = "go1.16.15";
	char mod[256];
	size_t ml = 0;
	memcpy(mod, start, 16);
	ml = 16;
	ml += (size_t)sprintf(mod + ml, "path\tweft.test/old\nmod\tweft.test/old\tv1.2.3\th1:x=\n"
					"dep\tgolang.org/x/net\tv0.1.0\th1:y=\n"
					"=>\t../net\t\n");
	memcpy(mod + ml, end, 16);
	ml += 16;
	size_t vl = strlen(ver);
	uint8_t blob[512] = {0};
	memcpy(blob, "\xff Go buildinf:", 14);
	blob[14] = 8; /* ptrsize */
	blob[15] = 0; /* little endian, pointer format */
	uint64_t w[6] = {addr + 32, addr + 48, addr + 64, vl, addr + 64 + vl, ml};
	memcpy(blob + 16, w, sizeof(w));
	memcpy(blob + 64, ver, vl);
	memcpy(blob + 64 + vl, mod, ml);
	int fd = open(dst, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, blob, 64 + vl + ml, (off_t)off), (ssize_t)(64 + vl + ml));
	close(fd);

	ge = open_ok(dst);
	assert_true(ge->bi.present);
	assert_false(ge->bi.inline_fmt);
	assert_string_equal(ge->go_version, "go1.16.15");
	assert_string_equal(ge->bi.main.path, "weft.test/old");
	assert_string_equal(ge->bi.main.version, "v1.2.3");
	assert_string_equal(ge->bi.main.sum, "h1:x=");
	assert_int_equal(ge->bi.n_deps, 1);
	assert_string_equal(ge->bi.deps[0].path, "golang.org/x/net");
	assert_string_equal(ge->bi.deps[0].repl_path, "../net");
	go_elf_close(ge);

	/* a dangling string pointer: reported, not followed */
	w[2] = 0xdead0000beef;
	memcpy(blob + 16, w, sizeof(w));
	fd = open(dst, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, blob, 64, (off_t)off), 64);
	close(fd);
	ge = open_ok(dst);
	assert_false(ge->bi.present);
	assert_null(ge->bi.go_version);
	assert_true(ge->is_go); /* still Go: it has a pclntab */
	go_elf_close(ge);
}

/* ---- functions ----------------------------------------------------------- */

static void check_rets(struct go_elf *ge, const char *name, const struct go_func *fn)
{
	/* a real Go entry starts with the stack-bound check:
	 * cmp rsp,[r14+16] or lea r12,[rsp-N] (large frames) */
	const uint8_t *e = go_elf_at_offset(ge, fn->offset, 4);
	assert_non_null(e);
	if (memcmp(e, "\x49\x3b\x66\x10", 4) && memcmp(e, "\x4c\x8d\x64\x24", 4) &&
	    memcmp(e, "\x4c\x8d\xa4\x24", 4))
		fail_msg("%s in %s: no Go prologue at file offset 0x%llx (%02x %02x %02x %02x)", name,
			 ge->path, (unsigned long long)fn->offset, e[0], e[1], e[2], e[3]);
	uint64_t *rets;
	size_t n;
	int rc = go_func_ret_offsets(ge, fn, &rets, &n);
	assert_true(rc >= 0);
	assert_int_equal((size_t)rc, n);
	bool never_returns = !strcmp(name, "runtime.goexit1");
	if (!never_returns && n == 0)
		fail_msg("%s: no RET in %s", name, ge->path);
	for (size_t i = 0; i < n; i++) {
		assert_true(rets[i] >= fn->offset && rets[i] < fn->offset + fn->size);
		const uint8_t *b = go_elf_at_offset(ge, rets[i], 1);
		assert_non_null(b);
		assert_int_equal(*b, 0xc3);
		if (i)
			assert_true(rets[i] > rets[i - 1]);
	}
	/* the entry probe goes on the PUSH RBP after the bound check, or on the
	 * check's JBE (rel8 0x76, rel32 0x0f 0x86) where the frame is made with
	 * SUB RSP (Go < 1.21); every probed function has a frame */
	uint64_t at = 0;
	assert_int_equal(go_func_entry_probe_offset(ge, fn, &at), 0);
	if (at <= fn->offset || at >= fn->offset + 32)
		fail_msg("%s in %s: entry probe at 0x%llx, function at 0x%llx", name, ge->path,
			 (unsigned long long)at, (unsigned long long)fn->offset);
	const uint8_t *op = go_elf_at_offset(ge, at, 2);
	assert_non_null(op);
	if (op[0] != 0x55 && op[0] != 0x76 && !(op[0] == 0x0f && op[1] == 0x86))
		fail_msg("%s in %s: entry probe at 0x%llx on %02x %02x", name, ge->path,
			 (unsigned long long)at, op[0], op[1]);
	free(rets);
}

/* Go < 1.21's goroutine-creation probe site: a CALL rel32 (E8) inside
 * runtime.newproc.func1 whose target is runtime.runqput, after its call to
 * newproc1 (whose result it queues). Every version has it (Go >= 1.21 does
 * not need it). */
static void check_runqput_call(struct go_elf *ge)
{
	struct go_func closure, runqput, newproc1;
	uint64_t at = 0;
	if (go_newproc_runqput_call(ge, &at))
		fail_msg("%s: %s", ge->path, ge->err);
	assert_int_equal(go_elf_find_func(ge, "runtime.newproc.func1", &closure), 0);
	assert_int_equal(go_elf_find_func(ge, "runtime.runqput", &runqput), 0);
	assert_int_equal(go_elf_find_func(ge, "runtime.newproc1", &newproc1), 0);
	assert_true(at > closure.offset && at + 5 <= closure.offset + closure.size);
	const uint8_t *c = go_elf_at_offset(ge, at, 5);
	assert_non_null(c);
	assert_int_equal(c[0], 0xe8);
	int32_t rel;
	memcpy(&rel, c + 1, 4);
	uint64_t insn_addr = closure.addr + (at - closure.offset);
	assert_int_equal(insn_addr + 5 + (int64_t)rel, runqput.addr);
	uint64_t *calls;
	size_t n;
	assert_int_equal(go_func_call_offsets(ge, &closure, &newproc1, &calls, &n), 1);
	assert_true(calls[0] < at);
	free(calls);
}

static void test_functions(void **state)
{
	for (int v = 0; v < nversions; v++) {
		char p[PATH_MAX], ps[PATH_MAX], stripped_copy[PATH_MAX + 64], cmd[3 * PATH_MAX];
		app_path(p, sizeof(p), v, "httpapp");
		app_path(ps, sizeof(ps), v, "httpapp-stripped");
		/* the same binary with strip(1): no .symtab, same layout */
		pathf(stripped_copy, sizeof(stripped_copy), "%s/strip-%s", tmpdir, versions[v]);
		pathf(cmd, sizeof(cmd), "strip -o '%s' '%s'", stripped_copy, p);
		assert_int_equal(system(cmd), 0);

		struct go_elf *ge = open_ok(p), *gs = open_ok(ps), *gc = open_ok(stripped_copy);
		assert_false(gc->has_symtab);
		for (size_t i = 0; i < GO_PROBE_NFUNCS; i++) {
			const char *name = go_probe_funcs[i];
			struct go_func a, b, c, d;
			assert_int_equal(go_elf_find_func(ge, name, &a), 0);
			assert_int_equal(a.source, GO_SYM_SYMTAB);
			assert_int_equal(go_elf_find_func_in(ge, name, GO_SYM_PCLNTAB, &b), 0);
			assert_int_equal(go_elf_find_func(gs, name, &c), 0);
			assert_int_equal(c.source, GO_SYM_PCLNTAB);
			assert_int_equal(go_elf_find_func(gc, name, &d), 0);
			assert_int_equal(d.source, GO_SYM_PCLNTAB);
			/* symtab and pclntab agree; -s -w -trimpath moves nothing */
			assert_int_equal(a.addr, b.addr);
			assert_int_equal(a.offset, b.offset);
			assert_true(b.size >= a.size && b.size - a.size < 64); /* + padding */
			assert_int_equal(a.addr, c.addr);
			assert_int_equal(a.offset, c.offset);
			assert_int_equal(b.size, c.size);
			assert_int_equal(a.addr, d.addr);
			assert_int_equal(a.offset, d.offset);
			check_rets(ge, name, &a);
			check_rets(gs, name, &c);
		}
		check_runqput_call(ge);
		check_runqput_call(gs);
		struct go_func x;
		assert_int_equal(go_elf_find_func(ge, "main.nosuchfunction", &x), -ENOENT);
		assert_int_equal(go_elf_find_func(gs, "main.nosuchfunction", &x), -ENOENT);
		assert_non_null(strstr(gs->err, "main.nosuchfunction"));
		go_elf_close(ge);
		go_elf_close(gs);
		go_elf_close(gc);

		/* cgo + external linker, and PIE: both tables agree where present */
		const char *other[] = {"httpapp-extld", "httpapp-pie", "httpapp-extld-pie"};
		for (size_t k = 0; k < 3; k++) {
			app_path(p, sizeof(p), v, other[k]);
			ge = open_ok(p);
			for (size_t i = 0; i < GO_PROBE_NFUNCS; i++) {
				struct go_func a, b;
				assert_int_equal(go_elf_find_func_in(ge, go_probe_funcs[i],
								     GO_SYM_PCLNTAB, &b), 0);
				if (ge->has_symtab) {
					assert_int_equal(go_elf_find_func_in(ge, go_probe_funcs[i],
									     GO_SYM_SYMTAB, &a), 0);
					assert_int_equal(a.addr, b.addr);
				}
				check_rets(ge, go_probe_funcs[i], &b);
			}
			check_runqput_call(ge);
			go_elf_close(ge);
		}
	}
}

static void test_asm_raw(void **state)
{
	/* push rbp; ret; int3; ret; (garbage 0x0f 0x0b = ud2) ret */
	static const uint8_t code[] = {0x55, 0xc3, 0xcc, 0xc3, 0x0f, 0x0b, 0xc3};
	uint64_t *a;
	size_t n;
	assert_int_equal(go_asm_find_rets(62 /* EM_X86_64 */, code, sizeof(code), 0x1000, &a, &n), 3);
	assert_int_equal(a[0], 0x1001);
	assert_int_equal(a[1], 0x1003);
	assert_int_equal(a[2], 0x1006);
	free(a);
	/* mov eax, 0xc3c3c3c3: the 0xc3 immediates are not RETs */
	static const uint8_t imm[] = {0xb8, 0xc3, 0xc3, 0xc3, 0xc3};
	assert_int_equal(go_asm_find_rets(62, imm, sizeof(imm), 0, &a, &n), 0);
	free(a);
	/* arm64: ret = d65f03c0 */
	static const uint8_t a64[] = {0x1f, 0x20, 0x03, 0xd5, 0xc0, 0x03, 0x5f, 0xd6};
	assert_int_equal(go_asm_find_rets(183 /* EM_AARCH64 */, a64, sizeof(a64), 0, &a, &n), 1);
	assert_int_equal(a[0], 4);
	free(a);
	assert_int_equal(go_asm_find_rets(8 /* EM_MIPS */, code, sizeof(code), 0, &a, &n), -ENOTSUP);
}

static void test_asm_entry_probe(void **state)
{
	uint64_t a;
	/* cmp rsp,[r14+0x10]; jbe +0x20; push rbp; mov rbp,rsp */
	static const uint8_t small[] = {0x49, 0x3b, 0x66, 0x10, 0x76, 0x20, 0x55, 0x48, 0x89, 0xe5};
	assert_int_equal(go_asm_entry_probe_addr(62, small, sizeof(small), 0x1000, &a), 0);
	assert_int_equal(a, 0x1006);
	/* lea r12,[rsp-0x100]; cmp r12,[r14+0x10]; jbe rel32; push rbp */
	static const uint8_t large[] = {0x4c, 0x8d, 0xa4, 0x24, 0x00, 0xff, 0xff, 0xff, 0x4d, 0x3b,
					0x66, 0x10, 0x0f, 0x86, 0x10, 0x00, 0x00, 0x00, 0x55};
	assert_int_equal(go_asm_entry_probe_addr(62, large, sizeof(large), 0x2000, &a), 0);
	assert_int_equal(a, 0x2012);
	/* Go < 1.21: lea r12,[rsp-0x230]; cmp r12,[r14+0x10]; jbe rel32; sub rsp,0x2b0: the jbe */
	static const uint8_t sub[] = {0x4c, 0x8d, 0xa4, 0x24, 0xd0, 0xfd, 0xff, 0xff, 0x4d, 0x3b, 0x66, 0x10,
				      0x0f, 0x86, 0xc3, 0x0e, 0x00, 0x00, 0x48, 0x81, 0xec, 0xb0, 0x02, 0x00, 0x00};
	assert_int_equal(go_asm_entry_probe_addr(62, sub, sizeof(sub), 0x2800, &a), 0);
	assert_int_equal(a, 0x280c);
	/* something writes an argument register before the push: the entry */
	static const uint8_t movrax[] = {0x48, 0xc7, 0xc0, 0x01, 0x00, 0x00, 0x00, 0x55};
	assert_int_equal(go_asm_entry_probe_addr(62, movrax, sizeof(movrax), 0x3000, &a), 0);
	assert_int_equal(a, 0x3000);
	/* lea into an argument register (rax): the entry */
	static const uint8_t learax[] = {0x48, 0x8d, 0x44, 0x24, 0xf8, 0x55};
	assert_int_equal(go_asm_entry_probe_addr(62, learax, sizeof(learax), 0x3800, &a), 0);
	assert_int_equal(a, 0x3800);
	/* a leaf without a frame: the entry */
	static const uint8_t leaf[] = {0x31, 0xc0, 0xc3};
	assert_int_equal(go_asm_entry_probe_addr(62, leaf, sizeof(leaf), 0x4000, &a), 0);
	assert_int_equal(a, 0x4000);
	/* push of another register: the entry */
	static const uint8_t pushrbx[] = {0x53, 0x55};
	assert_int_equal(go_asm_entry_probe_addr(62, pushrbx, sizeof(pushrbx), 0x5000, &a), 0);
	assert_int_equal(a, 0x5000);
	/* the push too far in (after more than six bound-check instructions): the entry */
	static const uint8_t far[] = {0x49, 0x3b, 0x66, 0x10, 0x49, 0x3b, 0x66, 0x10, 0x49, 0x3b, 0x66, 0x10,
				      0x49, 0x3b, 0x66, 0x10, 0x49, 0x3b, 0x66, 0x10, 0x49, 0x3b, 0x66, 0x10,
				      0x55};
	assert_int_equal(go_asm_entry_probe_addr(62, far, sizeof(far), 0x6000, &a), 0);
	assert_int_equal(a, 0x6000);
	/* truncated code, garbage, empty: no crash; the jump if it was seen */
	assert_int_equal(go_asm_entry_probe_addr(62, small, 3, 0x7000, &a), 0);
	assert_int_equal(a, 0x7000);
	assert_int_equal(go_asm_entry_probe_addr(62, small, 6, 0x7000, &a), 0);
	assert_int_equal(a, 0x7004);
	static const uint8_t junk[] = {0x0f, 0xff, 0xff, 0xff};
	assert_int_equal(go_asm_entry_probe_addr(62, junk, sizeof(junk), 0x7100, &a), 0);
	assert_int_equal(a, 0x7100);
	assert_int_equal(go_asm_entry_probe_addr(62, small, 0, 0x7200, &a), 0);
	assert_int_equal(a, 0x7200);
	/* arm64: the entry */
	static const uint8_t a64[] = {0x1f, 0x20, 0x03, 0xd5};
	assert_int_equal(go_asm_entry_probe_addr(183, a64, sizeof(a64), 0x8000, &a), 0);
	assert_int_equal(a, 0x8000);
}

static void test_asm_calls(void **state)
{
	uint64_t *a;
	size_t n;
	/* 0x1000 call 0x1100; 0x1005 call rax; 0x1007 call [rip+0]; 0x100d call 0x1100;
	 * 0x1012 call 0x1200; 0x1017 jmp 0x1100 (a tail call is not a call); ret */
	static const uint8_t x86[] = {0xe8, 0xfb, 0x00, 0x00, 0x00, 0xff, 0xd0, 0xff, 0x15, 0x00, 0x00,
				      0x00, 0x00, 0xe8, 0xee, 0x00, 0x00, 0x00, 0xe8, 0xe9, 0x01, 0x00,
				      0x00, 0xe9, 0xe4, 0x00, 0x00, 0x00, 0xc3};
	assert_int_equal(go_asm_find_calls(62, x86, sizeof(x86), 0x1000, 0x1100, &a, &n), 2);
	assert_int_equal(n, 2);
	assert_int_equal(a[0], 0x1000);
	assert_int_equal(a[1], 0x100d);
	free(a);
	assert_int_equal(go_asm_find_calls(62, x86, sizeof(x86), 0x1000, 0x1200, &a, &n), 1);
	assert_int_equal(a[0], 0x1012);
	free(a);
	assert_int_equal(go_asm_find_calls(62, x86, sizeof(x86), 0x1000, 0x1300, &a, &n), 0);
	free(a);
	/* truncated in the middle of the first call, garbage, empty: no crash */
	assert_int_equal(go_asm_find_calls(62, x86, 3, 0x1000, 0x1100, &a, &n), 0);
	free(a);
	static const uint8_t junk[] = {0x0f, 0xff, 0xff, 0xff, 0xe8, 0xf7, 0x00, 0x00, 0x00};
	assert_int_equal(go_asm_find_calls(62, junk, sizeof(junk), 0x1000, 0x1100, &a, &n), 1);
	assert_int_equal(a[0], 0x1004);
	free(a);
	assert_int_equal(go_asm_find_calls(62, x86, 0, 0x1000, 0x1100, &a, &n), 0);
	free(a);
	/* arm64: 0x2000 bl 0x2100 (94000040); 0x2004 blr x1; 0x2008 b 0x2100 */
	static const uint8_t a64[] = {0x40, 0x00, 0x00, 0x94, 0x20, 0x00, 0x3f, 0xd6, 0x3e, 0x00, 0x00, 0x14};
	assert_int_equal(go_asm_find_calls(183, a64, sizeof(a64), 0x2000, 0x2100, &a, &n), 1);
	assert_int_equal(a[0], 0x2000);
	free(a);
	assert_int_equal(go_asm_find_calls(8, x86, sizeof(x86), 0, 0x1100, &a, &n), -ENOTSUP);
}

static void test_asm_data_refs(void **state)
{
	struct go_asm_ref *r;
	size_t n;
	/* 0x1000 mov rax,[rip+0x10]; 0x1007 lea rcx,[rip-8]; 0x100e mov [rax+8],rcx; ret */
	static const uint8_t x86[] = {0x48, 0x8b, 0x05, 0x10, 0x00, 0x00, 0x00,
				      0x48, 0x8d, 0x0d, 0xf8, 0xff, 0xff, 0xff,
				      0x48, 0x89, 0x48, 0x08, 0xc3};
	assert_int_equal(go_asm_data_refs(62, x86, sizeof(x86), 0x1000, &r, &n), 2);
	assert_int_equal(n, 2);
	assert_int_equal(r[0].target, 0x1017);
	assert_int_equal(r[0].insn, 0x1000);
	assert_true(r[0].mem);
	assert_int_equal(r[1].target, 0x1006);
	assert_int_equal(r[1].insn, 0x1007);
	assert_false(r[1].mem);
	free(r);
	/* arm64, from Go's runtime.allgadd (1.23 and 1.19 forms), at 0x48000:
	 * adrp x27, 0x536000; ldr x2, [x27, #320]       -> access 0x536140
	 * adrp x27, 0x536000; add x27, x27, #1344        -> address 0x536540
	 * str x0, [x27]                                  -> access 0x536540
	 * ldr x2, [x27]: not right after the ADRP/ADD     -> nothing; ret */
	static const uint32_t a64[] = {0xd000277b, 0xf940a362, 0xd000277b, 0x9115037b,
				       0xf9000360, 0xf9400362, 0xd65f03c0};
	assert_int_equal(go_asm_data_refs(183, (const uint8_t *)a64, sizeof(a64), 0x48000, &r, &n),
			 3);
	assert_int_equal(r[0].target, 0x536140);
	assert_true(r[0].mem);
	assert_int_equal(r[1].target, 0x536540);
	assert_false(r[1].mem);
	assert_int_equal(r[2].target, 0x536540);
	assert_int_equal(r[2].insn, 0x48010);
	assert_true(r[2].mem);
	free(r);
	assert_int_equal(go_asm_data_refs(8 /* EM_MIPS */, x86, sizeof(x86), 0, &r, &n), -ENOTSUP);
}

/* ---- struct offsets ------------------------------------------------------ */

static void test_offsets(void **state)
{
	for (int v = 0; v < nversions; v++) {
		char p[PATH_MAX];
		int ma, mi;
		assert_int_equal(go_version_parse(toolchain_version[v], &ma, &mi, NULL), 0);
		bool exact;
		const struct go_offsets_row *row = go_offsets_table_row("amd64", ma, mi, &exact);
		assert_non_null(row);
		if (!exact)
			fail_msg("user/golang/go_offsets_table.h has no row for %s: rerun scripts/gen_go_offsets",
				 toolchain_version[v]);

		struct go_offsets od, ot, ox;
		app_path(p, sizeof(p), v, "httpapp");
		struct go_elf *ge = open_ok(p);
		assert_int_equal(go_offsets_resolve(ge, &od), 0);
		int absent = 0;
		for (size_t i = 0; i < GO_FIELD__COUNT; i++)
			absent += row->off[i] < 0;
		assert_int_equal(od.dwarf_rc, GO_FIELD__COUNT - absent);
		go_elf_close(ge);

		app_path(p, sizeof(p), v, "httpapp-stripped");
		ge = open_ok(p);
		assert_int_equal(go_offsets_resolve(ge, &ot), 0);
		assert_string_equal(ot.warning, "");
		assert_ptr_equal(ot.row, row);
		go_elf_close(ge);

		app_path(p, sizeof(p), v, "httpapp-extld");
		ge = open_ok(p);
		assert_int_equal(go_offsets_resolve(ge, &ox), 0);
		go_elf_close(ge);

		for (size_t i = 0; i < GO_FIELD__COUNT; i++) {
			if (row->off[i] < 0) {
				/* g.parentGoid before Go 1.21: known to be absent, whatever the source */
				assert_int_equal(od.f[i].source, GO_OFF_ABSENT);
				assert_int_equal(ot.f[i].source, GO_OFF_ABSENT);
				assert_int_equal(ox.f[i].source, GO_OFF_ABSENT);
				continue;
			}
			assert_int_equal(od.f[i].source, GO_OFF_DWARF);
			assert_int_equal(ot.f[i].source, GO_OFF_TABLE);
			assert_int_equal(ox.f[i].source, GO_OFF_DWARF);
			if (od.f[i].value != row->off[i] || ot.f[i].value != row->off[i])
				fail_msg("%s: %s.%s: DWARF %lld, table %d", toolchain_version[v],
					 go_field_struct(i), go_field_name(i),
					 (long long)od.f[i].value, row->off[i]);
			assert_int_equal(ox.f[i].value, row->off[i]);
		}
	}
}

static void test_offsets_nearest(void **state)
{
	bool exact;
	const struct go_offsets_row *r = go_offsets_table_row("amd64", 1, 20, &exact);
	assert_non_null(r);
	assert_false(exact);
	assert_int_equal(r->minor, 19); /* tie 1.19/1.21 -> older */
	r = go_offsets_table_row("amd64", 1, 99, &exact);
	assert_false(exact);
	const struct go_offsets_row *newest = NULL;
	for (size_t i = 0; go_offsets_table_get(i); i++)
		if (!strcmp(go_offsets_table_get(i)->goarch, "amd64"))
			newest = go_offsets_table_get(i);
	assert_ptr_equal(r, newest);
	assert_null(go_offsets_table_row("mips", 1, 21, &exact));

	/* a stripped binary of a version the table lacks: nearest row, warned */
	char p[PATH_MAX];
	app_path(p, sizeof(p), nversions - 1, "httpapp-stripped");
	struct go_elf *ge = open_ok(p);
	ge->go_version = "go1.99.1";
	struct go_offsets o;
	assert_int_equal(go_offsets_resolve(ge, &o), 0);
	assert_ptr_equal(o.row, newest);
	assert_false(o.row_exact);
	for (size_t i = 0; i < GO_FIELD__COUNT; i++)
		assert_int_equal(o.f[i].source, GO_OFF_TABLE_NEAREST);
	assert_non_null(strstr(o.warning, "go1.99.1 is not in weft's offsets table"));
	char want[32];
	pathf(want, sizeof(want), "go%d.%d's layout", newest->major, newest->minor);
	assert_non_null(strstr(o.warning, want));
	/* runtime.g.goid moved between 1.19 and 1.23: it must be named */
	assert_non_null(strstr(o.warning, "runtime.g.goid"));

	/* unknown version: newest layout, warned */
	ge->go_version = NULL;
	assert_int_equal(go_offsets_resolve(ge, &o), 0);
	assert_non_null(strstr(o.warning, "Go version unknown"));
	ge->go_version = ge->bi.go_version;
	go_elf_close(ge);
}

/* ---- runtime.allgs ------------------------------------------------------- */

/* allgs lies in the zero-initialised (.bss/.noptrbss) part of a writable
 * PT_LOAD: past its file bytes, within its memory size. */
static void assert_allgs_in_bss(const struct go_elf *ge, uint64_t a)
{
	for (size_t i = 0; i < ge->n_loads; i++) {
		const struct go_load *l = &ge->loads[i];
		if ((l->flags & 2 /* PF_W */) && a >= l->vaddr + l->filesz &&
		    a + 24 <= l->vaddr + l->memsz)
			return;
	}
	fail_msg("%s: runtime.allgs at 0x%llx is not in the .bss of a writable segment", ge->path,
		 (unsigned long long)a);
}

/* symtab and disassembly agree on an unstripped binary; returns the address */
static uint64_t allgs_cross_check(const char *path)
{
	struct go_elf *ge = open_ok(path);
	uint64_t sym = 0, dis = 0, a = 0;
	enum go_sym_source src;
	assert_int_equal(go_elf_find_allgs_in(ge, GO_SYM_SYMTAB, &sym), 0);
	int rc = go_elf_find_allgs_in(ge, GO_SYM_DISASM, &dis);
	if (rc)
		fail_msg("%s: disassembly: %d %s", path, rc, ge->err);
	if (sym != dis)
		fail_msg("%s: runtime.allgs: symtab 0x%llx, disassembly 0x%llx", path,
			 (unsigned long long)sym, (unsigned long long)dis);
	assert_int_equal(go_elf_find_allgs(ge, &a, &src), 0);
	assert_int_equal(src, GO_SYM_SYMTAB);
	assert_int_equal(a, sym);
	assert_allgs_in_bss(ge, a);
	go_elf_close(ge);
	return sym;
}

/* a stripped binary: found by disassembly, in .bss; returns the address */
static uint64_t allgs_stripped(const char *path)
{
	struct go_elf *ge = open_ok(path);
	assert_false(ge->has_symtab);
	uint64_t a = 0;
	enum go_sym_source src;
	int rc = go_elf_find_allgs(ge, &a, &src);
	if (rc)
		fail_msg("%s: %d %s", path, rc, ge->err);
	assert_int_equal(src, GO_SYM_DISASM);
	assert_allgs_in_bss(ge, a);
	assert_int_equal(go_elf_find_allgs_in(ge, GO_SYM_SYMTAB, &a), -ENOENT);
	go_elf_close(ge);
	return a;
}

static void test_allgs(void **state)
{
	for (int v = 0; v < nversions; v++) {
		char p[PATH_MAX], copy[PATH_MAX + 64], cmd[3 * PATH_MAX];
		app_path(p, sizeof(p), v, "httpapp");
		uint64_t sym = allgs_cross_check(p);
		/* strip(1) keeps the layout: the same address, from code alone */
		pathf(copy, sizeof(copy), "%s/allgs-strip-%s", tmpdir, versions[v]);
		pathf(cmd, sizeof(cmd), "strip -o '%s' '%s'", copy, p);
		assert_int_equal(system(cmd), 0);
		assert_int_equal(allgs_stripped(copy), sym);
		unlink(copy);

		app_path(p, sizeof(p), v, "httpapp-extld");
		allgs_cross_check(p);
		const char *stripped[] = {"httpapp-stripped", "httpapp-pie", "httpapp-extld-pie"};
		for (size_t k = 0; k < 3; k++) {
			app_path(p, sizeof(p), v, stripped[k]);
			allgs_stripped(p);
		}
	}
}

/* arm64 (ADRP pairs): a cross-build with the newest toolchain, unstripped
 * and stripped, into the temporary directory (Go's build cache makes it quick
 * after the first run). */
static void test_allgs_arm64(void **state)
{
	const char *ver = versions[nversions - 1];
	char cmd[4 * PATH_MAX], p[PATH_MAX + 64], ps[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/httpapp-arm64", tmpdir);
	pathf(ps, sizeof(ps), "%s/httpapp-arm64-stripped", tmpdir);
	pathf(cmd, sizeof(cmd),
	      "cd '%s/tests/apps/go/httpapp' && export GOTOOLCHAIN=local GOFLAGS=-buildvcs=false "
	      "GOPROXY=off GO111MODULE=on GOENV=off GOTELEMETRY=off CGO_ENABLED=0 GOARCH=arm64 "
	      "GOCACHE='%s/build/go/cache' GOPATH='%s/build/go/gopath' && "
	      "/usr/lib/go-%s/bin/go build -o '%s' . && "
	      "/usr/lib/go-%s/bin/go build -ldflags='-s -w' -o '%s' . >&2",
	      root, root, root, ver, p, ver, ps);
	if (system(cmd) != 0)
		fail_msg("cannot cross-build httpapp for arm64 with go %s", ver);
	struct go_elf *ge = open_ok(p);
	assert_int_equal(ge->machine, 183 /* EM_AARCH64 */);
	go_elf_close(ge);
	allgs_cross_check(p);
	allgs_stripped(ps);
}

static void test_allgs_errors(void **state)
{
	char src[PATH_MAX], dst[PATH_MAX + 64];
	uint64_t a;
	enum go_sym_source s;

	struct go_elf *ge = open_ok("/bin/true");
	assert_int_equal(go_elf_find_allgs(ge, &a, &s), -ENOENT);
	assert_int_equal(s, GO_SYM_NONE);
	assert_non_null(strstr(ge->err, "runtime.allgadd"));
	assert_int_equal(go_elf_find_allgs_in(ge, GO_SYM_PCLNTAB, &a), -EINVAL);
	go_elf_close(ge);

	/* no disassembler for the machine */
	app_path(src, sizeof(src), nversions - 1, "httpapp-stripped");
	ge = open_ok(src);
	ge->machine = 8; /* EM_MIPS */
	assert_int_equal(go_elf_find_allgs(ge, &a, &s), -ENOTSUP);
	assert_non_null(strstr(ge->err, "no disassembler"));
	go_elf_close(ge);

	/* runtime.allgadd's code replaced by garbage: an error, not a guess */
	pathf(dst, sizeof(dst), "%s/allgs-garbage", tmpdir);
	assert_int_equal(copy_file(src, dst), 0);
	ge = open_ok(dst);
	struct go_func fn;
	assert_int_equal(go_elf_find_func(ge, "runtime.allgadd", &fn), 0);
	assert_int_equal(go_elf_find_allgs(ge, &a, &s), 0);
	go_elf_close(ge);
	uint8_t *junk = malloc(fn.size);
	assert_non_null(junk);
	int fd = open(dst, O_WRONLY);
	assert_true(fd >= 0);
	srand(11);
	for (int round = 0; round < 20; round++) {
		for (size_t i = 0; i < fn.size; i++)
			junk[i] = round == 0 ? 0xcc : round == 1 ? 0 : (uint8_t)rand();
		assert_int_equal(pwrite(fd, junk, fn.size, (off_t)fn.offset), (ssize_t)fn.size);
		ge = open_ok(dst);
		int rc = go_elf_find_allgs(ge, &a, &s);
		if (rc == 0)
			fail_msg("round %d: garbage allgadd gave runtime.allgs at 0x%llx", round,
				 (unsigned long long)a);
		assert_int_equal(rc, -ENOENT);
		assert_non_null(strstr(ge->err, "runtime.allgadd"));
		go_elf_close(ge);
	}
	close(fd);
	free(junk);
}

/* ---- hostile inputs ------------------------------------------------------ */

/* Everything weft does with a binary; must not crash whatever the input. */
static void exercise(const char *path)
{
	char err[512];
	struct go_elf *ge;
	if (go_elf_open(path, &ge, err, sizeof(err)) != 0) {
		assert_true(err[0] != 0);
		return;
	}
	for (size_t i = 0; i < GO_PROBE_NFUNCS; i++) {
		struct go_func fn;
		if (go_elf_find_func(ge, go_probe_funcs[i], &fn) == 0) {
			uint64_t *r;
			size_t n;
			if (go_func_ret_offsets(ge, &fn, &r, &n) >= 0)
				free(r);
		} else {
			assert_true(ge->err[0] != 0);
		}
	}
	uint64_t allgs, call_at;
	enum go_sym_source src;
	if (go_elf_find_allgs(ge, &allgs, &src))
		assert_true(ge->err[0] != 0);
	if (go_newproc_runqput_call(ge, &call_at))
		assert_true(ge->err[0] != 0);
	struct go_offsets o;
	go_offsets_resolve(ge, &o);
	go_elf_close(ge);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, data, len), (ssize_t)len);
	close(fd);
}

static void test_missing_and_not_elf(void **state)
{
	char err[512], p[PATH_MAX + 64];
	struct go_elf *ge;
	assert_int_equal(go_elf_open("/nonexistent/weft", &ge, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "/nonexistent/weft"));
	assert_int_equal(go_elf_open("/etc/hostname", &ge, err, sizeof(err)), -ENOEXEC);
	assert_non_null(strstr(err, "not an ELF"));
	assert_int_equal(go_elf_open("/tmp", &ge, err, sizeof(err)), -ENOEXEC);
	pathf(p, sizeof(p), "%s/empty", tmpdir);
	write_file(p, "", 0);
	assert_int_equal(go_elf_open(p, &ge, err, sizeof(err)), -ENOEXEC);

	/* random bytes, with and without an ELF magic */
	srand(42);
	uint8_t buf[8192];
	for (int k = 0; k < 20; k++) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = (uint8_t)rand();
		if (k & 1)
			memcpy(buf, "\x7f" "ELF\x02\x01\x01", 7);
		pathf(p, sizeof(p), "%s/random", tmpdir);
		write_file(p, buf, (size_t)(rand() % (int)sizeof(buf)));
		exercise(p);
	}
}

static void test_not_go(void **state)
{
	struct go_elf *ge = open_ok("/bin/true");
	assert_false(ge->is_go);
	assert_false(ge->bi.present);
	assert_null(ge->go_version);
	struct go_func fn;
	assert_int_equal(go_elf_find_func(ge, "runtime.newproc1", &fn), -ENODATA);
	struct go_offsets o;
	assert_int_equal(go_offsets_resolve(ge, &o), GO_FIELD__COUNT);
	assert_non_null(strstr(o.warning, "not a Go"));
	go_elf_close(ge);
}

static void test_truncated(void **state)
{
	char src[PATH_MAX], dst[PATH_MAX + 64];
	app_path(src, sizeof(src), 0, "httpapp");
	struct stat st;
	assert_int_equal(stat(src, &st), 0);
	FILE *f = fopen(src, "rb");
	assert_non_null(f);
	size_t size = (size_t)st.st_size;
	uint8_t *data = malloc(size);
	assert_non_null(data);
	assert_int_equal(fread(data, 1, size, f), size);
	fclose(f);
	pathf(dst, sizeof(dst), "%s/truncated", tmpdir);
	size_t cuts[] = {16, 63, 64, 100, 4096, size / 3, size / 2, size - 4096, size - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
		write_file(dst, data, cuts[i]);
		char err[512];
		struct go_elf *ge;
		int rc = go_elf_open(dst, &ge, err, sizeof(err));
		if (cuts[i] <= size / 2) {
			/* segments cut off: refused with a clear message */
			if (rc != -ENOEXEC)
				fail_msg("cut at %zu: rc %d", cuts[i], rc);
			assert_true(strstr(err, "truncated") || strstr(err, "corrupt") ||
				    strstr(err, "not an ELF"));
		} else if (rc == 0) {
			go_elf_close(ge);
		}
		exercise(dst);
	}
	free(data);
}

static void corrupt_pclntab(const char *variant)
{
	char src[PATH_MAX], dst[PATH_MAX + 64];
	app_path(src, sizeof(src), nversions - 1, variant);
	pathf(dst, sizeof(dst), "%s/corrupt", tmpdir);
	assert_int_equal(copy_file(src, dst), 0);
	struct go_elf *ge = open_ok(dst);
	uint64_t poff = ge->pclntab.offset, psize = ge->pclntab.size;
	uint64_t boff = ge->buildinfo.offset, bsize = ge->buildinfo.size;
	go_elf_close(ge);
	int fd = open(dst, O_RDWR);
	assert_true(fd >= 0);

	/* nfunc = 2^62: must be refused, not iterated */
	uint8_t orig[128], huge[8] = {0, 0, 0, 0, 0, 0, 0, 0x40};
	assert_int_equal(pread(fd, orig, sizeof(orig), (off_t)poff), (ssize_t)sizeof(orig));
	assert_int_equal(pwrite(fd, huge, 8, (off_t)poff + 8), 8);
	ge = open_ok(dst);
	struct go_func fn;
	int rc = go_elf_find_func(ge, "runtime.newproc1", &fn);
	/* a section is refused as corrupt; a scan just finds no table */
	assert_true(rc == -EINVAL || rc == -ENODATA);
	assert_non_null(strstr(ge->err, "pclntab"));
	go_elf_close(ge);

	/* bad magic: no pclntab at all */
	assert_int_equal(pwrite(fd, "\x01\x02\x03\x04", 4, (off_t)poff), 4);
	exercise(dst);
	/* function table offset past the end */
	assert_int_equal(pwrite(fd, orig, sizeof(orig), (off_t)poff), (ssize_t)sizeof(orig));
	assert_int_equal(pwrite(fd, huge, 8, (off_t)poff + 8 + 7 * 8), 8);
	ge = open_ok(dst);
	rc = go_elf_find_func(ge, "runtime.newproc1", &fn);
	assert_true(rc == -EINVAL || rc == -ENODATA);
	go_elf_close(ge);
	assert_int_equal(pwrite(fd, orig, sizeof(orig), (off_t)poff), (ssize_t)sizeof(orig));

	/* random damage in the pclntab and the build info, restored each round */
	srand(7);
	for (int round = 0; round < 150; round++) {
		uint8_t saved[16][8];
		uint64_t at[16];
		for (int k = 0; k < 16; k++) {
			bool bi = round % 3 == 0;
			uint64_t base = bi ? boff : poff, len = bi ? bsize : psize;
			/* mostly the header and function table, where damage matters */
			uint64_t span = (round & 1) ? len : (len < 65536 ? len : 65536);
			at[k] = base + (uint64_t)rand() % (span > 8 ? span - 8 : 1);
			assert_int_equal(pread(fd, saved[k], 8, (off_t)at[k]), 8);
			uint8_t junk[8];
			for (int j = 0; j < 8; j++)
				junk[j] = (uint8_t)rand();
			assert_int_equal(pwrite(fd, junk, (size_t)(1 + rand() % 8), (off_t)at[k]) > 0,
					 1);
		}
		exercise(dst);
		for (int k = 15; k >= 0; k--)
			assert_int_equal(pwrite(fd, saved[k], 8, (off_t)at[k]), 8);
	}
	close(fd);
	/* restored: works again */
	ge = open_ok(dst);
	assert_int_equal(go_elf_find_func(ge, "runtime.newproc1", &fn), 0);
	go_elf_close(ge);
}

static void test_corrupt_pclntab(void **state)
{
	corrupt_pclntab("httpapp-stripped");
	/* no .gopclntab section: found by scanning, textStart maybe relocated */
	corrupt_pclntab("httpapp-extld-pie");
}

static void test_pclntab_parse_direct(void **state)
{
	char err[256];
	struct go_pclntab t;
	uint8_t h[128] = {0xf1, 0xff, 0xff, 0xff, 0, 0, 1, 8};
	assert_int_equal(go_pclntab_parse(h, 8, &t, err, sizeof(err)), -EINVAL);
	assert_int_equal(go_pclntab_parse(h, sizeof(h), &t, err, sizeof(err)), -EINVAL); /* 0 funcs */
	assert_non_null(strstr(err, "no functions"));
	h[8] = 1; /* 1 function, functab at offset 0 (inside the header) ... */
	h[8 + 7 * 8] = 120; /* ... now at 120: 3 u32 need 12 bytes, 8 left */
	assert_int_equal(go_pclntab_parse(h, sizeof(h), &t, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "exceeds"));
	h[6] = 3; /* bad quantum */
	assert_false(go_pclntab_header_ok(h, sizeof(h)));
}

static void put64(uint8_t *p, uint64_t v)
{
	memcpy(p, &v, 8); /* little endian host */
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

/* Two functions, main.a at 0x401000 and main.b at 0x401040, end 0x401080. */
static void check_two_funcs(const uint8_t *t, size_t len, enum go_pcln_version ver)
{
	char err[256];
	struct go_pclntab tab;
	struct go_pcln_func f;
	assert_int_equal(go_pclntab_parse(t, len, &tab, err, sizeof(err)), 0);
	assert_int_equal(tab.version, ver);
	assert_int_equal(tab.nfunc, 2);
	assert_int_equal(go_pclntab_find(&tab, "main.b", &f), 0);
	assert_int_equal(f.entry, 0x401040);
	assert_int_equal(f.end, 0x401080);
	assert_int_equal(go_pclntab_func(&tab, 0, &f), 0);
	assert_string_equal(f.name, "main.a");
	assert_int_equal(f.end, 0x401040);
	assert_int_equal(go_pclntab_find(&tab, "main.c", &f), -ENOENT);
	assert_int_equal(go_pclntab_func(&tab, 2, &f), -EINVAL);
}

static void test_pclntab_old_formats(void **state)
{
	/* Go 1.2-1.15: funcoff and nameoff relative to the table start */
	uint8_t t[160] = {0xfb, 0xff, 0xff, 0xff, 0, 0, 1, 8};
	put64(t + 8, 2);
	put64(t + 16, 0x401000);
	put64(t + 24, 56);
	put64(t + 32, 0x401040);
	put64(t + 40, 68);
	put64(t + 48, 0x401080);
	put64(t + 56, 0x401000);
	put32(t + 64, 80);
	put64(t + 68, 0x401040);
	put32(t + 76, 87);
	memcpy(t + 80, "main.a\0main.b", 14);
	check_two_funcs(t, 94, GO_PCLN_12);
	/* a name that runs off the end of the table */
	struct go_pclntab tab;
	struct go_pcln_func f;
	char err[256];
	assert_int_equal(go_pclntab_parse(t, 93, &tab, err, sizeof(err)), 0);
	assert_int_equal(go_pclntab_find(&tab, "main.b", &f), -EINVAL);
	/* the _func entry disagrees with the function table: corrupt */
	put64(t + 68, 0x401044);
	assert_int_equal(go_pclntab_parse(t, 94, &tab, err, sizeof(err)), 0);
	assert_int_equal(go_pclntab_find(&tab, "main.b", &f), -EINVAL);

	/* Go 1.16-1.17: header words nfunc, nfiles, funcnameOff, cuOff,
	 * filetabOff, pctabOff, pclnOff; funcoff relative to the functab,
	 * nameoff to the name table */
	memset(t, 0, sizeof(t));
	memcpy(t, "\xfa\xff\xff\xff\0\0\x01\x08", 8);
	put64(t + 8, 2);
	put64(t + 8 + 2 * 8, 64);
	put64(t + 8 + 6 * 8, 80);
	memcpy(t + 64, "main.a\0main.b", 14);
	put64(t + 80, 0x401000);
	put64(t + 88, 40);
	put64(t + 96, 0x401040);
	put64(t + 104, 52);
	put64(t + 112, 0x401080);
	put64(t + 120, 0x401000);
	put32(t + 128, 0);
	put64(t + 132, 0x401040);
	put32(t + 140, 7);
	check_two_funcs(t, 144, GO_PCLN_116);
	/* negative name offset */
	put32(t + 140, 0xfffffff0);
	assert_int_equal(go_pclntab_parse(t, 144, &tab, err, sizeof(err)), 0);
	assert_int_equal(go_pclntab_find(&tab, "main.b", &f), -EINVAL);
}

/* ---- weft inspect -------------------------------------------------------- */

static int run_inspect(const char *arg, char *out, size_t outlen)
{
	char p[PATH_MAX + 64];
	pathf(p, sizeof(p), "%s/inspect.out", tmpdir);
	fflush(stdout);
	fflush(stderr);
	int saved_out = dup(1), saved_err = dup(2);
	int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	assert_true(fd >= 0 && saved_out >= 0 && saved_err >= 0);
	dup2(fd, 1);
	dup2(fd, 2);
	char *argv[] = {"inspect", (char *)arg, NULL};
	int rc = inspect_main(arg ? 2 : 1, argv);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_out, 1);
	dup2(saved_err, 2);
	close(saved_out);
	close(saved_err);
	ssize_t n = pread(fd, out, outlen - 1, 0);
	close(fd);
	out[n > 0 ? n : 0] = 0;
	return rc;
}

static void test_inspect(void **state)
{
	static char out[65536];
	char p[PATH_MAX], want[128];
	for (int v = 0; v < nversions; v++) {
		app_path(p, sizeof(p), v, "httpapp-stripped");
		assert_int_equal(run_inspect(p, out, sizeof(out)), 0);
		assert_non_null(strstr(out, "language       Go"));
		assert_non_null(strstr(out, toolchain_version[v]));
		assert_non_null(strstr(out, "weft.test/httpapp"));
		assert_non_null(strstr(out, "no (stripped"));
		pathf(want, sizeof(want), "table for go%.*s", (int)sizeof(versions[v]), versions[v]);
		assert_non_null(strstr(out, want));
		assert_non_null(strstr(out, "pclntab"));
		assert_non_null(strstr(out, "runtime.allgs  0x"));
		assert_non_null(strstr(out, "(disassembly of runtime.allgadd)"));
		/* how goroutine creation is watched: Go < 1.21 has no g.parentGoid */
		int minor = atoi(strchr(versions[v], '.') + 1);
		assert_non_null(strstr(out, minor < 21 ? "goroutines     1 uprobe per goroutine created, on "
							"runtime.newproc.func1's CALL runtime.runqput (file offset 0x"
						      : "goroutines     ancestry from runtime.g.parentGoid: no uprobe"));
		pathf(want, sizeof(want), "summary: %d/%d functions resolved, %d/%d offsets known",
			 GO_PROBE_NFUNCS, GO_PROBE_NFUNCS, GO_FIELD__COUNT, GO_FIELD__COUNT);
		if (!strstr(out, want))
			fail_msg("inspect %s:\n%s", p, out);
	}
	app_path(p, sizeof(p), 0, "httpapp");
	assert_int_equal(run_inspect(p, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "DWARF"));
	assert_non_null(strstr(out, "symtab"));
	assert_null(strstr(out, "MISSING"));
	assert_non_null(strstr(out, "runtime.allgs  0x"));
	assert_non_null(strstr(out, " (symtab)\n"));
	app_path(p, sizeof(p), 0, "httpapp-pie");
	assert_int_equal(run_inspect(p, out, sizeof(out)), 0);
	assert_non_null(strstr(out, "add the load bias"));

	assert_int_equal(run_inspect("/bin/true", out, sizeof(out)), 0);
	assert_non_null(strstr(out, "not Go"));
	assert_int_equal(run_inspect("/nonexistent/app", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "No such file"));
	assert_int_equal(run_inspect("/etc/hostname", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "not an ELF"));
	assert_int_equal(run_inspect("999999999", out, sizeof(out)), 1);
	assert_non_null(strstr(out, "no process"));
	char pid[32];
	pathf(pid, sizeof(pid), "%d", (int)getpid());
	assert_int_equal(run_inspect(pid, out, sizeof(out)), 0); /* this C test: not Go */
	assert_non_null(strstr(out, "not Go"));
	assert_int_equal(run_inspect(NULL, out, sizeof(out)), 2);
	assert_non_null(strstr(out, "usage: weft inspect PID|PATH"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_version_parse),
		cmocka_unit_test(test_asm_raw),
		cmocka_unit_test(test_asm_entry_probe),
		cmocka_unit_test(test_asm_calls),
		cmocka_unit_test(test_asm_data_refs),
		cmocka_unit_test(test_pclntab_parse_direct),
		cmocka_unit_test(test_pclntab_old_formats),
		cmocka_unit_test(test_missing_and_not_elf),
		cmocka_unit_test(test_not_go),
		cmocka_unit_test(test_buildinfo),
		cmocka_unit_test(test_buildinfo_old_format),
		cmocka_unit_test(test_functions),
		cmocka_unit_test(test_offsets),
		cmocka_unit_test(test_offsets_nearest),
		cmocka_unit_test(test_allgs),
		cmocka_unit_test(test_allgs_arm64),
		cmocka_unit_test(test_allgs_errors),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_corrupt_pclntab),
		cmocka_unit_test(test_inspect),
	};
	return cmocka_run_group_tests_name("goelf", tests, setup_apps, teardown_apps);
}
