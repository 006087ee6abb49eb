#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/bpf.h>

#include "ringread.h"

/* Each record: a header {u32 len (with the two flags below), u32 page offset}, then len
 * bytes, the whole rounded up to 8. */
#define HDR_SIZE 8u
#define BUSY_BIT (1u << 31)    /* reserved, not yet submitted or discarded */
#define DISCARD_BIT (1u << 30) /* discarded: skip it */

struct ht_ringread {
	int epfd;
	size_t page;
	uint64_t size;               /* data area: a power of two */
	unsigned long *consumer_pos; /* ours to write (its own page) */
	const unsigned long *producer_pos;
	/* The data area is mapped twice in a row, so a record that wraps is contiguous. */
	const uint8_t *data;
};

struct ht_ringread *ringread__new(int map_fd)
{
	struct bpf_map_info info = { 0 };
	uint32_t info_len = sizeof(info);
	struct ht_ringread *r;
	void *m;
	int err;

	if ((err = bpf_map_get_info_by_fd(map_fd, &info, &info_len))) {
		errno = -err;
		return NULL;
	}
	if (info.type != BPF_MAP_TYPE_RINGBUF || !info.max_entries ||
	    (info.max_entries & (info.max_entries - 1))) {
		errno = EINVAL;
		return NULL;
	}
	if (!(r = calloc(1, sizeof(*r))))
		return NULL;
	r->epfd = -1;
	r->page = (size_t)sysconf(_SC_PAGESIZE);
	r->size = info.max_entries;
	m = mmap(NULL, r->page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (m == MAP_FAILED)
		goto fail;
	r->consumer_pos = m;
	m = mmap(NULL, r->page + 2 * r->size, PROT_READ, MAP_SHARED, map_fd, (off_t)r->page);
	if (m == MAP_FAILED)
		goto fail;
	r->producer_pos = m;
	r->data = (const uint8_t *)m + r->page;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	/* Edge-triggered: readable when the BPF side wakes us, not while records wait (see
	 * ringread__consume()). */
	if (r->epfd < 0 ||
	    epoll_ctl(r->epfd, EPOLL_CTL_ADD, map_fd,
		      &(struct epoll_event){ .events = EPOLLIN | EPOLLET }))
		goto fail;
	return r;
fail:
	err = errno;
	ringread__free(r);
	errno = err;
	return NULL;
}

void ringread__free(struct ht_ringread *r)
{
	if (!r)
		return;
	if (r->epfd >= 0)
		close(r->epfd);
	if (r->consumer_pos)
		munmap(r->consumer_pos, r->page);
	if (r->producer_pos)
		munmap((void *)r->producer_pos, r->page + 2 * r->size);
	free(r);
}

/* The header's length word, read with acquire: once BUSY is clear, the record is there. */
static uint32_t header(const struct ht_ringread *r, uint64_t pos)
{
	return __atomic_load_n((const uint32_t *)(r->data + (pos & (r->size - 1))),
			       __ATOMIC_ACQUIRE);
}

static uint64_t span(uint32_t hdr)
{
	return ((hdr & ~(BUSY_BIT | DISCARD_BIT)) + HDR_SIZE + 7) & ~7ull;
}

static const void *payload(const struct ht_ringread *r, uint64_t pos)
{
	return r->data + (pos & (r->size - 1)) + HDR_SIZE;
}

uint64_t ringread__consume(struct ht_ringread *r, ringread_fn prefetch, ringread_fn handle,
			   void *ctx)
{
	/* We are the only writer of the consumer position. */
	uint64_t cons = __atomic_load_n(r->consumer_pos, __ATOMIC_RELAXED), released = cons;
	uint64_t prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
	/* Bounded: a producer as fast as we are must not keep the session from its timers. */
	uint64_t stop = cons + r->size, ahead = cons, n = 0;
	unsigned lead = 0; /* records between cons and ahead, all shown to prefetch() */
	struct epoll_event ev;

	/* Take the pending wakeup before reading, so poll() on the epoll fd sleeps until the
	 * next one: the ring is level-readable while any record waits, which would turn the
	 * caller's poll() into a busy loop under a steady stream.  A wakeup that comes while
	 * we read makes it readable again. */
	epoll_wait(r->epfd, &ev, 1, 0);
	while (cons < stop) {
		uint32_t hdr;

		while (prefetch && lead < RINGREAD_AHEAD && ahead < prod) {
			hdr = header(r, ahead);
			if (hdr & BUSY_BIT)
				break;
			if (!(hdr & DISCARD_BIT))
				prefetch(ctx, payload(r, ahead), hdr & ~DISCARD_BIT);
			ahead += span(hdr);
			lead++;
		}
		if (cons >= prod) {
			prod = __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE);
			if (cons >= prod)
				break;
			continue;
		}
		hdr = header(r, cons);
		if (hdr & BUSY_BIT)
			break;
		if (!(hdr & DISCARD_BIT)) {
			handle(ctx, payload(r, cons), hdr & ~DISCARD_BIT);
			n++;
		}
		cons += span(hdr);
		if (lead)
			lead--;
		else
			ahead = cons;
		if (cons - released >= RINGREAD_RELEASE_BYTES) {
			__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
			released = cons;
		}
	}
	if (cons != released)
		__atomic_store_n(r->consumer_pos, cons, __ATOMIC_RELEASE);
	return n;
}

uint64_t ringread__avail(const struct ht_ringread *r)
{
	return __atomic_load_n(r->producer_pos, __ATOMIC_ACQUIRE) -
	       __atomic_load_n(r->consumer_pos, __ATOMIC_RELAXED);
}

uint64_t ringread__size(const struct ht_ringread *r)
{
	return r->size;
}

bool ringread__filling(const struct ht_ringread *r)
{
	return ringread__avail(r) > r->size / 8;
}

int ringread__epoll_fd(const struct ht_ringread *r)
{
	return r->epfd;
}
