#!/usr/bin/env python3
"""The tables of a bench.sh run, from sseload's JSON files.

    report.py --out DIR          markdown tables of DIR/s{1..5}-{target}.json and DIR/meta.json
    report.py --check FILE...    exit 1 unless every run succeeded without an error or lost event

Ratios are what a run on a shared machine can say: every target ran in the same run, against
the same upstream, one after the other. The translated-lane section puts the targets that
translate the Messages API to OpenAI Chat Completions (ringgate-openai, litellm-openai, ccr)
beside ringgate's pass-through; the Bedrock-lane section does the same for ringgate-bedrock
(its upstream the mock's Bedrock paths: event-stream frames unwrapped), and the limits section
ringgate-limits (every per-key limit and budget on, none reached) beside ringgate. The targets
section checks the figures against issues 6, 15, 16 and 18's goals.
"""

import argparse
import json
import os
import sys

TARGETS = ["direct", "ringgate", "ringgate-limits", "ringgate-immediate", "ringgate-openai",
           "ringgate-bedrock", "nginx", "haproxy", "litellm", "litellm-openai", "ccr"]
# The upstream dialect of each target of the translated-lane section: what it speaks to the mock.
DIALECT = {"ringgate": "anthropic", "ringgate-openai": "openai", "litellm": "anthropic",
           "litellm-openai": "openai", "ccr": "openai"}
FLUSH_INTERVAL_US = 120_000


def load(out, scenario):
    runs = {}
    for target in TARGETS:
        path = os.path.join(out, f"s{scenario}-{target}.json")
        if os.path.exists(path):
            with open(path) as f:
                runs[target] = json.load(f)
    return runs


def num(value, digits=0):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "–"
    return f"{a / b:.2f}×"


def ok_rate(run):
    """Successful requests per second: a target that fails fast must not look fast."""
    return (run["requests"] - run["errors"]) / run["duration_s"] if run["duration_s"] else 0


def cpu_per_request(run):
    cpu = run.get("cpu")
    return cpu["cpu_us_per_request"] if cpu else None


def stream(run):
    return run.get("stream_stats") or {}


def cpu_per_event(run):
    """Stream runs: the proxy's CPU over the events the client received."""
    cpu = run.get("cpu") if run else None
    return cpu.get("cpu_us_per_event") if cpu else None


def cpu_per_mb(run):
    """The proxy's CPU ms per MB of streamed body (scenario 5)."""
    if not run or not run.get("cpu") or not stream(run).get("body_bytes"):
        return None
    return (run["cpu"]["cpu_us"] / 1000) / (stream(run)["body_bytes"] / 1e6)


def per_stream_kib(run):
    return (run.get("rss") or {}).get("per_stream_kib") if run else None


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def errors(run):
    kinds = ", ".join(f"{k} {v}" for k, v in run["error_kinds"].items() if v)
    return f"{run['errors']}" + (f" ({kinds})" if kinds else "")


def scenario1(runs, meta):
    d, n = runs.get("direct"), runs.get("nginx")
    rows = []
    for t, r in runs.items():
        rows.append([
            t, num(ok_rate(r)), ratio(ok_rate(r), d and ok_rate(d)), ratio(ok_rate(r), n and ok_rate(n)),
            num(cpu_per_request(r), 1), ratio(cpu_per_request(r), n and cpu_per_request(n)),
            num(r["latency_us"]["p50"]), num(r["latency_us"]["p99"]), errors(r),
        ])
    return (
        f"### 1. Non-stream throughput (closed loop, {meta['concurrency']} connections, "
        f"{meta['duration_s']} s)\n\n"
        + table(["target", "ok requests/s", "× direct", "× nginx", "CPU µs/request",
                 "CPU × nginx", "p50 µs", "p99 µs", "errors"], rows)
        + "\n\nCPU is the proxy's own (all its threads and processes); for direct, the mock's."
    )


def scenario2(runs, meta):
    d = runs.get("direct")
    rows = []
    for t, r in runs.items():
        lat = r["latency_us"]
        added = lambda k: None if not d or t == "direct" else lat[k] - d["latency_us"][k]
        rows.append([
            t, num(r.get("target_rate")), num(ok_rate(r)), num(lat["p50"]), num(lat["p99"]),
            num(lat["p999"]), num(lat["max"]), num(added("p50")), num(added("p99")), errors(r),
        ])
    note = ""
    if "litellm" in runs:
        note = ("\n\nLiteLLM is offered a lower rate, one it keeps up with: at the others' rate its "
                "queue would grow for the whole run and the figures would measure the queue.")
    return (
        f"### 2. Non-stream latency (open loop, {meta['rate']} requests/s, {meta['duration_s']} s)"
        "\n\n"
        + table(["target", "offered/s", "achieved/s", "p50 µs", "p99 µs", "p99.9 µs", "max µs",
                 "added p50 µs", "added p99 µs", "errors"], rows)
        + note
    )


def scenario3(runs, meta):
    d = stream(runs["direct"]) if "direct" in runs else None
    rows = []
    for t, r in runs.items():
        s = stream(r)
        ttfe, delay = s.get("ttfe_us") or {}, s.get("event_delay_us") or {}
        added = lambda part, k: (None if not d or t == "direct"
                                 else (s.get(part) or {}).get(k, 0) - (d.get(part) or {}).get(k, 0))
        rows.append([
            t, num(ttfe.get("p50")), num(ttfe.get("p99")), num(added("ttfe_us", "p99")),
            num(delay.get("p50")), num(delay.get("p99")), num(delay.get("max")),
            num(added("event_delay_us", "p99")), num(s.get("reads_per_event"), 3),
            num(cpu_per_event(r), 2), s.get("lost_events"), s.get("garbled_events"), errors(r),
        ])
    return (
        f"### 3. Stream lane (closed loop, {meta['streams']} streams of {meta['lane_deltas']} deltas × 60 B every "
        f"20 ms, {meta['duration_s']} s)\n\n"
        + table(["target", "TTFE p50 µs", "TTFE p99 µs", "added TTFE p99 µs", "event delay p50 µs",
                 "p99 µs", "max µs", "added delay p99 µs", "reads/event", "CPU µs/event", "lost",
                 "garbled", "errors"], rows)
        + "\n\nEvent delay: arrival at the client minus the mock's send stamp. ringgate "
          "coalesces (flush_interval_ms = 120, flush_threshold_bytes = 8192) unless immediate; "
          "ringgate-openai coalesces likewise. CPU µs/event: the proxy's CPU over the events "
          "its clients received (for direct, the mock's)."
    )


def scenario4(runs, meta):
    n = runs.get("nginx")
    per = per_stream_kib
    rows = []
    for t, r in runs.items():
        s, rss = stream(r), r.get("rss") or {}
        rows.append([
            t, r.get("concurrency", meta["hold"]), s.get("held_max"), r["requests"] - r["errors"],
            s.get("lost_events"),
            errors(r), num((rss.get("baseline_kib") or 0) / 1024, 1),
            num((rss.get("peak_kib") or 0) / 1024, 1), num(per(r), 1), ratio(per(r), n and per(n)),
        ])
    return (
        f"### 4. Concurrent streams ({meta['hold']} held, {meta['hold_deltas']} deltas every "
        f"{meta['hold_interval_ms']} ms each)\n\n"
        + table(["target", "streams", "held at once", "completed", "lost events", "errors",
                 "RSS idle MiB", "RSS peak MiB", "KiB/stream", "× nginx"], rows)
        + "\n\nRSS: the proxy's resident memory (nginx: master and worker); for direct, the "
          "mock's. KiB/stream = (peak − idle) / held."
        + (f" ccr is offered {runs['ccr'].get('concurrency')} streams: its one thread opens one "
           "in a few milliseconds." if "ccr" in runs else "")
    )


def scenario5(runs, meta):
    d, n = runs.get("direct"), runs.get("nginx")
    mbps = lambda r: stream(r).get("body_bytes_per_s", 0) / 1e6 if r else None
    cpu_mb = cpu_per_mb
    rows = []
    for t, r in runs.items():
        rows.append([
            t, num(mbps(r), 1), ratio(mbps(r), mbps(d)), ratio(mbps(r), mbps(n)),
            num(cpu_mb(r), 2), ratio(cpu_mb(r), cpu_mb(n)), stream(r).get("lost_events"), errors(r),
        ])
    return (
        f"### 5. Bulk (4 streams of {meta['bulk_deltas']} × 2 KiB events back to back, "
        f"{meta['duration_s']} s)\n\n"
        + table(["target", "MB/s", "× direct", "× nginx", "CPU ms/MB", "CPU × nginx", "lost",
                 "errors"], rows)
    )


def added_ttfe_p99(s3, target):
    if target not in s3 or "direct" not in s3:
        return None
    return stream(s3[target])["ttfe_us"]["p99"] - stream(s3["direct"])["ttfe_us"]["p99"]


def lost_garbled(run):
    if not run:
        return "–"
    s = stream(run)
    return f"{s.get('lost_events')} / {s.get('garbled_events')}"


def lane(all_runs, tr, label):
    """ringgate's pass-through and target `tr` side by side, from the same run: the rows of
    scenarios 3, 1, 5 and 4 where `tr` ran them; `None` if it ran none."""
    s1, s3, s4, s5 = (all_runs.get(k, {}) for k in (1, 3, 4, 5))
    if not any(tr in runs for runs in (s1, s3, s4, s5)):
        return None
    pt = "ringgate"
    get = lambda runs, t: runs.get(t)

    def row(name, f, runs, digits=0, ratio_too=False):
        a, b = f(get(runs, pt)), f(get(runs, tr))
        fmt = lambda v: v if isinstance(v, str) else num(v, digits)
        return [name, fmt(a), fmt(b), ratio(b, a) if ratio_too else ""]

    delay = lambda k: lambda r: stream(r)["event_delay_us"][k] if r else None
    rows = []
    if tr in s3:
        rows += [
            ["3: added TTFE p99 µs", num(added_ttfe_p99(s3, pt)), num(added_ttfe_p99(s3, tr)), ""],
            row("3: event delay p99 µs", delay("p99"), s3),
            row("3: event delay max µs", delay("max"), s3),
            row("3: reads/event", lambda r: stream(r)["reads_per_event"] if r else None, s3, 3),
            row("3: lost / garbled events", lost_garbled, s3),
            row("3: CPU µs/event", cpu_per_event, s3, 2, True),
        ]
    if tr in s1:
        rows.append(row("1: CPU µs/request (non-stream)", cpu_per_request_or_none, s1, 1, True))
    if tr in s5:
        rows += [
            row("5: CPU ms/MB (bulk)", cpu_per_mb, s5, 2, True),
            row("5: MB/s", lambda r: stream(r)["body_bytes_per_s"] / 1e6 if r else None, s5, 1),
            row("5: lost / garbled events", lost_garbled, s5),
        ]
    if tr in s4:
        rows += [
            row("4: KiB resident per held stream", per_stream_kib, s4, 1, True),
            row("4: held / lost events",
                lambda r: f"{stream(r).get('held_max')} / {stream(r).get('lost_events')}" if r else "–",
                s4),
        ]
    return table(["figure", "ringgate", tr, f"{label} / pass-through"], rows)


def translated(all_runs, meta):
    """The translated lane (issue 15): ringgate's pass-through and ringgate-openai side by side,
    then every target that translates, from the same run."""
    s1, s3, s4 = (all_runs.get(k, {}) for k in (1, 3, 4))
    tr = "ringgate-openai"
    side_by_side = lane(all_runs, tr, "openai")
    if side_by_side is None:
        return None
    out = ("### Translated lane (kind = openai)\n\n"
           "ringgate relaying the mock's Anthropic stream (pass-through) and ringgate-openai "
           "translating the request to OpenAI Chat Completions and the mock's OpenAI stream back to "
           "Anthropic events, same flush settings, same run:\n\n" + side_by_side)

    # Every target that translates, beside the pass-through ones of the same run.
    names = [t for t in ("ringgate", "ringgate-openai", "litellm", "litellm-openai", "ccr")
             if t in s3 or t in s1]
    ref3, ref1 = cpu_per_event(s3.get(tr)), cpu_per_request_or_none(s1.get(tr))
    rows = []
    for t in names:
        r3, r1, r4 = s3.get(t), s1.get(t), s4.get(t)
        st = stream(r3) if r3 else {}
        if r4 and per_stream_kib(r4) is not None:
            memory = f"{per_stream_kib(r4):,.1f} ({stream(r4).get('held_max'):,} held)"
        else:
            memory = "not measured"
        rows.append([
            t, DIALECT[t], num(added_ttfe_p99(s3, t)),
            num((st.get("event_delay_us") or {}).get("p50")),
            num((st.get("event_delay_us") or {}).get("p99")),
            num((st.get("event_delay_us") or {}).get("max")),
            num(cpu_per_event(r3), 2), ratio(cpu_per_event(r3), ref3),
            num(cpu_per_request_or_none(r1), 1), ratio(cpu_per_request_or_none(r1), ref1),
            memory, lost_garbled(r3), errors(r3) if r3 else "–",
        ])
    out += ("\n\nEvery target that translates (upstream dialect openai), with the pass-through "
            "ones for reference; event delays from scenario 3, CPU per request from scenario 1, "
            "memory from scenario 4 where the target ran it:\n\n"
            + table(["target", "upstream", "added TTFE p99 µs", "event delay p50 µs", "p99 µs",
                     "max µs", "CPU µs/event", "× ringgate-openai", "CPU µs/request",
                     "× ringgate-openai", "KiB/held stream", "lost / garbled", "errors"], rows)
            + "\n\nCPU µs/event: the proxy's CPU over the events its clients received (each "
              "stream: the deltas and the frame events around them). KiB/held stream: "
              "(peak − idle) / held in scenario 4; \"not measured\" where the target did not run it. "
              "ccr and litellm-openai relay each event as it comes (no coalescing); ringgate-openai "
              "coalesces as ringgate does, so its event delays include the flush interval.")
    return out


def bedrock(all_runs, meta):
    """The Bedrock lane (issue 16): ringgate's pass-through and ringgate-bedrock side by side."""
    side_by_side = lane(all_runs, "ringgate-bedrock", "bedrock")
    if side_by_side is None:
        return None
    return ("### Bedrock lane (kind = bedrock)\n\n"
            "ringgate relaying the mock's Anthropic stream (pass-through) and ringgate-bedrock "
            "reshaping and SigV4-signing each request for Bedrock and unwrapping the mock's "
            "event-stream frames (CRCs checked, base64 decoded) into the same Anthropic events, "
            "same flush settings, same run:\n\n" + side_by_side)


def limits(all_runs, meta):
    """Issue 18: what per-key limits cost a request, ringgate-limits beside ringgate."""
    s1, s2 = all_runs.get(1, {}), all_runs.get(2, {})
    if "ringgate-limits" not in s1 and "ringgate-limits" not in s2:
        return None
    rows = []
    a, b = cpu_per_request_or_none(s1.get("ringgate")), cpu_per_request_or_none(s1.get("ringgate-limits"))
    rows.append(["1: CPU µs per request", num(a, 2), num(b, 2),
                 f"{b - a:+.2f} µs" if a and b else "–"])
    a, b = (ok_rate(s1[t]) if t in s1 else None for t in ("ringgate", "ringgate-limits"))
    rows.append(["1: requests/s", num(a), num(b), ratio(b, a)])
    for q in ("p50", "p99"):
        a, b = (s2[t]["latency_us"][q] if t in s2 else None for t in ("ringgate", "ringgate-limits"))
        rows.append([f"2: latency {q} µs", num(a), num(b), f"{b - a:+,.0f} µs" if a and b else "–"])
    return ("### Limits (kind = anthropic, every per-key limit and budget on)\n\n"
            "ringgate and ringgate-limits, same build, same run: the second's client key has "
            "requests, input and output tokens per minute, requests in flight and daily and "
            "monthly budgets set, none reached, so each request is admitted, settled and given "
            "the rate-limit headers:\n\n"
            + table(["figure", "ringgate", "ringgate-limits", "limits on − off"], rows))


def cpu_per_request_or_none(run):
    return cpu_per_request(run) if run else None


def goals(all_runs, meta):
    """Issue 6's targets, each with what this run measured."""
    rows = []

    def add(goal, measured, met):
        rows.append([goal, measured, "met" if met else "**missed**"])

    s1 = all_runs.get(1, {})
    if "ringgate" in s1 and "nginx" in s1:
        rg, ng = cpu_per_request(s1["ringgate"]), cpu_per_request(s1["nginx"])
        if rg and ng:
            add("1: CPU/request ≤ nginx / 1.5", f"{rg:.1f} vs {ng:.1f} µs (nginx/ringgate {ng / rg:.2f})",
                rg <= ng / 1.5)
        rg, ng = ok_rate(s1["ringgate"]), ok_rate(s1["nginx"])
        add("1: requests/s ≥ nginx", f"{rg:,.0f} vs {ng:,.0f}", rg >= ng)
    s2 = all_runs.get(2, {})
    if "ringgate" in s2 and "direct" in s2:
        added = s2["ringgate"]["latency_us"]["p99"] - s2["direct"]["latency_us"]["p99"]
        add("2: added p99 ≤ 200 µs", f"{added:,.0f} µs", added <= 200)
    s3 = all_runs.get(3, {})
    if "direct" in s3:
        d = stream(s3["direct"])
        if "ringgate" in s3:
            s = stream(s3["ringgate"])
            added = s["ttfe_us"]["p99"] - d["ttfe_us"]["p99"]
            add("3: added TTFE p99 ≤ 1 ms", f"{added:,.0f} µs", added <= 1000)
            add("3: event delay max ≤ flush interval (coalesce)",
                f"{s['event_delay_us']['max']:,} µs", s["event_delay_us"]["max"] <= FLUSH_INTERVAL_US)
            add("3: ≤ 0.25 client writes per event (coalesce; reads at the client)",
                f"{s['reads_per_event']:.3f}", s["reads_per_event"] <= 0.25)
        if "ringgate-immediate" in s3:
            s = stream(s3["ringgate-immediate"])
            added = s["event_delay_us"]["p99"] - d["event_delay_us"]["p99"]
            add("3: added event delay p99 ≤ 1 ms (immediate)", f"{added:,} µs", added <= 1000)
        for t in ("ringgate", "ringgate-immediate"):
            if t in s3:
                s = stream(s3[t])
                add(f"3: no lost event ({t})", f"{s['lost_events']} lost, {s['garbled_events']} garbled",
                    s["lost_events"] == 0 and s["garbled_events"] == 0)
    s4 = all_runs.get(4, {})
    if "ringgate" in s4:
        r = s4["ringgate"]
        s, per = stream(r), (r.get("rss") or {}).get("per_stream_kib")
        add("4: ≥ 20,000 streams held on one worker, none lost",
            f"{s['held_max']:,} held of {meta['hold']:,}, {s['lost_events']} lost, {r['errors']} errors",
            s["held_max"] >= 20000 and s["lost_events"] == 0 and r["errors"] == 0)
        if per is not None:
            add("4: ≤ 20 KiB resident per stream", f"{per:.1f} KiB", per <= 20)
    # Issue 15: the translated lane; issue 16: the Bedrock lane.
    lane_goals(add, all_runs, "ringgate-openai", "translated", 2)
    lane_goals(add, all_runs, "ringgate-bedrock", "Bedrock", 1.5)
    # Issue 18: limits on, none reached.
    a, b = (cpu_per_request_or_none(s1.get(t)) for t in ("ringgate", "ringgate-limits"))
    if a and b:
        add("1: limits on: CPU per request added ≤ 1 µs", f"{b:.2f} vs {a:.2f} µs ({b - a:+.2f})",
            b - a <= 1.0)
    return "### Targets (issues 6, 15, 16 and 18)\n\n" + table(["target", "measured", ""], rows)


def lane_goals(add, all_runs, target, label, factor):
    """A lane's goals: no event lost, the flush bound kept, and CPU per event within `factor`
    of the pass-through's."""
    s3 = all_runs.get(3, {})
    runs = [(k, all_runs[k][target]) for k in (3, 4, 5) if target in all_runs.get(k, {})]
    if runs:
        lost = sum(stream(r).get("lost_events") or 0 for _, r in runs)
        garbled = sum(stream(r).get("garbled_events") or 0 for _, r in runs)
        errs = sum(r["errors"] for _, r in runs)
        add(f"3-5: {label} lane: lost events 0",
            f"{lost} lost, {garbled} garbled, {errs} errors (scenarios "
            f"{', '.join(str(k) for k, _ in runs)})", lost == 0 and garbled == 0)
    if target in s3:
        worst = stream(s3[target])["event_delay_us"]["max"]
        add(f"3: {label} lane: event delay max ≤ flush interval", f"{worst:,} µs",
            worst <= FLUSH_INTERVAL_US)
        a, b = cpu_per_event(s3.get("ringgate")), cpu_per_event(s3[target])
        if a and b:
            add(f"3: {label} CPU per event ≤ {factor:g}× pass-through",
                f"{b:.2f} vs {a:.2f} µs ({b / a:.2f}×)", b <= factor * a)


def report(out):
    with open(os.path.join(out, "meta.json")) as f:
        meta = json.load(f)
    litellm, ccr = meta.get("litellm"), meta.get("ccr")
    print(f"## ringgate vs nginx vs HAProxy{' vs LiteLLM' if litellm else ''}"
          f"{' vs claude-code-router' if ccr else ''} ({meta['profile']} run)\n")
    print(f"{meta['cpus']} CPUs ({meta['cpu_model']}), Linux {meta['kernel']}; ringgate "
          f"{meta['ringgate']}, nginx {meta['nginx']}, HAProxy {meta['haproxy']}"
          f"{f', LiteLLM {litellm}' if litellm else ''}"
          f"{f', claude-code-router {ccr}' if ccr else ''}; one worker (or process) each, "
          f"proxy pinned to CPU 0; sseload ({meta['sseload_io_driver']}) and mock-upstream on the "
          f"other core(s).\n")
    all_runs = {}
    for scenario, render in enumerate([scenario1, scenario2, scenario3, scenario4, scenario5], 1):
        runs = load(out, scenario)
        if runs:
            all_runs[scenario] = runs
            print(render(runs, meta) + "\n")
    for section in (translated(all_runs, meta), bedrock(all_runs, meta), limits(all_runs, meta)):
        if section:
            print(section + "\n")
    print(goals(all_runs, meta))


def check(paths):
    ok = True
    for path in paths:
        with open(path) as f:
            r = json.load(f)
        s = r.get("stream_stats") or {}
        bad = r["requests"] == 0 or r["errors"] or any(
            s.get(k) for k in ("lost_events", "garbled_events", "incomplete_streams", "error_events"))
        if bad:
            print(f"{path}: {r['requests']} requests, errors {r['error_kinds']}, stream {s}",
                  file=sys.stderr)
            ok = False
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out")
    parser.add_argument("--check", nargs="+")
    args = parser.parse_args()
    if args.check:
        sys.exit(0 if check(args.check) else 1)
    if not args.out:
        parser.error("--out DIR or --check FILE... is required")
    report(args.out)


if __name__ == "__main__":
    main()
