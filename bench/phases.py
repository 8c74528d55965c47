"""The benchmark's phases, each a function from a running stack to a dict of figures:
ingest alone, the order path end to end, a campaign through the send path, status
webhooks, and the same campaign through the naive one-job-per-message path."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import redis
import rq

from bench.measure import (
    FakeLog,
    RssSampler,
    busiest_window,
    count_rows,
    cpu_seconds,
    latency_summary,
    machine_busy_seconds,
    per_second,
    steady_rate,
)
from bench.stack import (
    ORDER_SECRET,
    ROOT,
    Deadline,
    Stack,
    profiled,
    start_workers,
    stop_workers,
)

ENQUEUE_CHUNK = 1000


def run_loadgen(stk: Stack, mode: str, procs: int, concurrency: int, extra: list, deadline):
    """Run `procs` generator processes that start together; merged records, their CPU
    and wall time, and a `cpu_now` snapshot taken at the instant they start."""
    outs = [stk.workdir / f"{mode}-{n}-{time.time_ns()}.json" for n in range(procs)]
    not_before = time.time() + 1.0 + 0.3 * procs  # after every process has imported
    per_process = max(1, concurrency // procs)
    running = [
        subprocess.Popen(
            [
                *(sys.executable, "-m", "bench.loadgen", mode, "--url", stk.web_url),
                *("--out", str(out), "--start", str(n), "--step", str(procs)),
                *("--concurrency", str(per_process), "--not-before", str(not_before)),
                *map(str, extra),
            ],
            cwd=ROOT,
        )
        for n, out in enumerate(outs)
    ]
    time.sleep(max(0.0, not_before - time.time()))
    started = cpu_now(stk)
    try:
        for proc in running:
            proc.wait(max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired as exc:
        raise Deadline(f"load generator ({mode}) still running at the deadline") from exc
    finally:
        for proc in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    results = [json.loads(out.read_text()) for out in outs]
    records = [r for result in results for r in result["records"]]
    return records, sum(r["cpu_s"] for r in results), max(r["wall_s"] for r in results), started


def cpu_groups(stk: Stack) -> dict[str, list[int]]:
    groups = {"web": [stk.web.pid], "workers": [w.pid for w in stk.workers]}
    groups["fake"] = [stk.fake_pid]
    if stk.redis_pid:
        groups["redis"] = [stk.redis_pid]
    if stk.db_pid:
        groups["postgres"] = [stk.db_pid]
    return groups


def cpu_now(stk: Stack) -> dict[str, float]:
    used = {name: cpu_seconds(pids) for name, pids in cpu_groups(stk).items()}
    return {**used, "machine": machine_busy_seconds(), "at": time.monotonic()}


def cpu_during(stk: Stack, before: dict[str, float]) -> dict:
    """Cores each group kept busy since `before` was taken; "machine" is every process
    on the box (Redis, the database and the generators are in it, and any other load)."""
    after = cpu_now(stk)
    seconds = after.pop("at") - before["at"]
    return {
        name: round((after[name] - before.get(name, 0.0)) / seconds, 2) if seconds > 0 else 0.0
        for name in after
    }


def post_orders(stk: Stack, args, offset: int, deadline: float) -> dict:
    """Post `args.events` signed order events; per-event stamps and ingest figures."""
    extra = ["--count", args.events, "--offset", offset, "--secret", ORDER_SECRET]
    extra += ["--run", f"{offset}-{time.time_ns()}"]
    records, gen_cpu, wall, before = run_loadgen(
        stk, "orders", args.gen_procs, args.concurrency, extra, deadline
    )
    accepted = [r for r in records if r[3] in (200, 202)]
    statuses: dict[str, int] = {}
    for r in records:
        statuses[str(r[3])] = statuses.get(str(r[3]), 0) + 1
    first = min((r[1] for r in records), default=0.0)
    last = max((r[1] + r[2] for r in records), default=0.0)
    seconds = last - first
    return {
        "posted": len(records),
        "accepted": len(accepted),
        "statuses": statuses,
        "seconds": round(seconds, 2),
        "accepted_per_s": round(len(accepted) / seconds, 1) if seconds else 0.0,
        "latency_ms": latency_summary([r[2] for r in accepted]),
        "generator": {
            "processes": args.gen_procs,
            "concurrency": args.concurrency,
            "cpu_s": round(gen_cpu, 1),
            "cores": round(gen_cpu / wall, 2) if wall else 0,
        },
        "cpu": cpu_during(stk, before),
        "_posted_at": {mid: r[1] for r in accepted for mid in r[4]},
    }


def ingest_alone(stk: Stack, args, deadline: float) -> dict:
    """Phase 1: no worker runs, so the web tier and the database have the CPUs."""
    with profiled(stk, args, "ingest"):
        return post_orders(stk, args, 0, deadline)


def drain_backlog(stk: Stack, fake_log: FakeLog, ids: set[int], deadline: float) -> dict:
    """Start draining what ingest left queued; how fast the send path clears it."""
    started = time.time()
    done = fake_log.wait_for(ids, deadline)
    stamps = [fake_log.accepted[i].arrived for i in ids if i in fake_log.accepted]
    end = max(stamps, default=started)
    return {
        "messages": len(ids),
        "sent": len(stamps),
        "timed_out": not done,
        "sends_per_s": round(len(stamps) / (end - started), 1) if end > started else 0.0,
    }


def order_path(stk: Stack, args, fake_log: FakeLog, deadline: float) -> dict:
    """Phase 2: events posted while workers run; event posted -> provider accepted."""
    with profiled(stk, args, "orders"):
        ingest = post_orders(stk, args, args.events, deadline)
        posted_at = ingest.pop("_posted_at")
        done = fake_log.wait_for(set(posted_at), deadline)
    accepted = {mid: fake_log.accepted[mid] for mid in posted_at if mid in fake_log.accepted}
    e2e = [send.answered - posted_at[mid] for mid, send in accepted.items()]
    first_post = min(posted_at.values(), default=0.0)
    last = max((s.answered for s in accepted.values()), default=first_post)
    return {
        "ingest": ingest,
        "messages": len(posted_at),
        "sent": len(accepted),
        "timed_out": not done,
        "seconds": round(last - first_post, 2),
        "sends_per_s": round(len(accepted) / (last - first_post), 1) if last > first_post else 0,
        "event_to_accepted_ms": latency_summary(e2e),
    }


def seed(stk: Stack, count: int, prefix: str, category: str, deadline: float) -> tuple:
    out = stk.workdir / f"seed-{prefix}.json"
    subprocess.run(
        [
            *(sys.executable, "-m", "bench.seed", "--count", str(count), "--prefix", prefix),
            *("--category", category, "--out", str(out)),
        ],
        env=stk.env,
        cwd=ROOT,
        check=True,
        timeout=max(1.0, deadline - time.monotonic()),
    )
    data = json.loads(out.read_text())
    return data["ids"], data["seconds"]


def trigger_drain(stk: Stack) -> None:
    """Start the send path on the campaign: one `send_due` job on the campaigns queue
    (it enqueues more while it finds full batches, so idle workers join in)."""
    queue = rq.Queue("campaigns", connection=redis.Redis.from_url(stk.redis_url))
    queue.enqueue("jobs.send.send_due", "campaigns", result_ttl=0)


def enqueue_per_message(queue: rq.Queue, ids: list[int]) -> None:
    for start in range(0, len(ids), ENQUEUE_CHUNK):
        queue.enqueue_many(
            [
                rq.Queue.prepare_data("jobs.send.send_message", (mid,), result_ttl=0)
                for mid in ids[start : start + ENQUEUE_CHUNK]
            ]
        )


def campaign(stk: Stack, args, fake_log: FakeLog, deadline: float) -> dict:
    """Phase 3: N pre-made message rows drained by the send path, at SEND_RATE_PER_SECOND."""
    ids, seed_s = seed(stk, args.campaign, "97", args.category, deadline)
    phase_deadline = min(deadline, time.monotonic() + args.campaign_timeout)
    sampler = RssSampler([w.pid for w in stk.workers])
    sampler.start()
    before = cpu_now(stk)
    triggered = time.time()
    with profiled(stk, args, "campaign"):
        trigger_drain(stk)
        done = fake_log.wait_for(set(ids), phase_deadline, interval=1.0)
    sampler.stop()
    wanted = set(ids)
    sends = [s for mid, s in fake_log.accepted.items() if mid in wanted]
    arrivals = [s.arrived for s in sends]
    first = min(arrivals, default=triggered)
    last = max(arrivals, default=triggered)
    seconds = last - first
    steady = steady_rate(arrivals, args.steady_skip, args.steady_seconds)
    busiest, busiest_at = busiest_window(arrivals)
    return {
        "messages": len(ids),
        "seed_seconds": seed_s,
        "sent": len(sends),
        "timed_out": not done,
        "first_send_after_trigger_s": round(first - triggered, 2) if sends else None,
        "seconds": round(seconds, 2),
        "sends_per_s": round(len(sends) / seconds, 1) if seconds > 0 else 0.0,
        "rate": {
            "configured": args.rate,
            "steady": steady,
            "deviation_pct": round(100 * (steady["rate"] - args.rate) / args.rate, 2),
            "busiest_1s": busiest,
            "busiest_1s_at_s": round(busiest_at - first, 1),
            "per_second": per_second(arrivals, first),
        },
        "duplicates": fake_log.duplicates,
        "provider_errors": fake_log.errors,
        "rss": sampler.summary(after=first),
        "cpu": cpu_during(stk, before),
        "_sends": sends,
    }


def status_webhooks(stk: Stack, args, sends: list, deadline: float) -> dict:
    """Phase 4: sent/delivered/read webhooks for sent messages; receipts applied/s."""
    chosen = sorted(sends, key=lambda s: s.message_id)[: args.status_messages]
    if not chosen:
        return {"messages": 0}
    source = stk.workdir / "status-input.json"
    source.write_text(json.dumps([[s.message_id, s.provider_message_id, s.to] for s in chosen]))
    ids = ",".join(str(s.message_id) for s in chosen)
    done_sql = f"SELECT count(*) FROM message WHERE state = 'read' AND id IN ({ids})"
    extra = [
        "--input",
        source,
        "--batch",
        args.status_batch,
        "--app-secret",
        stk.env["META_APP_SECRET"],
        "--phone-number-id",
        stk.env["META_PHONE_NUMBER_ID"],
    ]
    with profiled(stk, args, "statuses"):
        records, gen_cpu, _, before = run_loadgen(
            stk, "statuses", args.gen_procs, args.concurrency, extra, deadline
        )
        read = 0
        while time.monotonic() < deadline:
            read = count_rows(stk.database_url, done_sql)
            if read >= len(chosen):
                break
            time.sleep(0.5)
        applied_end = time.time()
    ok = [r for r in records if r[3] == 200]
    statuses = sum(r[0] for r in ok)
    first = min((r[1] for r in records), default=time.time())
    posted_end = max((r[1] + r[2] for r in records), default=first)
    answers: dict[str, int] = {}
    for r in records:
        answers[str(r[3])] = answers.get(str(r[3]), 0) + 1
    return {
        "messages": len(chosen),
        "webhooks": len(records),
        "statuses_per_webhook": args.status_batch,
        "answers": answers,
        "statuses_posted": statuses,
        "posted_per_s": round(statuses / (posted_end - first), 1) if posted_end > first else 0,
        "webhook_latency_ms": latency_summary([r[2] for r in ok]),
        "read": read,
        "timed_out": read < len(chosen),
        "applied_seconds": round(applied_end - first, 2),
        "applied_per_s": round(statuses / (applied_end - first), 1) if read else 0.0,
        "generator_cpu_s": round(gen_cpu, 1),
        "cpu": cpu_during(stk, before),
    }


def naive(stk: Stack, args, fake_log: FakeLog, stack: ExitStack, deadline: float) -> dict:
    """Phase 5: the same workload, one `send_message` job per message on forking workers."""
    stop_workers(stk)
    ids, _ = seed(stk, args.naive, "96", args.category, deadline)
    queue = rq.Queue("naive", connection=redis.Redis.from_url(stk.redis_url))
    enqueue_per_message(queue, ids)
    workers = start_workers(stk, stack, args.naive_workers, naive=True)
    started = time.time()
    phase_deadline = min(deadline, time.monotonic() + args.naive_timeout)
    with profiled(stk, args, "naive"):
        done = fake_log.wait_for(set(ids), phase_deadline, interval=1.0)
    wanted = set(ids)
    arrivals = [s.arrived for mid, s in fake_log.accepted.items() if mid in wanted]
    end = max(arrivals, default=started) if done else time.time()
    first = min(arrivals, default=started)
    return {
        "messages": len(ids),
        "workers": len(workers),
        "sent": len(arrivals),
        "timed_out": not done,
        "seconds": round(end - first, 2),
        "sends_per_s": round(len(arrivals) / (end - first), 1) if end > first else 0.0,
    }


def log_errors(workdir: Path) -> dict[str, list[str]]:
    found = {}
    for log in sorted(workdir.glob("*.log")):
        lines = log.read_text(errors="replace").splitlines()
        errors = [line for line in lines if "Error" in line or "Traceback" in line]
        if errors:
            found[log.name] = [f"{len(errors)} lines, last: {errors[-1][:300]}"]
    return found
