"""1,000 revocations while calls flow (``test_revocation_cluster``): the plan, the threads that
carry it out, and the model of what every guard must answer afterwards.

- **The plan** is drawn from a seeded generator: jti revocations through the RFC 7009
  endpoint (via nginx, so either node writes) and straight into the registry, jtis of no token,
  revocation attempts with another client's credentials (which must change nothing), client
  cutoffs (``revoke_client_tokens``; a disable followed by an enable) and product cutoffs (an
  unsubscription followed by a re-subscription). Cutoffs touch only some clients; the others
  ("bystanders") lose tokens only one by one, so live tokens remain to be checked.
- **Writers**: several threads, each with its own event loop, registry connection pool and
  HTTP client, take operations from two queues (jti revocations; cutoffs), so the nodes and
  the test write revocations to PostgreSQL concurrently (the registry's ``seq``-order lock).
  Cutoffs of one client come as an operator makes them: never two at once, alternately 0.3 s
  and 1.7 s apart. Two in one second move the next cutoff, and the ``iat`` of the client's
  next tokens, a second ahead of the clock (docs/registry.md, "Two changes in one second");
  the pauses keep that within the verification leeway, while same-second pairs still occur.
- **Load**: an issuer keeps adding tokens through nginx and callers keep sending guarded calls
  with random tokens to the three guards, recording when each call was sent and its answer.
- **The model** is built from what the writers did (the ``not_before`` each cutoff got is the
  value the registry returned): a token is revoked when its ``jti`` was revoked or its ``iat``
  is below a cutoff of its client; a product is closed to it when its ``iat`` is below a
  product cutoff, or it never carried the product.
"""

from __future__ import annotations

import asyncio
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
from revocation_cluster_kit import BOTH, PRODUCTS, REVOKE, Cluster, Token, answer, revoke_request

from kit.clients import Client
from taap.server.registry.database import parse_database_url
from taap.server.registry.pepper import load_pepper
from taap.server.registry.port import Registry
from taap.server.registry.sql import open_registry

__all__ = ["PLAN", "Call", "Done", "Load", "Model", "Op", "plan"]

#: how many operations of each kind; 1,000 in all
PLAN = {
    "endpoint": 300,  # revoke the owner's token through the RFC 7009 endpoint
    "registry": 300,  # revoke_tokens(owner, [jti], expires_at=exp)
    "unknown": 180,  # revoke_tokens(client, [a jti no token has])
    "foreign": 100,  # the endpoint, with another client's credentials: nothing happens
    "cutoff": 40,  # revoke_client_tokens
    "disable": 20,  # set_status disabled, then active
    "unsubscribe": 60,  # unsubscribe from one product, then subscribe again
}
CUTOFFS = ("cutoff", "disable", "unsubscribe")
#: the pauses between two cutoffs of one client, in turn (s)
GAPS = (0.3, 1.7)
#: how long a client stays disabled, or without the product it was unsubscribed from (s)
HOLD = 0.3
REVOKED = (401, "token_revoked")
UNSUBSCRIBED = (403, "not_subscribed")


@dataclass(frozen=True)
class Op:
    kind: str
    client: str  # the client of a cutoff or of an unknown jti
    product: str
    pick: float  # which token of the pool, as a fraction of its length when the op runs


def plan(seed: int, cut: list[str], everyone: list[str]) -> list[Op]:
    """The operations, in order: cutoffs for the ``cut`` clients only."""
    rng = random.Random(seed)
    ops = [
        Op(kind, rng.choice(cut if kind in CUTOFFS else everyone),
           rng.choice(BOTH), rng.random())
        for kind, count in PLAN.items()
        for _ in range(count)
    ]  # fmt: skip
    rng.shuffle(ops)
    return ops


@dataclass(frozen=True)
class Done:
    """An operation as carried out: what it revoked, and when it had committed."""

    op: Op
    client: str  # whose revocation it is (the token's owner for jti kinds)
    done: float  # monotonic; the change had committed by then
    jtis: tuple[str, ...] = ()  # jtis revoked for ``client``
    not_before: int | None = None  # of a cutoff
    refused: str | None = None  # the endpoint refused the revoker (a disabled client)
    started: float = 0.0  # monotonic, a cutoff's: the registry call had not begun before


@dataclass(frozen=True)
class Call:
    token: Token
    guard: str
    product: str
    sent: float  # monotonic
    got: tuple[int, str]


@dataclass
class Load:
    """The pool of tokens, the threads, and what they recorded."""

    cluster: Cluster
    clients: dict[str, Client]
    pool: list[Token]
    ops: list[Op]
    writers: int = 4  # for jti revocations
    cutoff_writers: int = 10
    callers: int = 3
    most_tokens: int = 600  # the issuer adds at most this many
    done: list[Done] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    issue_refusals: list[tuple[int, str]] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)
    #: per client: held while one of its cutoffs is written; when the next may start; how many
    gates: dict[str, threading.Lock] = field(default_factory=dict)
    next_cutoff: dict[str, float] = field(default_factory=dict)
    cutoffs_made: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.gates = {name: threading.Lock() for name in self.clients}

    def token_at(self, pick: float) -> Token:
        with self.lock:
            return self.pool[int(pick * len(self.pool))]

    def run(self) -> None:
        jtis: queue.Queue[Op] = queue.Queue()
        cutoffs: queue.Queue[Op] = queue.Queue()
        for op in self.ops:
            (cutoffs if op.kind in CUTOFFS else jtis).put(op)
        background = [threading.Thread(target=self._guarded, args=(self._issue, 0))]
        background += [
            threading.Thread(target=self._guarded, args=(self._call, i + 1))
            for i in range(self.callers)
        ]
        writers = [
            threading.Thread(target=self._guarded, args=(self._write, work))
            for work, count in ((jtis, self.writers), (cutoffs, self.cutoff_writers))
            for _ in range(count)
        ]
        for thread in background + writers:
            thread.start()
        for thread in writers:
            thread.join(300)
        time.sleep(0.5)  # calls keep flowing a moment after the last change
        self.stop.set()
        for thread in background:
            thread.join(60)
        assert not any(t.is_alive() for t in background + writers), "a load thread hangs"
        assert not self.errors, self.errors

    def _guarded(self, target: Callable[..., None], arg: object) -> None:
        try:
            target(arg)
        except BaseException as exc:  # surfaced by run(): a crash must fail the test
            self.errors.append(exc)
            self.stop.set()

    # -- the issuer and the callers -----------------------------------------------------------
    def _issue(self, seed: int) -> None:
        rng = random.Random(seed)
        names = sorted(self.clients)
        issued = 0
        with httpx.Client(timeout=20.0) as http:
            while not self.stop.is_set() and issued < self.most_tokens:
                name = rng.choice(names)
                client = self.clients[name]
                headers = client.token_headers("/oauth2/v2/tokens")
                asked = time.monotonic()
                response = http.post(self.cluster.url + "/oauth2/v2/tokens", headers=headers)
                if response.status_code == 200:
                    access = response.json()["access_token"]
                    token = Token.of(name, client, access, asked, time.monotonic())
                    with self.lock:
                        self.pool.append(token)
                    issued += 1
                else:  # a client disabled or without products for a moment
                    self.issue_refusals.append(answer(response))
                time.sleep(0.03)

    def _call(self, seed: int) -> None:
        rng = random.Random(seed)
        guards = sorted(self.cluster.guards)
        with httpx.Client(timeout=20.0) as http:
            while not self.stop.is_set():
                token = self.token_at(rng.random() ** 0.5)  # newer tokens more often
                guard, product = rng.choice(guards), rng.choice(BOTH)
                sent = time.monotonic()
                got = self.cluster.call(token, guard, product, http)
                with self.lock:
                    self.calls.append(Call(token, guard, product, sent, got))

    # -- the writers --------------------------------------------------------------------------
    def _write(self, work: queue.Queue[Op]) -> None:
        asyncio.run(self._write_all(work))

    async def _write_all(self, work: queue.Queue[Op]) -> None:
        cluster = self.cluster
        database = parse_database_url(cluster.database_url)
        pepper = load_pepper(database, cluster.env["TAAP_PEPPER"])
        registry = await open_registry(database, pepper=pepper, migrate=False)
        try:
            async with httpx.AsyncClient(timeout=20.0) as http:
                while not self.stop.is_set():
                    try:
                        op = work.get_nowait()
                    except queue.Empty:
                        return
                    done = await self._one(op, registry, http)
                    with self.lock:
                        self.done.append(done)
        finally:
            await registry.close()

    async def _one(self, op: Op, registry: Registry, http: httpx.AsyncClient) -> Done:
        names = sorted(self.clients)
        if op.kind in ("endpoint", "registry", "foreign"):
            token = self.token_at(op.pick)
            owner = self.clients[token.owner]
            if op.kind == "registry":
                await registry.revoke_tokens(owner.client_id, [token.jti], expires_at=token.exp)
                return Done(op, token.owner, time.monotonic(), (token.jti,))
            by = token.owner
            if op.kind == "foreign":
                by = names[(names.index(token.owner) + 1) % len(names)]
            headers, body = revoke_request(self.clients[by], token.access)
            response = await http.post(self.cluster.url + REVOKE, headers=headers, content=body)
            now = time.monotonic()
            if response.status_code == 401:  # the revoker was disabled at that moment
                return Done(op, token.owner, now, refused=answer(response)[1])
            assert (response.status_code, response.json()) == (200, {}), response.text
            jtis = (token.jti, token.id_jti) if op.kind == "endpoint" else ()
            return Done(op, token.owner, now, jtis)
        client_id = self.clients[op.client].client_id
        if op.kind == "unknown":
            jti = str(uuid.uuid4())
            await registry.revoke_tokens(client_id, [jti])
            return Done(op, op.client, time.monotonic(), (jti,))
        # One writer (thread, with a loop of its own) per op: blocking here pauses no other op.
        with self.gates[op.client]:
            time.sleep(max(0.0, self.next_cutoff.get(op.client, 0.0) - time.monotonic()))
            done = await self._cutoff(op, registry, client_id)
            made = self.cutoffs_made.get(op.client, 0)
            self.cutoffs_made[op.client] = made + 1
            self.next_cutoff[op.client] = done.done + GAPS[made % len(GAPS)]
        return done

    async def _cutoff(self, op: Op, registry: Registry, client_id: str) -> Done:
        started = time.monotonic()
        if op.kind == "cutoff":
            not_before = await registry.revoke_client_tokens(client_id)
            return Done(op, op.client, time.monotonic(), not_before=not_before, started=started)
        if op.kind == "disable":
            record = await registry.set_status(client_id, "disabled")
        else:
            record = await registry.unsubscribe(client_id, op.product)
        done = time.monotonic()
        await asyncio.sleep(HOLD)
        if op.kind == "disable":
            await registry.set_status(client_id, "active")
        else:
            await registry.subscribe(client_id, op.product)
        # The new cutoff is the client's newest (docs/registry.md, "Revocations").
        return Done(op, op.client, done, not_before=record.tokens_not_before, started=started)


class Model:
    """What every guard must answer, from what the writers did."""

    def __init__(self, done: list[Done]) -> None:
        self.done = done
        self.jtis: dict[tuple[str, str], float] = {}  # (owner, jti) -> when revoked
        self.cutoffs: dict[str, list[tuple[int, float]]] = {}  # owner -> (not_before, when)
        self.products: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for d in done:
            for jti in d.jtis:
                key = (d.client, jti)
                self.jtis[key] = min(self.jtis.get(key, d.done), d.done)
            if d.not_before is not None and d.op.kind in ("cutoff", "disable"):
                self.cutoffs.setdefault(d.client, []).append((d.not_before, d.done))
            if d.not_before is not None and d.op.kind == "unsubscribe":
                key = (d.client, d.op.product)
                self.products.setdefault(key, []).append((d.not_before, d.done))

    def rows(self) -> list[tuple[str, str, str, str, int]]:
        """The registry rows these changes must have written, sorted: ``(kind, owner, jti,
        api_id, not_before)``, ``""``/0 where a row has none; a jti once however often revoked."""
        tokens = {("token", owner, jti, "", 0) for owner, jti in self.jtis}
        cuts = [("client", c, "", "", nb) for c, found in self.cutoffs.items() for nb, _ in found]
        products = [
            ("product", c, "", p, nb) for (c, p), found in self.products.items() for nb, _ in found
        ]
        return sorted([*tokens, *cuts, *products])

    def misplaced(self, tokens: list[Token]) -> list[str]:
        """Tokens a cutoff of their client ought to catch and does not (issued before the
        change began), or catches and ought not to (asked for after it had committed)."""
        wrong: list[str] = []
        for d in self.done:
            if d.not_before is None:
                continue
            for t in tokens:
                if t.owner != d.client or (
                    d.op.kind == "unsubscribe" and d.op.product not in t.apis
                ):
                    continue
                if t.received < d.started and t.iat >= d.not_before:
                    wrong.append(f"{d.op.kind} {d.not_before} missed {t.jti} (iat {t.iat})")
                if t.asked > d.done and t.iat < d.not_before:
                    wrong.append(f"{d.op.kind} {d.not_before} caught {t.jti} (iat {t.iat})")
        return wrong

    def revoked_at(self, token: Token) -> float | None:
        """When the first change that revokes ``token`` had committed (``None``: it is live)."""
        times = [when for nb, when in self.cutoffs.get(token.owner, []) if token.iat < nb]
        if (token.owner, token.jti) in self.jtis:
            times.append(self.jtis[(token.owner, token.jti)])
        return min(times, default=None)

    def closed_at(self, token: Token, product: str) -> float | None:
        """When ``product`` was first closed to ``token`` (``-inf``: it never carried it)."""
        if product not in token.apis:
            return float("-inf")
        cuts = self.products.get((token.owner, product), [])
        return min((when for nb, when in cuts if token.iat < nb), default=None)

    def expected(self, token: Token, product: str) -> tuple[int, str]:
        if self.revoked_at(token) is not None:
            return REVOKED
        if self.closed_at(token, product) is not None:
            return UNSUBSCRIBED
        return PRODUCTS[product][3], ""

    def apis(self, token: Token) -> list[str] | None:
        """Introspection's ``apis`` (``None``: inactive)."""
        if self.revoked_at(token) is not None:
            return None
        return [p for p in token.apis if self.closed_at(token, p) is None]

    def wrong_during_load(self, call: Call, max_age: float) -> str | None:
        """Why a call answered during the load contradicts the model, if it does.

        A refusal must be one the model makes in the end (changes are never undone); an
        acceptance must have been sent no later than ``max_age`` after the change that ends
        it committed.
        """
        token, product = call.token, call.product
        revoked, closed = self.revoked_at(token), self.closed_at(token, product)
        if call.got == REVOKED:
            return None if revoked is not None else "refused as revoked, never revoked"
        if call.got == UNSUBSCRIBED:
            return None if closed is not None else "refused as unsubscribed, never closed"
        if call.got != (PRODUCTS[product][3], ""):
            return f"unexpected answer {call.got}"
        ended = min((t for t in (revoked, closed) if t is not None), default=None)
        if ended is not None and call.sent > ended + max_age:
            return f"accepted {call.sent - ended:.2f} s after the change"
        return None
