"""Live authorization across real processes (docs/guard.md, "Live authorization"): two
``taap serve --with-sample-apis`` nodes on PostgreSQL and Redis behind nginx, plus a separate
``taap sample-api`` sharing the Redis (``revocation_cluster_kit``).

- An operator's "no" (the RFC 7009 endpoint on node A, ``taap clients revoke-tokens``,
  ``disable``, ``unsubscribe`` from the CLI) is refused by every guard within
  ``TAAP_REVOCATION_MAX_AGE``: no call sent later than the bound after the change is accepted,
  and polling finds the refusal no later than the bound plus a margin.
- Introspection's ``active`` and ``apis`` say what every guard decides, for a token in each
  state.
- 1,000 random revocations while calls flow through the three guards lose none and refuse
  nothing wrongly (``revocation_load``).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from revocation_cluster_kit import (
    BOTH,
    MAX_AGE,
    PRODUCTS,
    Cluster,
    Token,
    cluster_running,
)
from revocation_load import Load, Model, plan

from kit.postgres import temporary_database
from taap.core import PrivateKey, generate_private_key
from taap.core.revocation import RevocationEntry, entries_to_wire
from taap.server.registry.port import Registry

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis, pytest.mark.nginx]

#: how late after the bound polling may first see the refusal (a poll every 50 ms, on a
#: machine shared with other work)
MARGIN = 1.0
REVOKED = (401, "token_revoked")
UNSUBSCRIBED = (403, "not_subscribed")


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory, nginx_bin: str, postgres_url: str, redis_url: str
) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("revocation-cluster")
    with (
        temporary_database(postgres_url, "taap_revcl") as database_url,
        cluster_running(folder, nginx_bin, database_url, redis_url) as running,
    ):
        yield running
        text = running.logs()
        assert "Traceback" not in text, text[-3000:]


@pytest.fixture(scope="module")
def keys() -> list[PrivateKey]:
    return [generate_private_key(2048) for _ in range(4)]


def accepted(product: str) -> tuple[int, str]:
    return PRODUCTS[product][3], ""


# -- an operator's change reaches every guard within the bound --------------------------------
def _poll_until_refused(
    cluster: Cluster, token: Token, product: str, refusal: tuple[int, str], done: float
) -> tuple[dict[str, float], list[tuple[str, float]]]:
    """Call every guard in turn until each refuses; the delay (send time after ``done``) of
    each guard's first refusal, and every acceptance seen on the way."""
    first: dict[str, float] = {}
    accepts: list[tuple[str, float]] = []
    while len(first) < len(cluster.guards):
        for guard in cluster.guards:
            if guard in first:
                continue
            sent = time.monotonic() - done
            got = cluster.call(token, guard, product)
            if got == refusal:
                first[guard] = sent
            elif got == accepted(product):
                accepts.append((guard, sent))
            else:
                raise AssertionError(f"{guard}: {got} at {sent:.2f} s")
        if time.monotonic() - done > MAX_AGE + 10 * MARGIN:
            break  # the assertions after the poll say what went wrong
        time.sleep(0.05)
    return first, accepts


CHANGES = {
    "revocation endpoint on node A": REVOKED,
    "taap clients revoke-tokens --jti": REVOKED,
    "taap clients revoke-tokens": REVOKED,
    "taap clients disable": REVOKED,
    "taap clients unsubscribe": UNSUBSCRIBED,
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_change_reaches_every_guard_within_the_bound(
    cluster: Cluster, keys: list[PrivateKey], change: str
) -> None:
    name = f"operator-{list(CHANGES).index(change)}"
    client = cluster.register([name], keys)[name]
    token, other = cluster.token(name, client), cluster.token(name, client)
    for guard in cluster.guards:  # every guard knows the token and holds a fresh state
        for product in BOTH:
            assert cluster.call(token, guard, product) == accepted(product), (guard, product)

    if change == "revocation endpoint on node A":
        response = cluster.revoke(client, token.access, base=cluster.nodes[0].base)
        assert (response.status_code, response.json()) == (200, {})
    elif change == "taap clients revoke-tokens --jti":
        cluster.taap("clients", "revoke-tokens", client.client_id, "--jti", token.jti)
    elif change == "taap clients revoke-tokens":
        cluster.taap("clients", "revoke-tokens", client.client_id)
    elif change == "taap clients disable":
        cluster.taap("clients", "disable", client.client_id)
    else:
        cluster.taap("clients", "unsubscribe", client.client_id, "connectivity")
    done = time.monotonic()  # the change has committed by now

    refusal = CHANGES[change]
    first, accepts = _poll_until_refused(cluster, token, "connectivity", refusal, done)
    print(f"\n{change}: first refusal after (s)", {g: round(t, 2) for g, t in first.items()})
    # The bound: a call that reaches a guard later than MAX_AGE after the change is refused;
    # a call sent that late arrives later still.
    assert all(sent <= MAX_AGE for _, sent in accepts), accepts
    assert set(first) == set(cluster.guards), (first, accepts[-3:])
    assert all(delay <= MAX_AGE + MARGIN for delay in first.values()), first

    # Once refused, refused on every guard; what the change does not cover still works.
    for guard in cluster.guards:
        assert cluster.call(token, guard, "connectivity") == refusal, guard
        if change == "taap clients unsubscribe":
            assert cluster.call(token, guard, "sms-notification") == accepted("sms-notification")
            assert cluster.call(other, guard, "connectivity") == UNSUBSCRIBED
        elif change.endswith(("on node A", "--jti")):
            assert cluster.call(token, guard, "sms-notification") == REVOKED
            assert cluster.call(other, guard, "connectivity") == accepted("connectivity")
        else:
            assert cluster.call(other, guard, "sms-notification") == REVOKED
    if change == "taap clients revoke-tokens":  # a token issued after the cutoff is live
        fresh = cluster.token(name, client)
        assert all(cluster.call(fresh, g, "connectivity") == (200, "") for g in cluster.guards)
    if change == "taap clients disable":
        headers = client.token_headers("/oauth2/v2/tokens")
        refused = cluster.http.post(cluster.url + "/oauth2/v2/tokens", headers=headers)
        assert refused.status_code == 401


# -- introspection answers what the guards decide ---------------------------------------------
def _decisions(cluster: Cluster, token: Token) -> dict[str, dict[str, tuple[int, str]]]:
    return {
        guard: {product: cluster.call(token, guard, product) for product in BOTH}
        for guard in cluster.guards
    }


def _predicted(introspection: dict[str, object]) -> dict[str, str]:
    """What a resource server that introspects would decide per product: accept, or why not."""
    if not introspection["active"]:
        return dict.fromkeys(BOTH, "401")
    apis = introspection["apis"]
    assert isinstance(apis, list)
    return {product: "accept" if product in apis else "403" for product in BOTH}


def _decided(got: tuple[int, str]) -> str:
    status, code = got
    if status < 300:
        return "accept"
    assert (status, code) in {REVOKED, UNSUBSCRIBED, (401, "token_invalid")}, got
    return str(status)


def test_introspection_agrees_with_every_guard(cluster: Cluster, keys: list[PrivateKey]) -> None:
    names = ["live", "revoked", "cut off", "disabled", "unsubscribed", "expired"]
    clients = cluster.register([f"state-{n}" for n in names], keys)
    owner = {n: clients[f"state-{n}"] for n in names}
    tokens = {n: cluster.token(n, owner[n]) for n in names if n != "expired"}
    tokens["expired"] = cluster.expired_token("expired", owner["expired"])
    signed_part = tokens["live"].access.rsplit(".", 1)[0]
    tokens["bad signature"] = Token.of("forged", owner["live"], signed_part + ".AAAA")

    assert cluster.revoke(owner["revoked"], tokens["revoked"].access).status_code == 200
    cluster.taap("clients", "revoke-tokens", owner["cut off"].client_id)
    cluster.taap("clients", "disable", owner["disabled"].client_id)
    cluster.taap("clients", "unsubscribe", owner["unsubscribed"].client_id, "connectivity")
    done = time.monotonic()
    time.sleep(max(0.0, done + MAX_AGE + 0.1 - time.monotonic()))  # past the bound

    expected = {
        "live": {"connectivity": "accept", "sms-notification": "accept"},
        "unsubscribed": {"connectivity": "403", "sms-notification": "accept"},
    }
    rows = []
    for state, token in tokens.items():
        answers = [cluster.introspect(token.access, base) for base in _introspection_bases(cluster)]
        assert all(a == answers[0] for a in answers), (state, answers)  # nginx, node A, node B
        predicted = _predicted(answers[0])
        assert predicted == expected.get(state, dict.fromkeys(BOTH, "401")), (state, answers[0])
        decisions = _decisions(cluster, token)
        for guard, by_product in decisions.items():
            decided = {product: _decided(got) for product, got in by_product.items()}
            assert decided == predicted, (state, guard, by_product, answers[0])
        rows.append((state, answers[0]["active"], answers[0].get("apis"), decisions["node-b"]))
        if answers[0]["active"]:
            assert answers[0]["jti"] == token.jti
            assert answers[0]["cnf"] == {"jkt": token.client.key.thumbprint}
    print("\nstate, active, apis, node B's answers:")
    for row in rows:
        print("  ", *row)
    # The reason each guard gives matches the state, on every guard.
    assert cluster.call(tokens["expired"], "sample-api", "connectivity") == (401, "token_invalid")
    assert cluster.call(tokens["disabled"], "node-a", "connectivity") == REVOKED


def _introspection_bases(cluster: Cluster) -> list[str]:
    return [cluster.url, cluster.nodes[0].base, cluster.nodes[1].base]


# -- 1,000 revocations under load ---------------------------------------------------------------
LOAD_CLIENTS = 22
CUT_CLIENTS = 20  # the others are bystanders: their tokens are revoked one by one only
FIRST_TOKENS = 8  # per client, before the load; the issuer adds more during it


def _sweep(cluster: Cluster, tokens: list[Token], model: Model) -> tuple[Counter[str], list[str]]:
    """Every token on every guard for both products, against the model; 4 threads."""
    jobs = [(t, g, p) for t in tokens for g in cluster.guards for p in BOTH]
    tally: Counter[str] = Counter()
    wrong: list[str] = []
    lock = threading.Lock()

    def run(part: list[tuple[Token, str, str]]) -> None:
        with httpx.Client(timeout=20.0) as http:
            for token, guard, product in part:
                got = cluster.call(token, guard, product, http)
                want = model.expected(token, product)
                with lock:
                    tally[f"{got[0]} {got[1]}".strip()] += 1
                    if got != want:
                        wrong.append(f"{token.owner} {token.jti} {guard} {product}: {got}")

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(run, [jobs[i::4] for i in range(4)]))
    return tally, wrong


def test_a_thousand_revocations_under_load_lose_none(
    cluster: Cluster, keys: list[PrivateKey]
) -> None:
    started = time.monotonic()
    names = [f"load-{i}" for i in range(LOAD_CLIENTS)]
    clients = cluster.register(names, keys)
    pool = [cluster.token(name, clients[name]) for _ in range(FIRST_TOKENS) for name in names]
    load = Load(cluster, clients, pool, plan(14, names[:CUT_CLIENTS], names))
    assert len(load.ops) == 1000
    load.run()
    load_s = time.monotonic() - started
    model = Model(load.done)

    # While it ran: every refusal is one the model makes, no acceptance came past the bound.
    assert len(load.done) == 1000
    wrong = [(c.guard, c.product, c.token.owner, w) for c in load.calls
             if (w := model.wrong_during_load(c, MAX_AGE))]  # fmt: skip
    assert not wrong, wrong[:20]
    # The endpoint refuses only a disabled revoker, and a client with no product gets no token.
    assert {d.refused for d in load.done} <= {None, "client_auth_failed"}
    assert set(load.issue_refusals) <= {(401, "client_auth_failed"), (403, "not_subscribed")}

    # A cutoff catches every token issued before it began and none asked for after it.
    after = [cluster.token(name, clients[name]) for name in names]  # after every change
    tokens = [*load.pool, *after]
    misplaced = model.misplaced(tokens)
    assert not misplaced, misplaced[:20]

    # Past the bound: exactly the model, on every guard and at introspection.
    last = max(d.done for d in load.done)
    time.sleep(max(0.0, last + MAX_AGE + 0.05 - time.monotonic()))
    tally, mismatches = _sweep(cluster, tokens, model)
    assert not mismatches, mismatches[:20]
    for token in tokens:
        said = cluster.introspect(token.access)
        assert said.get("apis") == model.apis(token), (token.owner, token.jti, said)
    live = [t for t in tokens if model.revoked_at(t) is None]

    # The registry holds exactly what was done (each jti once, each cutoff with the value its
    # writer was given), under distinct increasing seqs, and the feed serves the same rows.
    entries = _entries(cluster)
    owner = {clients[n].client_id: n for n in names}
    mine = [e for e in entries if e.client_id in owner]
    stored = [(e.kind, owner[e.client_id], e.jti or "", e.api_id or "", e.not_before or 0)
              for e in mine]  # fmt: skip
    assert sorted(stored) == model.rows()
    seqs = [e.seq for e in entries]
    assert seqs == sorted(set(seqs))
    assert cluster.feed() == entries_to_wire(entries)

    _report(load, tally, tokens, live, mine, load_s, time.monotonic() - started)


def _entries(cluster: Cluster) -> list[RevocationEntry]:
    async def read(registry: Registry) -> list[RevocationEntry]:
        return list(await registry.revocations_after(0, limit=100_000))

    found: list[RevocationEntry] = cluster.registry(read)
    return found


def _report(
    load: Load,
    tally: Counter[str],
    tokens: list[Token],
    live: list[Token],
    rows: list[RevocationEntry],
    load_s: float,
    total_s: float,
) -> None:
    during = Counter(f"{c.got[0]} {c.got[1]}".strip() for c in load.calls)
    first = LOAD_CLIENTS * FIRST_TOKENS
    during_load, after = len(load.pool) - first, len(tokens) - len(load.pool)
    lines = [
        ("load phase / whole test (s)", f"{load_s:.1f} / {total_s:.1f}"),
        ("operations by kind", dict(Counter(d.op.kind for d in load.done))),
        (
            "  revocations refused (the revoker was disabled)",
            sum(bool(d.refused) for d in load.done),
        ),
        ("rows written for the load clients, by kind", dict(Counter(r.kind for r in rows))),
        ("tokens: before / during / after the load", f"{first} / {during_load} / {after}"),
        ("  token requests refused during the load", dict(Counter(load.issue_refusals))),
        ("  live at the end / revoked", f"{len(live)} / {len(tokens) - len(live)}"),
        ("guarded calls during the load", len(load.calls)),
        ("  answers", dict(during)),
        ("  by guard", dict(Counter(c.guard for c in load.calls))),
        ("calls after the bound (every token, guard, product)", sum(tally.values())),
        ("  answers", dict(tally)),
    ]
    print("\n1,000 revocations under load, two nodes + a separate guard, PostgreSQL + Redis")
    for name, value in lines:
        print(f"  {name:<54} {value}")
