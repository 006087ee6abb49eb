#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "procs.h"
#include "u64map.h"

struct ht_procs {
	struct ht_proc_info **infos;
	uint32_t n, cap;
	struct ht_u64map index; /* pid + 1 -> index */
	uint64_t created;       /* records ever created */
};

struct ht_procs *procs__new(void)
{
	return calloc(1, sizeof(struct ht_procs));
}

void procs__free(struct ht_procs *p)
{
	if (!p)
		return;
	for (uint32_t i = 0; i < p->n; i++) {
		modmap__clear(&p->infos[i]->map);
		free(p->infos[i]->exe);
		free(p->infos[i]);
	}
	free(p->infos);
	u64map__clear(&p->index);
	free(p);
}

struct ht_proc_info *procs__find(const struct ht_procs *p, pid_t pid)
{
	uint64_t *idx = u64map__get(&p->index, (uint64_t)pid + 1);

	return idx ? p->infos[*idx] : NULL;
}

static void read_comm(struct ht_proc_info *info)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/comm", info->pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	n = read(fd, info->comm, sizeof(info->comm) - 1);
	close(fd);
	if (n > 0 && info->comm[n - 1] == '\n')
		n--;
	info->comm[n > 0 ? n : 0] = 0;
}

static void read_exe(struct ht_proc_info *info)
{
	char path[64], target[PATH_MAX];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/exe", info->pid);
	n = readlink(path, target, sizeof(target) - 1);
	if (n <= 0)
		return;
	target[n] = 0;
	free(info->exe);
	info->exe = strdup(target);
}

struct ht_proc_info *procs__get(struct ht_procs *p, pid_t pid)
{
	struct ht_proc_info *info = procs__find(p, pid);

	if (info)
		return info;
	if (p->n == p->cap) {
		uint32_t ncap = p->cap ? p->cap * 2 : 8;
		void *np = realloc(p->infos, ncap * sizeof(*p->infos));

		if (!np)
			return NULL;
		p->infos = np;
		p->cap = ncap;
	}
	info = calloc(1, sizeof(*info));
	if (!info || u64map__put(&p->index, (uint64_t)pid + 1, p->n)) {
		free(info);
		return NULL;
	}
	p->infos[p->n++] = info;
	p->created++;
	info->pid = pid;
	read_comm(info);
	read_exe(info);
	procs__refresh_map(info);
	return info;
}

int procs__refresh_map(struct ht_proc_info *info)
{
	struct ht_modmap fresh = { 0 };
	int err;

	if (info->exited)
		return -ESRCH;
	err = modmap__read(info->pid, &fresh);
	if (err)
		return err;
	/* A process that is exiting can show an empty map: keep the richer old one. */
	if (!fresh.n && info->map_read) {
		modmap__clear(&fresh);
		return -ESRCH;
	}
	modmap__clear(&info->map);
	info->map = fresh;
	info->map_read = true;
	return 0;
}

bool procs__has_unmapped(const struct ht_proc_info *info, const uint64_t *frames, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		if (!modmap__find(&info->map, frames[i]))
			return true;
	return false;
}

void procs__mark_exited(struct ht_proc_info *info, bool known, int code)
{
	info->exited = true;
	if (known) {
		info->exit_known = true;
		info->exit_code = code;
	}
}

void procs__drop(struct ht_procs *p, pid_t pid)
{
	uint64_t *idx = u64map__get(&p->index, (uint64_t)pid + 1);
	uint32_t i, last;

	if (!idx)
		return;
	i = (uint32_t)*idx;
	last = p->n - 1;
	u64map__remove(&p->index, (uint64_t)pid + 1);
	modmap__clear(&p->infos[i]->map);
	free(p->infos[i]->exe);
	free(p->infos[i]);
	if (i != last) { /* the last record fills the hole */
		p->infos[i] = p->infos[last];
		u64map__put(&p->index, (uint64_t)p->infos[i]->pid + 1, i);
	}
	p->n--;
}

uint32_t procs__count(const struct ht_procs *p)
{
	return p->n;
}

struct ht_proc_info *procs__at(const struct ht_procs *p, uint32_t i)
{
	return p->infos[i];
}

void procs__reread_identity(struct ht_proc_info *info)
{
	read_comm(info);
	read_exe(info);
}

uint64_t procs__created(const struct ht_procs *p)
{
	return p->created;
}
