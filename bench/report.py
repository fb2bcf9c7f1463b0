"""The benchmark's ratios and its markdown table (used by bench/run.py)."""


def _by_batch(runs):
    return {r["batch_size"]: r for r in (runs or [])}


def ratios(results):
    """ours / Flask (events/s, same batch size, same load) and ours / ceiling: for single
    events the loopback HTTP ceiling (our /ping, requests/s), for batches the single-core
    parse + validate + encode ceiling (criterion, events/s)."""
    ours = _by_batch(results["clickstream"]["ingest"])
    flask = _by_batch((results.get("flask") or {}).get("ingest"))
    ping = results["clickstream"]["ping"]["requests_per_sec"]
    crit = results.get("criterion") or {}
    cpu = (crit.get("compiled") or crit.get("parse_validate_encode") or {}).get("events_per_sec")
    out = []
    for batch, run in sorted(ours.items()):
        row = {"batch_size": batch, "ours_events_per_sec": run["events_per_sec"]}
        if batch in flask and flask[batch]["events_per_sec"]:
            row["ours_over_flask"] = run["events_per_sec"] / flask[batch]["events_per_sec"]
        if batch == 1:
            row["ceiling"] = "loopback /ping requests/s"
            row["ours_over_ceiling"] = run["requests_per_sec"] / ping if ping else None
        elif cpu:
            row["ceiling"] = "criterion validate+encode events/s (what /collect runs), one core"
            row["ours_over_ceiling"] = run["events_per_sec"] / cpu
        out.append(row)
    return out


def _n(value, digits=0):
    if value is None:
        return "–"
    return f"{value:,.{digits}f}"


def _x(value):
    return "–" if value is None else f"{value:.2f}×"


def markdown(results):
    cfg, machine = results["config"], results["machine"]
    ours, flask = results["clickstream"], results.get("flask")
    lines = [
        f"# clickstream benchmark, {results['started']}",
        "",
        f"{machine['cores']} cores ({machine['cpu']}), load average at start "
        f"{', '.join(f'{v:.2f}' for v in machine['load_average_at_start'])}; commit {machine['commit']}; "
        f"{cfg['connections']} connections, {cfg['ingest_secs']} s per load run"
        + (" (QUICK: smoke-test durations, debug-grade figures)" if cfg["quick"] else "")
        + ". The load tool shares the cores with the server; compare figures of one run.",
        "",
        "The processor runs every enricher (defaults); geo data: "
        + (", ".join(machine.get("geo_data") or []) or "none (run scripts/setup-geoip)") + ".",
        "",
        _binaries(machine),
    ]
    if ours:
        lines += _ingest(ours, flask, results)
    if results.get("criterion"):
        lines += ["", "## Criterion (single core)"] + _criterion(results["criterion"])
    lines += _pipeline(results)
    if ours and ours.get("query"):
        lines += _queries(ours["query"])
    text = "\n".join(lines) + "\n"
    if results.get("evolution"):
        import evolution

        text += evolution.markdown(results["evolution"], results["config"].get("baseline_bin"))
    if results.get("edge"):
        import edge

        text += edge.markdown(results["edge"])
    if results.get("segment"):
        import segment

        text += segment.markdown(results["segment"])
    if results.get("memory"):
        import memory

        text += memory.markdown(results["memory"])
    if results.get("fast"):
        import fast

        text += fast.markdown(results["fast"], results["config"].get("baseline_bin"))
    return text


def _binaries(machine):
    """The binaries' sizes: what a user downloads (issue 16 asks for 150 MB at most; the
    `dist` profile is the one to ship, `release` and `profiling` keep more)."""
    text = f"Binary: `{machine['binary']}`, {machine.get('binary_bytes', 0) / 1e6:,.1f} MB"
    if machine.get("baseline_binary_bytes"):
        text += f"; baseline binary {machine['baseline_binary_bytes'] / 1e6:,.1f} MB"
    return text + "."


def _ingest(ours, flask, results):
    lines = [
        "",
        "## Ingest",
        "",
        "| server | route | batch | events/s | requests/s | p50 ms | p99 ms | server CPU s / M events | ours / Flask | ours / ceiling |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by_batch = {r["batch_size"]: r for r in results["ratios"]}

    def row(name, route, r, ratio=None):
        cpu = r.get("server_cpu_secs_per_million_events")
        over_flask = _x(ratio.get("ours_over_flask")) if ratio else ""
        over_ceiling = _x(ratio.get("ours_over_ceiling")) if ratio else ""
        batch = r["batch_size"] if route == "/collect" else "–"
        lines.append(
            f"| {name} | {route} | {batch} | {_n(r['events_per_sec'])} | {_n(r['requests_per_sec'])} | "
            f"{r['latency_p50_ms']:.2f} | {r['latency_p99_ms']:.2f} | {_n(cpu, 1)} | {over_flask} | {over_ceiling} |"
        )

    for r in ours["ingest"]:
        row("clickstream", "/collect", r, by_batch.get(r["batch_size"]))
    row("clickstream", "/ping", ours["ping"])
    if flask:
        for r in flask["ingest"]:
            row("Flask + fastavro (original, re-created)", "/collect", r)
        row("Flask + fastavro (original, re-created)", "/ping", flask["ping"])
    return lines


def _criterion(crit):
    """The criterion benches' figures (the step `criterion`), whichever other steps ran."""
    lines = []
    lines += [
        "",
        f"Single-core ceiling (criterion, batches of 100): the compiled validator (JSON text "
        f"to Avro in one pass, what /collect runs) {_n((crit.get('compiled') or {}).get('events_per_sec'))} "
        f"events/s; the value path (JSON values, Avro values, encode) "
        f"{_n(crit['parse_validate_encode']['events_per_sec'])} events/s; JSON parse alone "
        f"{_n(crit['parse_only']['events_per_sec'])} events/s. ours / ceiling: batch 1 against "
        f"our /ping requests/s, larger batches against the compiled figure.",
    ]
    if "edge_request_of_100_events" in crit:
        guard = crit["edge_request_of_100_events"]["ns"]
        validation = crit["edge_validate_100_events"]["ns"]
        share = guard / validation
        lines += [
            "",
            f"The edge with write keys and rate limits on (criterion, `edge_guard`): "
            f"{guard:,.0f} ns per request of 100 events (key check, in-flight place, byte "
            f"hold, tokens from both buckets), {share:.2%} of the same request's parse + "
            f"validate + encode in the same run ({validation / 1000:,.0f} µs).",
        ]
    if "decode_rows_compiled" in crit:
        by_name = crit["decode_rows_by_name"]["records_per_sec"]
        resolved = crit["decode_rows_resolved"]["records_per_sec"]
        now = crit["decode_rows_compiled"]["records_per_sec"]
        lines += [
            "",
            f"The processor's decode → Arrow path (criterion, `records_1000`, one core, no "
            f"enrichment): {_n(now)} records/s with the fields read straight from the record "
            f"by the reader compiled per writer schema (no Avro value tree), against "
            f"{_n(resolved)} decoding to apache-avro's value tree and reading the fields at "
            f"positions resolved per writer schema (the path before, {now / resolved:.2f}×), "
            f"and {_n(by_name)} with fields found by name and `metadata` through an Avro "
            f"value tree (the path before that, {now / by_name:.2f}×).",
        ]
    return lines


def _pipeline(results):
    ours, flask = results["clickstream"], results.get("flask")
    vis, drain = results.get("visibility"), results.get("drain")
    rows = []
    if vis:
        rows.append(
            f"| ack → queryable at {_n(vis['offered_rate'])} events/s offered: p50 / p99 / max ms | "
            f"{vis['visible_p50_ms']:.0f} / {vis['visible_p99_ms']:.0f} / {vis['visible_max_ms']:.0f} "
            f"({vis['requests_missing']} requests not seen) |")
    if drain:
        rows.append(f"| processor drain of a {_n(drain['backlog_events'])}-event backlog, events/s | "
                    f"{_n(drain['events_per_sec'])} |")
    if ours:
        rss_flask = _n(flask["peak_rss_mb"], 0) if flask else "–"
        rows += [
            f"| `clickstream generate` (synthetic, 5 % invalid) events/s | {_n(ours['generator']['achieved_rate'])} |",
            f"| lake caught up after the load, s | {ours['lake_catch_up']['seconds']:.1f} "
            f"({_n(ours['lake_catch_up']['rows'])} of {_n(ours['lake_catch_up']['expected'])} events) |",
            f"| peak RSS, clickstream up / Flask, MB | {_n(ours['peak_rss_mb'])} / {rss_flask} |",
        ]
    if not rows:
        return []
    return ["", "## Pipeline", "", "| measure | value |", "|---|---:|"] + rows


def _queries(query):
    lines = []
    if query:
        files = ", ".join(f"{t} {n}" for t, n in query["files"].items())
        threads = query.get("threads")
        all_threads = query.get("duckdb_default_threads")
        lines += [
            "",
            f"## Queries (the lake after the runs above, served by `up` with the processor off; "
            f"Parquet files: {files})",
            "",
            (f"Our engine plans and runs on {threads} thread(s) (`query.threads`); DuckDB runs with "
             f"as many for the comparison, and with its default ({all_threads}) for the record."
             if threads else "DuckDB with its default threads."),
            "",
            "| question | clickstream ms (POST /api/sql) | clickstream sql ms (new process) | DuckDB ms (same files, same threads) | ours / DuckDB | DuckDB ms, every core | rows | rows agree |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for q in query["queries"]:
            if "skipped" in q:
                lines.append(f"| {q['query']} | – | – | – | – | – | – | skipped: {q['skipped']} |")
                continue
            lines.append(
                f"| {q['query']} | {q['ours_ms']:.1f} | {_n(q['ours_cold_process_ms'], 0)} | {q['duckdb_ms']:.1f} | "
                f"{_x(q['ratio_ours_to_duckdb'])} | {_n(q.get('duckdb_all_threads_ms'), 1)} | {q['rows']} | "
                f"{'yes' if q['rows_agree'] else 'NO'} |"
            )
        timed = [q for q in query["queries"] if "ratio_ours_to_duckdb" in q and q["ratio_ours_to_duckdb"]]
        if timed:
            product = 1.0
            for q in timed:
                product *= q["ratio_ours_to_duckdb"]
            lines.append(f"\nGeometric mean ours / DuckDB: {product ** (1 / len(timed)):.2f}×")
    return lines
