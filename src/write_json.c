/*
 * write_json.c: the machine-readable report.  The schema is documented in docs/json.md
 * and versioned by "version"; a change that removes or renames a field bumps it.
 */
#include <errno.h>

#include "json_writer.h"
#include "report.h"

static void counts(struct json_writer *w, const struct ht_counts *c)
{
	jw_key(w, "live_bytes"), jw_u64(w, c->live_bytes);
	jw_key(w, "live_count"), jw_u64(w, c->live_count);
	jw_key(w, "alloc_bytes"), jw_u64(w, c->alloc_bytes);
	jw_key(w, "alloc_count"), jw_u64(w, c->alloc_count);
	jw_key(w, "free_bytes"), jw_u64(w, c->free_bytes);
	jw_key(w, "free_count"), jw_u64(w, c->free_count);
	jw_key(w, "interval_alloc_bytes"), jw_u64(w, c->last_iv_bytes);
	jw_key(w, "interval_alloc_count"), jw_u64(w, c->last_iv_count);
}

static void frame(struct json_writer *w, const struct ht_rframe *f)
{
	jw_obj_begin(w);
	jw_key(w, "addr"), jw_hex(w, f->addr);
	jw_key(w, "function"), jw_str(w, f->function);
	jw_key(w, "file"), jw_str(w, f->file);
	jw_key(w, "line"), jw_u64(w, f->line);
	jw_key(w, "module"), jw_str(w, f->module);
	jw_key(w, "offset"), jw_hex(w, f->offset);
	jw_key(w, "inlined"), jw_bool(w, f->inlined);
	jw_obj_end(w);
}

static void site(struct json_writer *w, const struct ht_rsite *s)
{
	jw_obj_begin(w);
	jw_key(w, "id"), jw_u64(w, s->id);
	jw_key(w, "allocator"), jw_str(w, s->allocator);
	counts(w, &s->c);
	jw_key(w, "aged_live_bytes"), jw_u64(w, s->aged_bytes);
	jw_key(w, "aged_live_count"), jw_u64(w, s->aged_count);
	jw_key(w, "peak_live_bytes"), jw_u64(w, s->peak_bytes);
	jw_key(w, "peak_live_count"), jw_u64(w, s->peak_count);
	jw_key(w, "rate_bytes_per_s"), jw_double(w, s->rate_bytes);
	jw_key(w, "rate_allocs_per_s"), jw_double(w, s->rate_count);
	jw_key(w, "truncated"), jw_bool(w, s->truncated);
	jw_key(w, "frames");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < s->nframes; i++)
		frame(w, &s->frames[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

/* A figure that may be unknown: null then. */
static void u64_or_null(struct json_writer *w, bool known, uint64_t v)
{
	if (known)
		jw_u64(w, v);
	else
		jw_null(w);
}

static void gc_cycle(struct json_writer *w, const struct ht_rgo *g, const struct ht_gc_cycle *c)
{
	static const char *const triggers[] = { "heap", "time", "forced" };

	jw_obj_begin(w);
	jw_key(w, "num"), jw_u64(w, c->num);
	jw_key(w, "trigger"), jw_str(w, c->trigger <= HT_GC_FORCED ? triggers[c->trigger] : "unknown");
	jw_key(w, "start_s"), jw_double(w, c->start_ns / 1e9 - g->origin_s);
	jw_key(w, "mark_ns"), u64_or_null(w, c->mark_done, c->mark_done_ns - c->start_ns);
	jw_key(w, "heap_live_bytes"), u64_or_null(w, c->live_known, c->heap_live);
	jw_key(w, "heap_marked_bytes"), u64_or_null(w, c->marked_known, c->heap_marked);
	jw_key(w, "pause_ns"), u64_or_null(w, c->pause_known, c->pause_ns);
	jw_obj_end(w);
}

static void go(struct json_writer *w, const struct ht_rgo *g)
{
	jw_obj_begin(w);
	jw_key(w, "version"), jw_str(w, g->version);
	jw_key(w, "exact"), jw_bool(w, g->exact);
	jw_key(w, "mem_profile_rate");
	if (g->mem_profile_rate >= 0)
		jw_i64(w, g->mem_profile_rate);
	else
		jw_null(w);
	jw_key(w, "note"), jw_str(w, g->note);
	jw_key(w, "gc_cycles"), jw_u64(w, g->cycles_seen);
	jw_key(w, "gc_forced"), jw_u64(w, g->forced);
	jw_key(w, "gc_pause_total_ns"), jw_u64(w, g->pause_total_ns);
	jw_key(w, "gc_pauses_known"), jw_u64(w, g->pauses_known);
	jw_key(w, "gc_numbered_by_runtime"), jw_bool(w, g->numbered_by_runtime);
	jw_key(w, "gc_cycles_dropped"), jw_u64(w, g->dropped);
	jw_key(w, "gc_timeline");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < g->ncycles; i++)
		gc_cycle(w, g, &g->cycles[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void process(struct json_writer *w, const struct ht_rproc *p)
{
	jw_obj_begin(w);
	jw_key(w, "pid"), jw_i64(w, p->pid);
	jw_key(w, "comm"), jw_str(w, p->comm);
	jw_key(w, "exe"), jw_str(w, p->exe);
	jw_key(w, "exited"), jw_bool(w, p->exited);
	jw_key(w, "exit_code");
	if (p->exited && p->exit_known)
		jw_i64(w, p->exit_code);
	else
		jw_null(w);
	counts(w, &p->c);
	jw_key(w, "aged_live_bytes"), jw_u64(w, p->aged_bytes);
	jw_key(w, "aged_live_count"), jw_u64(w, p->aged_count);
	jw_key(w, "peak_bytes"), jw_u64(w, p->peak_bytes);
	jw_key(w, "peak_count"), jw_u64(w, p->peak_count);
	jw_key(w, "peak_time_s"), jw_double(w, p->peak_time_s);
	jw_key(w, "rate_bytes_per_s"), jw_double(w, p->rate_bytes);
	jw_key(w, "rate_allocs_per_s"), jw_double(w, p->rate_count);
	jw_key(w, "modules");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < p->nmodules; i++) {
		const struct ht_rmodule *m = &p->modules[i];

		jw_obj_begin(w);
		jw_key(w, "path"), jw_str(w, m->path);
		jw_key(w, "start"), jw_hex(w, m->start);
		jw_key(w, "end"), jw_hex(w, m->end);
		jw_key(w, "file_offset"), jw_hex(w, m->file_offset);
		jw_key(w, "bias"), jw_hex(w, m->bias);
		jw_key(w, "build_id"), jw_str(w, m->build_id);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "unknown_frees"), jw_u64(w, p->unknown_frees);
	jw_key(w, "reused_live"), jw_u64(w, p->reused_live);
	jw_key(w, "model_full"), jw_u64(w, p->model_full);
	jw_key(w, "sites");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < p->nsites; i++)
		site(w, &p->sites[i]);
	jw_arr_end(w);
	jw_key(w, "allocator"), jw_str(w, p->allocator);
	jw_key(w, "go");
	if (p->go)
		go(w, p->go);
	else
		jw_null(w);
	jw_obj_end(w);
}

static void system_section(struct json_writer *w, const struct ht_rsystem *sys)
{
	jw_obj_begin(w);
	jw_key(w, "objects");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < sys->nobjects; i++) {
		jw_obj_begin(w);
		jw_key(w, "path"), jw_str(w, sys->objects[i].path);
		jw_key(w, "kind"), jw_str(w, sys->objects[i].kind);
		jw_key(w, "functions"), jw_u64(w, sys->objects[i].functions);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_key(w, "pid_scoped"), jw_bool(w, sys->filtered);
	jw_key(w, "attach_ms"), jw_double(w, sys->attach_ms);
	jw_key(w, "procs_seen"), jw_u64(w, sys->procs_seen);
	jw_key(w, "procs_exited"), jw_u64(w, sys->procs_exited);
	jw_key(w, "procs_evicted"), jw_u64(w, sys->procs_evicted);
	jw_key(w, "late_attaches"), jw_u64(w, sys->late_attaches);
	jw_key(w, "exec_events"), jw_u64(w, sys->exec_events);
	jw_key(w, "comm_unmatched");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < sys->ncomm_unmatched; i++)
		jw_str(w, sys->comm_unmatched[i]);
	jw_arr_end(w);
	jw_obj_end(w);
}

int report__write_json(const struct ht_report *r, FILE *f)
{
	const uint64_t *b = r->loss.bpf;
	struct json_writer w;

	jw_init(&w, f, 1);
	jw_obj_begin(&w);
	jw_key(&w, "schema"), jw_str(&w, "heaptap-report");
	jw_key(&w, "version"), jw_u64(&w, HT_REPORT_SCHEMA);
	jw_key(&w, "final"), jw_bool(&w, r->final);
	jw_key(&w, "start_time_unix_ns"), jw_u64(&w, r->start_unix_ns);
	jw_key(&w, "mode"), jw_str(&w, r->mode);
	jw_key(&w, "sample_bytes"), jw_u64(&w, r->sample_bytes);
	jw_key(&w, "elapsed_s"), jw_double(&w, r->elapsed_s);
	jw_key(&w, "interval_s"), jw_double(&w, r->interval_s);
	jw_key(&w, "min_age_s"), jw_double(&w, r->min_age_s);
	jw_key(&w, "max_depth"), jw_u64(&w, r->max_depth);
	jw_key(&w, "events"), jw_u64(&w, r->events);
	jw_key(&w, "probes"), jw_u64(&w, r->probes);
	jw_key(&w, "slow_probes"), jw_u64(&w, r->slow_probes);
	jw_key(&w, "collector_bytes"), jw_u64(&w, r->collector_bytes);
	jw_key(&w, "live_blocks_tracked"), jw_u64(&w, r->live_blocks_tracked);
	jw_key(&w, "stacks_tracked"), jw_u64(&w, r->stacks_tracked);
	jw_key(&w, "system");
	if (r->system)
		system_section(&w, r->system);
	else
		jw_null(&w);
	jw_key(&w, "loss");
	jw_obj_begin(&w);
	jw_key(&w, "ringbuf_drops"), jw_u64(&w, b[HT_CNT_RINGBUF_DROPS]);
	jw_key(&w, "thread_state_full"), jw_u64(&w, b[HT_CNT_STATE_FULL]);
	jw_key(&w, "nesting_overflow"), jw_u64(&w, b[HT_CNT_NEST_OVERFLOW]);
	jw_key(&w, "returns_without_entry"), jw_u64(&w, b[HT_CNT_RET_NO_ENTRY]);
	jw_key(&w, "stack_errors"), jw_u64(&w, b[HT_CNT_STACK_ERRORS]);
	jw_key(&w, "stacks_truncated"), jw_u64(&w, b[HT_CNT_STACK_TRUNCATED]);
	jw_key(&w, "nested_calls_folded"), jw_u64(&w, b[HT_CNT_NESTED_SKIPPED]);
	jw_key(&w, "sample_map_full"), jw_u64(&w, b[HT_CNT_SAMPLE_MAP_FULL]);
	jw_key(&w, "unsampled"), jw_u64(&w, b[HT_CNT_UNSAMPLED]);
	jw_key(&w, "unknown_frees"), jw_u64(&w, r->loss.unknown_frees);
	jw_key(&w, "reused_live"), jw_u64(&w, r->loss.reused_live);
	jw_key(&w, "model_full"), jw_u64(&w, r->loss.model_full);
	jw_key(&w, "bad_records"), jw_u64(&w, r->loss.bad_records);
	jw_obj_end(&w);
	jw_key(&w, "processes");
	jw_arr_begin(&w);
	for (uint32_t i = 0; i < r->nprocs; i++)
		process(&w, &r->procs[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	return ferror(f) ? -EIO : 0;
}
