"""The **Examples** section every command's ``--help`` ends with, and group listings that show
each command's whole first sentence.

click rewraps an epilog into one paragraph unless the paragraph starts with a line holding only
``\\b``; :func:`examples` builds such paragraphs, so each example keeps its own line. Commands
may carry their own epilog (``taap token``); the others get theirs from :data:`EXAMPLES` by
their path when the ``taap`` group loads them (:func:`finish_help`), which keeps the examples
of all the admin commands in one place. click cuts a group listing's line at about 45
characters ("Register another PoP public key (SPKI PEM,..."): :func:`finish_help` gives each
command its first sentence in full as ``short_help``, which the listing wraps instead.
"""

from __future__ import annotations

import re

import click

__all__ = ["EXAMPLES", "NOTES", "examples", "finish_help", "first_sentence"]

_DB = "--database-url postgresql://taap:PASSWORD@db.internal/taap"

#: Command path (``taap clients create``) → its example lines (a command, ``# why`` after it).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "taap": (
        "taap demo                                    # the four steps, on this machine",
        "taap keygen --private-out client.pem --public-out client.pub.pem",
        "taap serve --with-sample-apis                # token server and sample APIs",
        "taap call GET http://127.0.0.1:8000/iot-connectivity/v1/devices/8901260000000000001",
        "taap COMMAND --help                          # each command's options and examples",
    ),
    "taap keygen": (
        "taap keygen --private-out client.pem --public-out client.pub.pem",
        "KEY_PASS=s3cret taap keygen --private-out client.pem --public-out client.pub.pem \\",
        "    --password-env KEY_PASS --bits 3072",
    ),
    "taap pop": (
        "taap pop build --key client.pem --method GET --uri '/v1/devices?id=7'",
        "taap pop decode eyJhbGciOi...",
        'taap pop explain eyJhbGciOi... --curl "$(cat request.sh)"',
    ),
    "taap pop build": (
        "taap pop build --key client.pem --method GET --uri '/v1/devices?id=7' \\",
        "    --header 'Content-Type: application/json' --header 'Authorization: Bearer eyJ...'",
        "taap pop build --key client.pem --ehts-json pairs.json --ttl 30",
        'echo \'[["uri", "/v1/x"], ["http-method", "GET"]]\' | '
        "taap pop build --key client.pem --ehts-json -",
    ),
    "taap pop decode": (
        "taap pop decode eyJhbGciOi...",
        "pbpaste | taap pop decode -                  # from standard input",
    ),
    "taap pop verify": (
        'taap pop verify --public-key client.pub.pem --token "$POP" --ehts-json values.json',
        'echo "$POP" | taap pop verify --public-key client.pub.pem --token - \\',
        "    --ehts-json values.json --policy lenient --now 1760000000",
    ),
    "taap serve": (
        "taap serve                                   # sqlite:///./taap.db on 127.0.0.1:8000",
        "taap serve --with-sample-apis --with-portal --port 8080",
        f"taap serve --workers 4 {_DB} \\",
        "    --redis-url redis://cache.internal:6379/0 --public-url https://auth.example",
        "TAAP_LOG_FORMAT=json taap serve              # JSON logs on a terminal too",
    ),
    "taap gateway": (
        "taap gateway --token-server http://127.0.0.1:8000 \\",
        "    --upstream connectivity=http://127.0.0.1:3000   # an API in any language",
        "taap gateway --token-server https://auth.example --redis-url redis://cache:6379/0 \\",
        "    --upstream sms-notification=http://sms.internal:8080 --workers 4",
        "taap gateway --config gateway.toml --auth-request  # nginx auth_request mode",
    ),
    "taap clients": (
        "taap clients create --name shop --public-key client.pub.pem --api connectivity",
        "taap clients list",
        "taap clients show taap-3hT9...",
    ),
    "taap clients add-key": ("taap clients add-key taap-3hT9... new-client.pub.pem",),
    "taap clients create": (
        "taap clients create --name shop --public-key client.pub.pem --api connectivity",
        "taap clients create --name ci --public-key - --api sms-notification --json < key.pem",
    ),
    "taap clients disable": ("taap clients disable taap-3hT9...",),
    "taap clients enable": ("taap clients enable taap-3hT9...",),
    "taap clients list": ("taap clients list", f"taap clients list --json {_DB}"),
    "taap clients remove-key": ("taap clients remove-key taap-3hT9... NzbLsXh8uDCcd-6MNwXF4W_7",),
    "taap clients revoke-tokens": (
        "taap clients revoke-tokens taap-3hT9...      # every live token",
        "taap clients revoke-tokens taap-3hT9... --jti 5f1c0e2a --jti 9b2d77e0",
    ),
    "taap clients rotate-secret": (
        "taap clients rotate-secret taap-3hT9...",
        "taap clients rotate-secret taap-3hT9... --grace 3600 --json",
    ),
    "taap clients show": (
        "taap clients show taap-3hT9...",
        "taap clients show taap-3hT9... --json",
    ),
    "taap clients subscribe": ("taap clients subscribe taap-3hT9... sms-notification",),
    "taap clients unsubscribe": ("taap clients unsubscribe taap-3hT9... sms-notification",),
    "taap apis": ("taap apis list", "taap apis create weather --token-server v2 --base-path /w/v1"),
    "taap apis create": (
        "taap apis create weather --name Weather --token-server v2 --base-path /weather/v1",
    ),
    "taap apis list": ("taap apis list", "taap apis list --json"),
    "taap keys": ("taap keys list", "taap keys rotate", "taap keys retire k-2026-01"),
    "taap keys encrypt": (
        "TAAP_KEY_ENCRYPTION_KEY=... taap keys encrypt",
        "TAAP_KEY_ENCRYPTION_KEY=NEW OLD_KEK=OLD taap keys encrypt --previous-key-env OLD_KEK",
    ),
    "taap keys list": ("taap keys list", "taap keys list --all --json"),
    "taap keys retire": ("taap keys retire k-2026-01",),
    "taap keys rotate": ("taap keys rotate", f"taap keys rotate --bits 3072 {_DB}"),
    "taap db": ("taap db upgrade", "taap db downgrade base --yes"),
    "taap db downgrade": ("taap db downgrade base --yes", "taap db downgrade 0003 --yes"),
    "taap db upgrade": ("taap db upgrade", f"taap db upgrade {_DB}"),
    "taap resource-servers": (
        "taap resource-servers create --name billing-gateway",
        "taap resource-servers list",
    ),
    "taap resource-servers create": (
        "taap resource-servers create --name billing-gateway",
        "taap resource-servers create --name billing-gateway --json",
    ),
    "taap resource-servers disable": ("taap resource-servers disable rs-7f3a",),
    "taap resource-servers enable": ("taap resource-servers enable rs-7f3a",),
    "taap resource-servers list": (
        "taap resource-servers list",
        "taap resource-servers list --json",
    ),
    "taap resource-servers remove": ("taap resource-servers remove rs-7f3a",),
    "taap resource-servers rotate-secret": (
        "taap resource-servers rotate-secret rs-7f3a --grace 600",
    ),
    "taap sample-api": (
        "taap sample-api --token-server http://127.0.0.1:8000",
        "taap sample-api --token-server https://auth.example --port 9000 \\",
        "    --redis-url redis://cache.internal:6379/0",
    ),
    "taap demo": (
        "taap demo",
        "taap demo --pop-only                         # steps 1 and 3 only, no server",
        "taap demo --json | jq .ok",
    ),
    "taap postman": (
        "taap postman export --token-url http://127.0.0.1:8000/oauth2/v2/tokens \\",
        "    --client-id taap-3hT9... --key client.pem --client-secret-env MY_SECRET",
    ),
    "taap postman export": (
        "taap postman export --token-url http://127.0.0.1:8000/oauth2/v2/tokens \\",
        "    --client-id taap-3hT9... --key client.pem --client-secret-env MY_SECRET",
        "taap postman export --token-url https://auth.example/oauth2/v6/tokens \\",
        "    --client-id taap-3hT9... --product connectivity --out postman/",
    ),
    "taap portal": ("taap portal admins add ops@example.com", "taap portal admins list"),
    "taap portal admins": ("taap portal admins add ops@example.com", "taap portal admins list"),
    "taap portal admins add": ("taap portal admins add ops@example.com",),
    "taap portal admins list": ("taap portal admins list",),
    "taap portal admins remove": ("taap portal admins remove ops@example.com",),
}

#: Command path → a paragraph shown before its examples (what a file of the command holds).
NOTES: dict[str, str] = {
    "taap pop verify": (
        "The --ehts-json file holds the signed values as the server sees them: a JSON array\n"
        "of [name, value] pairs of strings, one for each name the PoP's ehts lists, spelled\n"
        "as the ehts spells it (any order; uri is the decoded path and query):\n"
        '[["Content-Type", "application/json"], ["uri", "/v1/x?id=7"],\n'
        ' ["http-method", "POST"], ["body", "{}"]]'
    ),
    "taap pop build": (
        "The --ehts-json file is a JSON array of [name, value] string pairs, signed in\n"
        'that order: [["Content-Type", "application/json"], ["uri", "/v1/x"]].'
    ),
}


def examples(*lines: str, note: str | None = None) -> str:
    """An epilog: ``note`` (kept as written) then ``lines`` under ``Examples:``."""
    if not lines:
        raise ValueError("an Examples section needs at least one example")
    shown = "\n".join(f"  {line}" for line in lines)
    head = f"\b\n{note}\n\n" if note else ""
    return f"{head}\b\nExamples:\n{shown}"


_SENTENCE_END = re.compile(r"(?<=[.!?])\s")


def first_sentence(text: str | None) -> str:
    """The first sentence of a help text's first paragraph, on one line."""
    if not text:
        return ""
    paragraph = " ".join(text.strip().split("\n\n")[0].split())
    sentence = _SENTENCE_END.split(paragraph, maxsplit=1)[0]
    return sentence.rstrip(".")


def finish_help(command: click.Command, path: str) -> None:
    """Give ``command`` and its sub-commands the examples of :data:`EXAMPLES` (unless they
    carry their own, in an epilog or their docstring) and their whole first sentence as
    ``short_help``."""
    own = "Examples:" in (command.help or "") or command.epilog is not None
    if not own and path in EXAMPLES:
        command.epilog = examples(*EXAMPLES[path], note=NOTES.get(path))
    if command.short_help is None and command.help:
        command.short_help = first_sentence(command.help)
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            finish_help(sub, f"{path} {name}")
