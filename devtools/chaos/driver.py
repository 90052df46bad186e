"""Chaos driver: the Procfile's real processes, SIGKILLed at random, against DESIGN.md §4.

`run_chaos(config)` starts the web server (bin/web: gunicorn), a django-q2 cluster and the durable
poller on the database Django is connected to, buys over HTTP (Basic auth) with cancels sent at
random times around each purchase's deadline, kills the processes at random moments (some while
cancels are in flight), restarts them, waits for every purchase to end, and checks the invariants
against the database. It returns a `ChaosReport`: its `violations` list is empty exactly when every
invariant held, and `summary()` prints the counts.

The children run the project's settings through devtools/chaos/child_settings.py, which only swaps
in a cheap password hasher (HTTP Basic hashes the password on every request).

Used by tests/chaos/test_chaos.py (short) and bench/chaos.py (long). The caller gives it a migrated
database of its own: the driver creates fresh users and resets its two products' stock, and it
counts any workflow run left active in the database as stuck. Only the main thread touches the
ORM; the client threads speak HTTP only.
"""

from __future__ import annotations

import base64
import datetime as dt
import http.client
import json
import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count

from devtools.chaos.hashers import FastPBKDF2PasswordHasher
from devtools.environments import NO_RATE_LIMITS
from devtools.ports import CHAOS_SERVERS, free_port
from devtools.processes import Process, poller, wait_for_http, web, worker
from durable.models import ACTIVE_STATUSES, RunStatus, StepCheckpoint, WorkflowRun, WorkflowSignal
from purchases import services
from purchases.models import Order, Product, Purchase
from purchases.services import run_id_for
from purchases.states import CANCEL_SIGNAL, CANCELLED, CONFIRMED, FAILED

PLENTY = "chaos-widget"
SCARCE = "chaos-scarce"


@dataclass(frozen=True, slots=True)
class ChaosConfig:
    """What one chaos run does. Defaults are the CI variant's."""

    purchases: int = 80
    users: int = 4
    window_seconds: float = 2.0
    # Purchases start spread over this many seconds.
    span_seconds: float = 20.0
    # At least this many SIGKILL events (one event may kill all three processes).
    kills: int = 6
    q_workers: int = 2
    # Units of the scarce product: purchases of it beyond this end FAILED out_of_stock.
    scarce_stock: int = 3
    scarce_share: float = 0.2
    # Every purchase must be terminal this long after max(last deadline, last restart).
    settle_seconds: float = 25.0
    request_timeout: float = 30.0
    # A request retried this long without an answer is abandoned (its outcome is then unknown).
    give_up_seconds: float = 120.0
    # After a lost answer, how often the client retries the cancel instead of walking away.
    retry_lost_cancel: float = 0.5
    seed: int | None = None
    port: int | None = None
    cluster_name: str | None = None


# --- HTTP ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: Any
    sent_at: float
    at: float

    @property
    def latency(self) -> float:
        return self.at - self.sent_at


class NotSent(Exception):
    """The server could not be reached: it never saw the request, so a retry is always safe."""


class Lost(Exception):
    """The request may have reached the server but its answer never came back."""


class Client:
    """HTTP Basic client for the API on 127.0.0.1:`port`; one connection per request."""

    def __init__(self, port: int, timeout: float) -> None:
        self.port = port
        self.timeout = timeout

    def send(
        self,
        method: str,
        path: str,
        auth: str,
        body: Any = None,
        on_wire: Callable[[], None] | None = None,
    ) -> Answer:
        """One attempt. Raises NotSent or Lost instead of returning when there is no answer.
        `on_wire` is called once the request has been written to the server."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        sent_at = time.time()
        try:
            try:
                conn.connect()
            except OSError as exc:
                raise NotSent(str(exc)) from exc
            headers = {"Authorization": auth, "Accept": "application/json"}
            payload = None
            if body is not None:
                payload = json.dumps(body).encode()
                headers["Content-Type"] = "application/json"
            try:
                conn.request(method, path, body=payload, headers=headers)
                if on_wire is not None:
                    on_wire()
                response = conn.getresponse()
                raw = response.read()
            except (OSError, http.client.HTTPException) as exc:
                raise Lost(f"{type(exc).__name__}: {exc}") from exc
            try:
                decoded = json.loads(raw) if raw else None
            except ValueError:
                decoded = raw.decode(errors="replace")[:500]
            return Answer(response.status, decoded, sent_at, time.time())
        finally:
            conn.close()


def basic_auth(username: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()


def parse_time(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


# --- the plan -----------------------------------------------------------------------------------

CANCEL_KINDS = {
    # kind: share of purchases. "window": well inside the window; "edge": sent in its last
    # 100 ms; "boundary": sent so that the server decides within 100 ms either side of the
    # deadline (the request's own latency, measured on the buy, is taken off); "double": two
    # concurrent cancels (a double click) aimed like "boundary"; "late": up to 1 s after it.
    "none": 0.25,
    "window": 0.15,
    "edge": 0.15,
    "boundary": 0.15,
    "double": 0.15,
    "late": 0.15,
}


@dataclass(slots=True)
class PurchasePlan:
    index: int
    key: str
    user: int
    item_id: str
    start_at: float  # seconds after the load starts
    cancel_kind: str
    cancel_offset: float  # seconds relative to the deadline (negative: before it)
    double_buy: bool
    conflict_buy: bool
    retry_lost_cancel: bool


@dataclass(slots=True)
class BuyRecord:
    key: str
    item_id: str
    answers: list[Answer] = field(default_factory=list)
    lost: int = 0
    abandoned: bool = False


@dataclass(slots=True)
class CancelRecord:
    key: str
    kind: str
    planned_at: float
    first_sent_at: float | None = None
    answer: Answer | None = None
    lost: int = 0
    attempts: int = 0
    unknown: bool = False
    server_errors: list[Answer] = field(default_factory=list)

    @property
    def verdict(self) -> str:
        """accepted (200), refused (409), unknown (answer lost, not retried), or odd."""
        if self.answer is None:
            return "unknown"
        return {200: "accepted", 409: "refused"}.get(self.answer.status, "odd")


@dataclass(slots=True)
class KillRecord:
    at: float
    targets: tuple[str, ...]
    restarted_at: float
    aimed_at_cancel: bool


def make_plan(config: ChaosConfig, rng: random.Random, run_tag: str) -> list[PurchasePlan]:
    kinds = list(CANCEL_KINDS)
    weights = [CANCEL_KINDS[k] for k in kinds]
    plans = []
    for index in range(config.purchases):
        kind = rng.choices(kinds, weights)[0]
        window = config.window_seconds
        offset = {
            "none": 0.0,
            "window": -rng.uniform(0.3, max(0.35, window - 0.2)),
            "edge": -rng.uniform(0.0, 0.1),
            "boundary": rng.uniform(-0.1, 0.1),
            "double": rng.uniform(-0.1, 0.05),
            "late": rng.uniform(0.0, 1.0),
        }[kind]
        plans.append(
            PurchasePlan(
                index=index,
                key=f"k{index:04d}-{run_tag}",
                user=rng.randrange(config.users),
                item_id=SCARCE if rng.random() < config.scarce_share else PLENTY,
                start_at=rng.uniform(0.0, config.span_seconds),
                cancel_kind=kind,
                cancel_offset=offset,
                double_buy=rng.random() < 0.1,
                conflict_buy=rng.random() < 0.05,
                retry_lost_cancel=rng.random() < config.retry_lost_cancel,
            )
        )
    return plans


# --- the processes ------------------------------------------------------------------------------


class Cluster:
    """The three Procfile processes, killed and restarted on demand."""

    def __init__(self, env: dict[str, str], port: int) -> None:
        self.port = port
        self.processes: dict[str, Process] = {
            "web": web(env, port, name="chaos-web"),
            "worker": worker(env, name="chaos-worker"),
            "poller": poller(env, name="chaos-poller"),
        }
        self.lock = threading.Lock()
        self.last_restart = 0.0

    def start(self) -> None:
        for process in self.processes.values():
            process.start()
        wait_for_http(f"http://127.0.0.1:{self.port}/api/purchases/", timeout=60)

    def kill(self, targets: tuple[str, ...]) -> None:
        with self.lock:
            for name in targets:
                self.processes[name].kill()

    def restart(self, targets: tuple[str, ...]) -> None:
        with self.lock:
            for name in targets:
                if not self.processes[name].alive:
                    self.processes[name].start()
                    self.last_restart = time.time()

    def ensure_running(self) -> None:
        self.restart(tuple(name for name, p in self.processes.items() if not p.alive))

    def stop(self) -> None:
        for process in self.processes.values():
            process.kill()

    def logs(self, tail: int = 4000) -> str:
        return "\n".join(
            f"--- {name} ({p.log_path})\n{p.log()[-tail:]}" for name, p in self.processes.items()
        )


# --- the run ------------------------------------------------------------------------------------


@dataclass
class ChaosReport:
    config: ChaosConfig
    seed: int
    database: str
    plans: list[PurchasePlan]
    buys: dict[str, BuyRecord]
    cancels: list[CancelRecord]
    kills: list[KillRecord]
    conflict_answers: list[tuple[str, Answer]]
    server_errors: list[tuple[str, Answer]]
    settled_in: float | None
    duration: float
    violations: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        c = self.counts
        verdicts = Counter(cancel.verdict for cancel in self.cancels)
        by_kind: dict[str, Counter[str]] = defaultdict(Counter)
        for cancel in self.cancels:
            by_kind[cancel.kind][cancel.verdict] += 1
        latencies = sorted(
            a.latency for b in self.buys.values() for a in b.answers if a.status < 500
        )
        median = latencies[len(latencies) // 2] if latencies else 0.0
        targets = Counter(t for kill in self.kills for t in kill.targets)
        return (
            f"chaos on {self.database} (seed {self.seed}): {c.get('purchases', 0)} purchases "
            f"({c.get('confirmed', 0)} confirmed, {c.get('cancelled', 0)} cancelled, "
            f"{c.get('failed', 0)} failed out of stock), {len(self.cancels)} cancels "
            f"({verdicts['accepted']} accepted, {verdicts['refused']} refused, "
            f"{verdicts['unknown']} unknown; {c.get('cancel_answers_lost', 0)} answers lost), "
            f"{len(self.kills)} kill events ({sum(targets.values())} SIGKILLs: "
            f"{dict(sorted(targets.items()))}, {c.get('kills_aimed_at_cancels', 0)} aimed at "
            f"cancels in flight), {c.get('orders', 0)} orders, "
            f"{c.get('buy_answers_lost', 0)} buy answers lost, {c.get('key_conflicts', 0)} "
            f"key conflicts refused, {c.get('leases_lost', 0)} workers fenced out; settled "
            + (f"{self.settled_in:.1f}s" if self.settled_in is not None else "NEVER")
            + f" after the last deadline/restart; {self.duration:.0f}s in all; "
            f"{len(self.violations)} violations; cancels by kind: "
            + ", ".join(f"{k} {dict(n)}" for k, n in sorted(by_kind.items()))
            + f"; median buy latency {median * 1000:.0f} ms"
        )


def run_chaos(config: ChaosConfig, child_env: dict[str, str]) -> ChaosReport:
    """One chaos run against the database Django is connected to (see the module docstring);
    `child_env` is the children's environment, on that same database."""
    from django.db import connection

    seed = config.seed if config.seed is not None else random.randrange(2**32)
    rng = random.Random(seed)
    run_tag = uuid.uuid4().hex[:6]
    started = time.time()
    password = f"chaos-{uuid.uuid4().hex}"
    # Hashed as the children's settings (devtools.chaos.child_settings) check it.
    encoded = FastPBKDF2PasswordHasher().encode(password, FastPBKDF2PasswordHasher().salt())
    user_model = get_user_model()
    users = [
        user_model.objects.create(username=f"chaos-{run_tag}-{n}", password=encoded)
        for n in range(config.users)
    ]
    for user in users:  # one click charges a saved card (the configured provider's)
        services.save_payment_method(user, "pm_card_visa")
    auths = [basic_auth(user.get_username(), password) for user in users]
    Product.objects.update_or_create(
        item_id=PLENTY,
        defaults={"name": "Chaos widget", "price": Decimal("3.50"), "stock": config.purchases * 2},
    )
    Product.objects.update_or_create(
        item_id=SCARCE,
        defaults={"name": "Chaos scarce", "price": Decimal("7.25"), "stock": config.scarce_stock},
    )
    initial_stock = dict(Product.objects.values_list("item_id", "stock"))
    plans = make_plan(config, rng, run_tag)
    port = free_port(range(config.port, config.port + 1) if config.port else CHAOS_SERVERS)
    env = dict(
        child_env,
        ONECLICK_CANCEL_WINDOW_SECONDS=str(config.window_seconds),
        # Purchases also stay pending while processes are down, retried after every kill.
        **NO_RATE_LIMITS,
        Q_CLUSTER_NAME=config.cluster_name or f"chaos-{run_tag}",
        Q_WORKERS=str(config.q_workers),
        WEB_CONCURRENCY="2",
        WEB_THREADS="4",
        DJANGO_SETTINGS_MODULE="devtools.chaos.child_settings",
    )
    cluster = Cluster(env, port)
    client = Client(port, config.request_timeout)
    state = _Shared()
    try:
        cluster.start()
        load_started = time.time()
        kill_schedule = _kill_schedule(config, rng)
        killer = threading.Thread(
            target=_killer, args=(cluster, kill_schedule, load_started, state), daemon=True
        )
        threads = [
            threading.Thread(
                target=_purchase,
                args=(plan, client, auths[plan.user], load_started, config, state),
                daemon=True,
            )
            for plan in plans
        ]
        killer.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=config.give_up_seconds * 3)
        killer.join(timeout=120)
        cluster.ensure_running()
        settled_in = _settle(cluster, users, config)
        report = ChaosReport(
            config=config,
            seed=seed,
            database=connection.vendor,
            plans=plans,
            buys=state.buys,
            cancels=state.cancels,
            kills=state.kills,
            conflict_answers=state.conflicts,
            server_errors=state.server_errors,
            settled_in=settled_in,
            duration=0.0,
        )
        check(report, users, initial_stock)
        # Invariant 6 at work: a worker that outlived its lease was fenced out, never wrote.
        report.counts["leases_lost"] = cluster.processes["worker"].log().count("lease lost")
        if report.violations:
            report.violations.append("process logs (tails):\n" + cluster.logs())
        report.duration = time.time() - started
        return report
    finally:
        cluster.stop()


class _Shared:
    """What the client threads and the killer record, under one lock."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.buys: dict[str, BuyRecord] = {}
        self.cancels: list[CancelRecord] = []
        self.kills: list[KillRecord] = []
        self.conflicts: list[tuple[str, Answer]] = []
        self.server_errors: list[tuple[str, Answer]] = []
        # Wall times at which cancels are about to be sent, and how many cancel requests are
        # on the wire right now, for the killer to aim at.
        self.upcoming_cancels: list[float] = []
        self.cancels_in_flight = 0


def _sleep_until(moment: float) -> None:
    delay = moment - time.time()
    if delay > 0:
        time.sleep(delay)


def _retrying(
    client: Client, method: str, path: str, auth: str, body: Any, give_up: float, state: _Shared
) -> tuple[Answer | None, int]:
    """Send until answered with a non-5xx status (same request, so the same idempotency key);
    returns the answer (None if abandoned) and how many answers were lost on the way."""
    lost = 0
    while time.time() < give_up:
        try:
            answer = client.send(method, path, auth, body)
        except NotSent:
            time.sleep(0.1)
            continue
        except Lost:
            lost += 1
            time.sleep(0.1)
            continue
        if answer.status >= 500:
            with state.lock:
                state.server_errors.append((f"{method} {path}", answer))
            time.sleep(0.2)
            continue
        return answer, lost
    return None, lost


def _purchase(
    plan: PurchasePlan,
    client: Client,
    auth: str,
    load_started: float,
    config: ChaosConfig,
    state: _Shared,
) -> None:
    _sleep_until(load_started + plan.start_at)
    record = BuyRecord(plan.key, plan.item_id)
    with state.lock:
        state.buys[plan.key] = record
    give_up = time.time() + config.give_up_seconds
    path = f"/api/buy/{plan.key}"

    def buy() -> None:
        answer, lost = _retrying(
            client, "POST", path, auth, {"item_id": plan.item_id}, give_up, state
        )
        with state.lock:
            record.lost += lost
            if answer is None:
                record.abandoned = True
            else:
                record.answers.append(answer)

    twin = threading.Thread(target=buy, daemon=True) if plan.double_buy else None
    if twin:
        twin.start()
    buy()
    if twin:
        twin.join()
    answered = [a for a in record.answers if a.status in (200, 202)]
    if not answered:
        return
    if plan.conflict_buy:
        other = SCARCE if plan.item_id == PLENTY else PLENTY
        answer, _ = _retrying(client, "POST", path, auth, {"item_id": other}, give_up, state)
        if answer is not None:
            with state.lock:
                state.conflicts.append((plan.key, answer))
    if plan.cancel_kind == "none":
        return
    deadlines = [a.body["cancel_until"] for a in answered if a.body.get("cancel_until")]
    deadline = parse_time(deadlines[0]).timestamp() if deadlines else time.time()
    moment = deadline + plan.cancel_offset
    if plan.cancel_kind in ("boundary", "double"):
        moment -= min(a.latency for a in answered)
    with state.lock:
        state.upcoming_cancels.append(moment)
    senders = 2 if plan.cancel_kind == "double" else 1
    records = [CancelRecord(plan.key, plan.cancel_kind, moment) for _ in range(senders)]
    with state.lock:
        state.cancels.extend(records)
    threads = [
        threading.Thread(target=_cancel, args=(r, plan, client, auth, config, state), daemon=True)
        for r in records[1:]
    ]
    _sleep_until(moment)
    for thread in threads:
        thread.start()
    _cancel(records[0], plan, client, auth, config, state)
    for thread in threads:
        thread.join()


def _cancel(
    record: CancelRecord,
    plan: PurchasePlan,
    client: Client,
    auth: str,
    config: ChaosConfig,
    state: _Shared,
) -> None:
    path = f"/api/cancel/{plan.key}"
    give_up = time.time() + config.give_up_seconds
    while time.time() < give_up:
        record.attempts += 1
        if record.first_sent_at is None:
            record.first_sent_at = time.time()
        on_wire = False

        def mark_on_wire() -> None:
            nonlocal on_wire
            on_wire = True
            with state.lock:
                state.cancels_in_flight += 1

        try:
            answer = client.send("POST", path, auth, on_wire=mark_on_wire)
        except NotSent:
            time.sleep(0.1)
            continue
        except Lost:
            record.lost += 1
            if not plan.retry_lost_cancel:
                record.unknown = True
                return
            time.sleep(0.1)
            continue
        finally:
            if on_wire:
                with state.lock:
                    state.cancels_in_flight -= 1
        if answer.status >= 500:
            record.server_errors.append(answer)
            with state.lock:
                state.server_errors.append((f"POST {path}", answer))
            time.sleep(0.2)
            continue
        record.answer = answer
        return
    record.unknown = True


def _kill_schedule(config: ChaosConfig, rng: random.Random) -> list[tuple[float, tuple[str, ...]]]:
    """(seconds after the load starts, targets): every process at least once, one event that
    kills all three, the rest random; spread over the load."""
    events = max(5, config.kills)
    targets: list[tuple[str, ...]] = [
        ("web",),
        ("worker",),
        ("poller",),
        ("web", "worker", "poller"),
    ]
    choices: list[tuple[str, ...]] = [("web",), ("worker",), ("poller",), ("web", "worker")]
    while len(targets) < events:
        targets.append(rng.choice(choices))
    rng.shuffle(targets)
    end = config.span_seconds + config.window_seconds
    times = sorted(rng.uniform(1.0, end) for _ in targets)
    return list(zip(times, targets, strict=True))


def _killer(
    cluster: Cluster,
    schedule: list[tuple[float, tuple[str, ...]]],
    load_started: float,
    state: _Shared,
) -> None:
    rng = random.Random()
    for offset, targets in schedule:
        _sleep_until(load_started + offset)
        aimed = False
        if "web" in targets and rng.random() < 0.8:
            # Aim at a cancel about to be sent, so that its request dies in flight.
            now = time.time()
            with state.lock:
                soon = sorted(t for t in state.upcoming_cancels if now <= t <= now + 3.0)
            if soon:
                _sleep_until(soon[0] - 0.01)
                aimed = _wait_for_cancel_in_flight(state, timeout=0.5)
        killed_at = time.time()
        cluster.kill(targets)
        time.sleep(rng.uniform(0.2, 1.5))
        cluster.restart(targets)
        with state.lock:
            state.kills.append(KillRecord(killed_at, targets, time.time(), aimed))


def _wait_for_cancel_in_flight(state: _Shared, timeout: float) -> bool:
    give_up = time.time() + timeout
    while time.time() < give_up:
        with state.lock:
            if state.cancels_in_flight:
                return True
        time.sleep(0.001)
    return False


def _purchase_runs(users: list[Any]) -> Any:
    return WorkflowRun.objects.filter(purchase__user__in=users)


def _settle(cluster: Cluster, users: list[Any], config: ChaosConfig) -> float | None:
    """Wait for every purchase's run to finish; the seconds it took after max(last deadline,
    last restart), or None if some had not finished `settle_seconds` after that."""
    last_deadline = max(
        (p.cancel_until.timestamp() for p in Purchase.objects.filter(user__in=users)),
        default=time.time(),
    )
    origin = max(last_deadline, cluster.last_restart)
    limit = origin + config.settle_seconds
    while True:
        if not _purchase_runs(users).filter(status__in=ACTIVE_STATUSES).exists():
            return max(0.0, time.time() - origin)
        if time.time() > limit:
            return None
        time.sleep(0.25)


# --- the invariants -----------------------------------------------------------------------------


def check(report: ChaosReport, users: list[Any], initial_stock: dict[str, int]) -> None:
    """Append to `report.violations` every way the run broke DESIGN.md §4, and fill the counts."""
    v = report.violations
    purchases = list(
        Purchase.objects.filter(user__in=users).select_related("run", "product", "user")
    )
    by_key = {p.key: p for p in purchases}
    orders = {o.purchase_id: o for o in Order.objects.filter(purchase__in=purchases)}
    checkpoints: dict[str, dict[int, StepCheckpoint]] = defaultdict(dict)
    for cp in StepCheckpoint.objects.filter(run__purchase__in=purchases):
        checkpoints[cp.run_id][cp.position] = cp
    accepted_signals: dict[str, list[WorkflowSignal]] = defaultdict(list)
    for signal in WorkflowSignal.objects.filter(
        run__purchase__in=purchases, name=CANCEL_SIGNAL, accepted=True
    ):
        accepted_signals[signal.run_id].append(signal)
    cancels_by_key: dict[str, list[CancelRecord]] = defaultdict(list)
    for cancel in report.cancels:
        cancels_by_key[cancel.key].append(cancel)

    # 7. Starts with the same key give one purchase and one run.
    duplicates = (
        Purchase.objects.filter(user__in=users)
        .values("user", "key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
    )
    for row in duplicates:
        v.append(f"I7: {row['n']} purchases for user {row['user']} key {row['key']}")
    for plan in report.plans:
        record = report.buys.get(plan.key)
        if record is None:
            v.append(f"driver: buy {plan.key} never ran")
            continue
        created = [a for a in record.answers if a.status == 202]
        if len(created) > 1:
            v.append(f"I7: {plan.key} answered 202 Created {len(created)} times")
        odd = [a for a in record.answers if a.status not in (200, 202)]
        if odd:
            v.append(f"buy {plan.key}: unexpected answers {[(a.status, a.body) for a in odd]}")
        purchase = by_key.get(plan.key)
        if record.answers and purchase is None:
            v.append(f"I7: buy {plan.key} was answered but no purchase exists")
            continue
        if purchase is None:
            continue
        expected_run = run_id_for(purchase.user_id, plan.key)
        if purchase.run_id != expected_run:
            v.append(f"I7: purchase {plan.key} has run {purchase.run_id}, not {expected_run}")
        for answer in record.answers:
            # 4. The deadline is fixed at acceptance: no retry of the buy moved it.
            shown = answer.body.get("cancel_until") if isinstance(answer.body, dict) else None
            if shown and parse_time(shown) != purchase.cancel_until:
                v.append(
                    f"I4: buy {plan.key} answered cancel_until {shown}, "
                    f"stored {purchase.cancel_until.isoformat()}"
                )
    for key, answer in report.conflict_answers:
        if answer.status != 409:
            v.append(f"I7: same key {key} with another item answered {answer.status}, not 409")
    run_ids = {p.run_id for p in purchases}
    if set(_purchase_runs(users).values_list("id", flat=True)) != run_ids:
        v.append("I7: purchase runs and purchases do not match one to one")

    states: Counter[str] = Counter()
    for purchase in purchases:
        run = purchase.run
        key = purchase.key
        # 1 and 5. Terminal, in exactly one state, without anybody's help.
        if run.status in ACTIVE_STATUSES:
            v.append(f"I5: {key} not terminal: run {run.status}, lease {run.lease_owner!r}")
            continue
        if run.status != RunStatus.SUCCEEDED:
            v.append(f"I1: {key} run ended {run.status}: {run.error}")
            continue
        state = run.result.get("state")
        states[state] += 1
        if state not in (CONFIRMED, CANCELLED, FAILED):
            v.append(f"I1: {key} ended in unknown state {state!r}")
        if state == FAILED and run.result.get("reason") != "out_of_stock":
            v.append(f"I1: {key} FAILED for {run.result.get('reason')!r}")
        # 2. Answered cancels: 200 ends CANCELLED, 409 ends CONFIRMED (or FAILED out of stock).
        for cancel in cancels_by_key.get(key, []):
            verdict = cancel.verdict
            body = cancel.answer.body if cancel.answer else None
            if verdict == "accepted" and (state != CANCELLED or body.get("cancelled") is not True):
                v.append(f"I2: {key} cancel ({cancel.kind}) answered 200 but ended {state}")
            elif verdict == "refused" and (
                state not in (CONFIRMED, FAILED) or body.get("cancelled") is not False
            ):
                v.append(f"I2: {key} cancel ({cancel.kind}) answered 409 but ended {state}")
            elif verdict == "odd":
                v.append(f"I2: {key} cancel answered {cancel.answer.status}: {body}")
        signals = accepted_signals.get(run.id, [])
        if (state == CANCELLED) != bool(signals):
            v.append(f"I2: {key} ended {state} with {len(signals)} accepted cancel signals")
        if state == CANCELLED and not cancels_by_key.get(key):
            v.append(f"I2: {key} ended CANCELLED but nobody cancelled it")
        # 3. Exactly one order per confirmed purchase, none otherwise.
        order = orders.get(purchase.pk)
        if state == CONFIRMED:
            if order is None:
                v.append(f"I3: {key} CONFIRMED without an order")
            elif order.order_number != run.result.get("order_id"):
                v.append(f"I3: {key} result names {run.result.get('order_id')}, order is {order}")
            elif order.price_paid != purchase.unit_price:
                v.append(f"I3: {key} paid {order.price_paid}, price was {purchase.unit_price}")
        elif order is not None:
            v.append(f"I3: {key} ended {state} but has order {order}")
        # 4. The deadline is the one fixed at acceptance, and nothing was decided before it.
        deadline = purchase.cancel_until
        wait = checkpoints[run.id].get(0)
        if wait is None or wait.deadline != deadline:
            v.append(f"I4: {key} wait deadline {wait and wait.deadline} != cancel_until {deadline}")
        if parse_time(run.args[1]) != deadline:
            v.append(f"I4: {key} run args deadline {run.args[1]} != cancel_until {deadline}")
        if state in (CONFIRMED, FAILED):
            checkout = checkpoints[run.id].get(1)
            if wait is None or not (wait.result or {}).get("timed_out"):
                v.append(f"I4: {key} ended {state} without its wait timing out")
            elif wait.finished_at < deadline:
                v.append(f"I4: {key} wait timed out at {wait.finished_at}, before {deadline}")
            if checkout is None or checkout.finished_at < deadline:
                v.append(f"I4: {key} checkout at {checkout and checkout.finished_at} < {deadline}")
            if order is not None and order.created_at < deadline:
                v.append(f"I4: {key} ordered at {order.created_at}, before {deadline}")
        if state == CANCELLED:
            consumed = [s for s in signals if s.consumed_position == 0]
            if len(consumed) != 1 or wait is None or wait.result.get("signal_id") != consumed[0].pk:
                v.append(f"I2: {key} CANCELLED but its wait did not consume one accepted cancel")

    # 3. Stock arithmetic is exact and never negative.
    for item_id, final in Product.objects.filter(item_id__in=[PLENTY, SCARCE]).values_list(
        "item_id", "stock"
    ):
        sold = Order.objects.filter(
            purchase__in=purchases, purchase__product__item_id=item_id
        ).count()
        if final < 0 or initial_stock[item_id] - sold != final:
            v.append(f"I3: {item_id} stock {initial_stock[item_id]} - {sold} orders != {final}")
        out = any(
            p.product.item_id == item_id
            and p.run.status == RunStatus.SUCCEEDED
            and p.run.result.get("state") == FAILED
            for p in purchases
        )
        if out and final != 0:
            v.append(f"I3: {item_id} ran out of stock for a purchase but {final} are left")

    # No run anywhere is left active (the poller and workers recovered all of them).
    stuck = WorkflowRun.objects.filter(status__in=ACTIVE_STATUSES).count()
    if stuck:
        v.append(f"I5: {stuck} workflow runs still active")
    if report.settled_in is None:
        v.append(
            f"I5: purchases not all terminal {report.config.settle_seconds}s after the last "
            f"deadline and restart"
        )
    for where, answer in report.server_errors:
        v.append(f"5xx: {where} answered {answer.status}: {answer.body}")
    if len(report.kills) < max(5, report.config.kills):
        v.append(f"driver: only {len(report.kills)} kill events happened")

    report.counts = {
        "purchases": len(purchases),
        "confirmed": states[CONFIRMED],
        "cancelled": states[CANCELLED],
        "failed": states[FAILED],
        "orders": len(orders),
        "cancel_answers_lost": sum(c.lost for c in report.cancels),
        "buy_answers_lost": sum(b.lost for b in report.buys.values()),
        "kills_aimed_at_cancels": sum(k.aimed_at_cancel for k in report.kills),
        "key_conflicts": sum(a.status == 409 for _, a in report.conflict_answers),
    }
