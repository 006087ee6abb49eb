/*
 * write_text.c: the human-readable report.  Per process: totals, peak and rates, then the
 * top call stacks by live bytes (or by allocated bytes once nothing is live), then the
 * loss counters — always, even when all zero, so a clean run can be told from a lossy one.
 */
#include <inttypes.h>
#include <string.h>

#include "report.h"

static const char *human_bytes(double v, char *buf, size_t len)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	int u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%.0f B", v);
	else
		snprintf(buf, len, "%.2f %s", v, unit[u]);
	return buf;
}

static const char *short_path(const char *p)
{
	const char *b = p ? strrchr(p, '/') : NULL;

	return b ? b + 1 : p;
}

static void write_frame(FILE *f, const struct ht_rframe *fr)
{
	char label[512];

	report__frame_label(fr, label, sizeof(label));
	fprintf(f, "        %s%s", fr->inlined ? "(inlined) " : "", label);
	if (fr->file)
		fprintf(f, "  %s:%d", fr->file, fr->line);
	else if (fr->function)
		fprintf(f, "  [%s]", short_path(fr->module));
	fputc('\n', f);
}

static const char *trigger_name(uint8_t t)
{
	return t == HT_GC_HEAP ? "heap" : t == HT_GC_TIME ? "time" : t == HT_GC_FORCED ? "forced" : "?";
}

static void write_gc_cycle(FILE *f, const struct ht_rgo *g, const struct ht_gc_cycle *c,
			   const struct ht_gc_cycle *prev)
{
	char a[32], b[32], d[32];

	fprintf(f, "  gc #%u at %.3fs: %-6s", c->num, c->start_ns / 1e9 - g->origin_s,
		trigger_name(c->trigger));
	if (c->live_known)
		fprintf(f, " heap live %s", human_bytes(c->heap_live, a, sizeof(a)));
	if (c->marked_known)
		fprintf(f, " -> marked %s", human_bytes(c->heap_marked, b, sizeof(b)));
	if (c->live_known && prev && prev->marked_known && c->heap_live >= prev->heap_marked)
		fprintf(f, ", allocated since last gc %s",
			human_bytes(c->heap_live - prev->heap_marked, d, sizeof(d)));
	if (c->mark_done)
		fprintf(f, ", mark %.3f ms", (c->mark_done_ns - c->start_ns) / 1e6);
	if (c->pause_known)
		fprintf(f, ", pause %.3f ms", c->pause_ns / 1e6);
	fputc('\n', f);
}

static void write_go(FILE *f, const struct ht_report *r, const struct ht_rgo *g)
{
	fprintf(f, "  go:          %s, ", g->version);
	if (g->exact)
		fputs("every allocation (--go-exact; no in-use figures: Go frees are not calls)\n", f);
	else if (g->mem_profile_rate == 0)
		fputs("MemProfileRate is 0: memory profiling is off in this binary (it never "
		      "references runtime.MemProfile), so Go's sampler records nothing; use "
		      "--go-exact\n", f);
	else if (g->mem_profile_rate > 0)
		fprintf(f, "Go's own sampler, one sample per %" PRId64 " bytes (MemProfileRate): "
			   "figures are scaled as pprof scales them\n", g->mem_profile_rate);
	else
		fputs("Go's own sampler (MemProfileRate could not be read: scaled for 512 KiB)\n", f);
	if (g->note[0])
		fprintf(f, "  note:        %s\n", g->note);
	fprintf(f, "  gc:          %" PRIu64 " cycles (%" PRIu64 " forced)", g->cycles_seen, g->forced);
	if (g->pauses_known)
		fprintf(f, ", stop-the-world pauses %.3f ms in total (%" PRIu64 " cycles known)",
			g->pause_total_ns / 1e6, g->pauses_known);
	if (!g->numbered_by_runtime && g->cycles_seen)
		fputs(", numbered from attach", f);
	fputc('\n', f);
	if (!r->gc_timeline)
		return;
	if (g->dropped)
		fprintf(f, "  (%" PRIu64 " older cycles not kept)\n", g->dropped);
	for (uint32_t i = 0; i < g->ncycles; i++)
		write_gc_cycle(f, g, &g->cycles[i], i ? &g->cycles[i - 1] : NULL);
}

static void write_proc(FILE *f, const struct ht_report *r, const struct ht_rproc *p, uint32_t top)
{
	char a[32], b[32], c[32], d[32];

	fprintf(f, "\nprocess %d (%s)", p->pid, p->comm);
	if (p->exited) {
		if (p->exit_known)
			fprintf(f, " exited with status %d", p->exit_code);
		else
			fputs(" exited", f);
	}
	fputc('\n', f);
	fprintf(f, "  live now:    %s in %" PRIu64 " blocks", human_bytes(p->c.live_bytes, a, sizeof(a)),
		p->c.live_count);
	if (r->min_age_s > 0)
		fprintf(f, " (%s in %" PRIu64 " blocks older than %gs)",
			human_bytes(p->aged_bytes, b, sizeof(b)), p->aged_count, r->min_age_s);
	fprintf(f, "\n  peak:        %s in %" PRIu64 " blocks, at %.3fs\n",
		human_bytes(p->peak_bytes, a, sizeof(a)), p->peak_count, p->peak_time_s);
	fprintf(f, "  since attach: %s in %" PRIu64 " allocations, %s in %" PRIu64 " frees\n",
		human_bytes(p->c.alloc_bytes, a, sizeof(a)), p->c.alloc_count,
		human_bytes(p->c.free_bytes, b, sizeof(b)), p->c.free_count);
	fprintf(f, "  rate:        %s/s, %.0f allocs/s (last %.2fs)\n",
		human_bytes(p->rate_bytes, c, sizeof(c)), p->rate_count, r->interval_s);

	if (p->go)
		write_go(f, r, p->go);

	uint32_t n = top && top < p->nsites ? top : p->nsites;

	for (uint32_t i = 0; i < n; i++) {
		const struct ht_rsite *s = &p->sites[i];

		fprintf(f, "\n  #%u %s: live %s in %" PRIu64 " blocks%s | peak %s | total %s in %" PRIu64
			   " | rate %s/s, %.0f/s\n",
			i + 1, s->allocator,
			human_bytes(r->min_age_s > 0 ? s->aged_bytes : s->c.live_bytes, a, sizeof(a)),
			r->min_age_s > 0 ? s->aged_count : s->c.live_count,
			r->min_age_s > 0 ? " (aged)" : "", human_bytes(s->peak_bytes, b, sizeof(b)),
			human_bytes(s->c.alloc_bytes, c, sizeof(c)), s->c.alloc_count,
			human_bytes(s->rate_bytes, d, sizeof(d)), s->rate_count);
		for (uint32_t k = 0; k < s->nframes; k++)
			write_frame(f, &s->frames[k]);
		if (s->truncated)
			fputs("        [truncated: deeper than --max-depth]\n", f);
	}
	if (n < p->nsites)
		fprintf(f, "\n  ... %u more call stacks (--top 0 shows all)\n", p->nsites - n);
}

/* System-wide: processes detailed (sites) after the table, the largest live heaps first. */
#define SYSTEM_DETAILED 5

static void write_system(FILE *f, const struct ht_report *r)
{
	const struct ht_rsystem *sys = r->system;
	char a[32], b[32], c[32];

	fprintf(f, "system-wide: %u allocator objects attached%s; processes seen %" PRIu64
		   ", exited %" PRIu64 ", evicted from the table %" PRIu64 ", attached after their "
		   "exec %" PRIu64 "\n",
		sys->nobjects, sys->filtered ? " (pid-scoped: selected processes only)" : "",
		sys->procs_seen, sys->procs_exited, sys->procs_evicted, sys->late_attaches);
	for (uint32_t i = 0; i < sys->ncomm_unmatched; i++)
		fprintf(f, "no process named %s seen (still watching)\n", sys->comm_unmatched[i]);
	fprintf(f, "\n  %7s  %-16s %-10s %12s %12s %10s %12s\n", "PID", "COMMAND", "ALLOCATOR",
		"LIVE", "ALLOC/s", "ALLOCS/s", "PEAK");
	for (uint32_t i = 0; i < r->nprocs; i++) {
		const struct ht_rproc *p = &r->procs[i];

		fprintf(f, "  %7d  %-16s %-10s %12s %10s/s %10.0f %12s%s\n", p->pid, p->comm,
			p->allocator[0] ? p->allocator : "-", human_bytes(p->c.live_bytes, a, sizeof(a)),
			human_bytes(p->rate_bytes, b, sizeof(b)), p->rate_count,
			human_bytes(p->peak_bytes, c, sizeof(c)), p->exited ? "  (exited)" : "");
	}
}

void report__write_text(const struct ht_report *r, FILE *f, uint32_t top)
{
	const uint64_t *b = r->loss.bpf;
	char a[32];

	fprintf(f, "=== heaptap %s report: %.2fs traced, %zu probes", r->final ? "final" : "interval",
		r->elapsed_s, r->probes);
	if (r->slow_probes)
		fprintf(f, " (%zu single-stepped: -v lists them)", r->slow_probes);
	fprintf(f, ", %" PRIu64 " events, mode %s ===\n", r->events, r->mode ? r->mode : "live");
	if (r->sample_bytes)
		fprintf(f, "figures are estimates: allocations sampled in BPF, one per %" PRIu64
			   " bytes on average, each scaled by 1/(1-exp(-size/%" PRIu64 "))\n",
			r->sample_bytes, r->sample_bytes);
	if (r->mode && (!strcmp(r->mode, "rate") || !strcmp(r->mode, "floor-rate")))
		fputs("rate mode: allocations only (no frees traced): live and peak figures are not "
		      "available\n", f);
	if (r->system)
		write_system(f, r);
	for (uint32_t i = 0; i < r->nprocs && (!r->system || i < SYSTEM_DETAILED); i++)
		write_proc(f, r, &r->procs[i], top);
	if (r->system && r->nprocs > SYSTEM_DETAILED)
		fprintf(f, "\n... %u more processes in the table above (--json has every one)\n",
			r->nprocs - SYSTEM_DETAILED);
	if (!r->nprocs)
		fputs("\nno allocations seen\n", f);
	fprintf(f, "\nloss: ring buffer drops %" PRIu64 ", thread state full %" PRIu64
		   ", nesting overflow %" PRIu64 ", returns without entry %" PRIu64
		   ", stack errors %" PRIu64 ", stacks truncated %" PRIu64
		   ", unknown frees %" PRIu64 ", model full %" PRIu64 ", reused live %" PRIu64
		   ", bad records %" PRIu64 ", sample map full %" PRIu64 "\n",
		b[HT_CNT_RINGBUF_DROPS], b[HT_CNT_STATE_FULL], b[HT_CNT_NEST_OVERFLOW],
		b[HT_CNT_RET_NO_ENTRY], b[HT_CNT_STACK_ERRORS], b[HT_CNT_STACK_TRUNCATED],
		r->loss.unknown_frees, r->loss.model_full, r->loss.reused_live, r->loss.bad_records,
		b[HT_CNT_SAMPLE_MAP_FULL]);
	fprintf(f, "collector: %s for %" PRIu64 " live blocks and %" PRIu64 " stacks\n",
		human_bytes(r->collector_bytes, a, sizeof(a)), r->live_blocks_tracked,
		r->stacks_tracked);
	fflush(f);
}
