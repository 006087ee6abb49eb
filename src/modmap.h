/*
 * modmap: the ELF objects mapped into a process, read from /proc/PID/maps, with what is
 * needed to turn a runtime address into (object, offset) even after the process is gone:
 * the object's path, a path we can open it by, its load bias and its build-id.
 *
 * Owner: whoever called modmap__read() owns the map and frees it with modmap__clear().
 */
#ifndef HEAPTAP_MODMAP_H
#define HEAPTAP_MODMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct ht_module {
	char *path;      /* as /proc/PID/maps shows it, without a " (deleted)" suffix */
	char *open_path; /* a path that opens the same file from heaptap's mount namespace:
			  * /proc/PID/root/<path>, or /proc/PID/map_files/<range> if deleted */
	bool deleted;    /* the file was deleted or replaced after it was mapped */
	uint64_t start;  /* lowest mapped address of the object */
	uint64_t end;    /* one past the highest mapped address */
	uint64_t file_offset; /* file offset mapped at start (pprof mappings want it) */
	uint64_t bias;   /* load bias: runtime address = ELF virtual address + bias */
	uint64_t dev;    /* device and inode of the mapped file */
	uint64_t inode;
	char build_id[41]; /* lowercase hex of the GNU build-id note, "" if none */
	bool executable_map; /* at least one mapping is r-x */
};

struct ht_modmap {
	struct ht_module *mods; /* sorted by start */
	size_t n;
};

/* Reads /proc/PID/maps (file-backed ELF mappings only).  0, or -errno (-ESRCH: no such
 * process).  On success *out is replaced; the previous content must have been cleared. */
int modmap__read(pid_t pid, struct ht_modmap *out);

/* Frees what modmap__read() stored in *m and empties it.  NULL-safe, idempotent. */
void modmap__clear(struct ht_modmap *m);

/* The module whose [start, end) holds addr, or NULL.  Borrowed. */
const struct ht_module *modmap__find(const struct ht_modmap *m, uint64_t addr);

/*
 * Reads the GNU build-id note of the ELF file open on fd into out as lowercase hex (size
 * 41 fits any 20-byte SHA-1 id; longer ids are truncated).  0, -ENOEXEC if not ELF,
 * -ENOENT if it has no build-id.  Does not move or close fd.
 */
int modmap__file_build_id(int fd, char *out, size_t size);

#endif
