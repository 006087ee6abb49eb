#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "outfile.h"

int outfile__open(struct ht_outfile *o, const char *path)
{
	int fd, err;

	*o = (struct ht_outfile){ 0 };
	if (asprintf(&o->tmp, "%s.tmp-heaptap-%d", path, getpid()) < 0 || !(o->path = strdup(path))) {
		free(o->tmp);
		o->tmp = NULL;
		return -ENOMEM;
	}
	fd = open(o->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || !(o->f = fdopen(fd, "w"))) {
		err = -errno;
		if (fd >= 0)
			close(fd);
		log_error("cannot write '%s': %s", path, strerror(-err));
		free(o->tmp);
		free(o->path);
		*o = (struct ht_outfile){ 0 };
		return err;
	}
	return 0;
}

int outfile__commit(struct ht_outfile *o)
{
	int err = 0;

	if (!o->f)
		return -EBADF;
	if (fflush(o->f) || ferror(o->f))
		err = -(errno ? errno : EIO);
	if (fclose(o->f) && !err)
		err = -errno;
	o->f = NULL;
	if (!err && rename(o->tmp, o->path))
		err = -errno;
	if (err) {
		log_error("cannot write '%s': %s", o->path, strerror(-err));
		unlink(o->tmp);
	}
	free(o->tmp);
	free(o->path);
	*o = (struct ht_outfile){ 0 };
	return err;
}

void outfile__discard(struct ht_outfile *o)
{
	if (!o || !o->tmp)
		return;
	if (o->f)
		fclose(o->f);
	unlink(o->tmp);
	free(o->tmp);
	free(o->path);
	*o = (struct ht_outfile){ 0 };
}
