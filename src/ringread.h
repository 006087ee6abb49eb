/*
 * ringread: heaptap's consumer of a BPF ring buffer (BPF_MAP_TYPE_RINGBUF), read through
 * the kernel's mmap layout (Documentation/bpf/ringbuf.rst) instead of libbpf's
 * ring_buffer__consume(), for two things that decide the collector's cost per record:
 *
 *   look-ahead: before a record is handled, the record RINGREAD_AHEAD places later is
 *     shown to a prefetch callback, which starts loading what handling it will touch (the
 *     live-block table slot of its address).  A free of a random block among 100 k or 1 M
 *     is otherwise one cache miss after another, each waited for in turn.
 *   batched release: the consumer position, a cache line the producing CPUs read on every
 *     reservation, is written once per RINGREAD_RELEASE_BYTES consumed and at the end,
 *     not after every record.
 *
 * Records are handed over in order, each once; discarded ones are skipped.  A record is
 * valid only during the callback.  Owner: ringread__new() gives an object the caller
 * frees with ringread__free().
 */
#ifndef HEAPTAP_RINGREAD_H
#define HEAPTAP_RINGREAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RINGREAD_AHEAD 8
#define RINGREAD_RELEASE_BYTES (64 << 10)

struct ht_ringread;

/* Called with one record; ctx is ringread__consume()'s. */
typedef void (*ringread_fn)(void *ctx, const void *data, size_t len);

/* Maps the ring buffer map map_fd (which the caller keeps open).  NULL and errno on error. */
struct ht_ringread *ringread__new(int map_fd);
void ringread__free(struct ht_ringread *r);

/*
 * Hands every record committed so far to handle(), in order, and each record to prefetch()
 * (if not NULL) RINGREAD_AHEAD records before handle() gets it.  Stops at a record still
 * being written.  Returns the number of records handled.
 */
uint64_t ringread__consume(struct ht_ringread *r, ringread_fn prefetch, ringread_fn handle,
			   void *ctx);

/* Bytes written and not yet consumed; the data area's size. */
uint64_t ringread__avail(const struct ht_ringread *r);
uint64_t ringread__size(const struct ht_ringread *r);

/* An eighth of the ring or more waits (records with stack copies are 8 KiB): the caller
 * should drain again soon (1 ms) rather than after its usual interval. */
bool ringread__filling(const struct ht_ringread *r);

/* An epoll fd that becomes readable when the BPF side submits a record with a wakeup, and
 * stays so until the next ringread__consume(). */
int ringread__epoll_fd(const struct ht_ringread *r);

#endif
