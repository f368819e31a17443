"""The contract of base.html, macros.html and error.html, checked on the rendered HTML (the
pages written against it rely on these names, ids and roles)."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from jinja2 import ChoiceLoader, DictLoader
from portal_ui_app import LONG_TOKEN, XSS, User, environment, render


class _Elements(HTMLParser):
    """Every start tag as (tag, attrs), and the page's text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(html: str) -> _Elements:
    parser = _Elements()
    parser.feed(html)
    return parser


def find(parsed: _Elements, tag: str, **attrs: str) -> list[dict[str, str | None]]:
    return [a for t, a in parsed.tags if t == tag and all(a.get(k) == v for k, v in attrs.items())]


def page(body: str = "<h1>Hi</h1>", **ctx: Any) -> str:
    env = environment()
    template = '{% extends "base.html" %}{% block title %}T{% endblock %}{% block main %}'
    assert isinstance(env.loader, ChoiceLoader)
    env.loader.loaders.append(DictLoader({"p.html": template + body + "{% endblock %}"}))
    return render(env, "p.html", **ctx)


def test_base_frame() -> None:
    html = page(flashes=[("success", "Saved"), ("error", "Nope"), ("info", "FYI")])
    assert html.startswith('<!doctype html>\n<html lang="en">')
    parsed = parse(html)
    assert find(parsed, "meta", name="viewport")
    assert find(parsed, "link", rel="stylesheet", href="/portal/static/portal.css")
    assert find(parsed, "script", src="/portal/static/portal.js")[0].keys() >= {"defer"}
    first_link = next(a for t, a in parsed.tags if t == "a")
    assert first_link == {"class": "skip-link", "href": "#main"}
    assert find(parsed, "main", id="main")
    assert find(parsed, "nav", **{"aria-label": "Main"})
    assert "<title>T · taap developer portal</title>" in html
    assert '<div class="flash flash-success" role="status">Saved</div>' in html
    assert '<div class="flash flash-error" role="alert">Nope</div>' in html
    assert '<div class="flash flash-info" role="status">FYI</div>' in html
    assert "Request id: <code" in html
    assert "req-0123456789abcdef" in html
    assert "<script>" not in html
    assert " style=" not in html
    assert " on" not in html.replace(" one", "")  # no inline event handler attributes


@pytest.mark.parametrize("nav", ["apps", "/portal/"])
def test_active_nav_item_by_key_or_href(nav: str) -> None:
    parsed = parse(page(nav=nav))
    current = find(parsed, "a", **{"aria-current": "page"})
    assert current == [{"href": "/portal/", "aria-current": "page"}]


def test_nav_and_account_follow_the_user() -> None:
    links = {
        "/portal/",
        "/portal/reference",
        "/portal/status-codes",
        "/portal/explain",
    }
    anonymous = parse(page(user=None, nav="reference"))
    assert {a["href"] for a in find(anonymous, "a")} == {"#main", "/portal/", *links}
    assert not find(anonymous, "form", action="/portal/sign-out")

    member = parse(page(user=User("m@example.test", company_name="Example Ltd")))
    hrefs = {a["href"] for a in find(member, "a")}
    assert "/portal/company" in hrefs
    assert "/portal/admin" not in hrefs
    forms = find(member, "form", action="/portal/sign-out", method="post")
    assert len(forms) == 1
    assert find(member, "input", type="hidden", name="csrf_token", value="csrf-token-for-tests")

    admin = parse(page(user=User("a@example.test", is_admin=True)))
    hrefs = {a["href"] for a in find(admin, "a")}
    assert "/portal/admin" in hrefs
    assert "/portal/company" not in hrefs


def test_field_macro_wires_label_hint_error_and_keeps_the_value() -> None:
    body = (
        '{% import "macros.html" as m with context %}'
        '{{ m.field("app_name", "App name", value=v, error="Too long", hint="Max 80",'
        ' required=True, autocomplete="off", maxlength=80, data_confirm_input=True) }}'
        '{{ m.field("email", "Email", type="email") }}'
    )
    parsed = parse(page(body, v="my app"))
    assert find(parsed, "label", **{"for": "field-app_name"})
    (box,) = find(parsed, "input", id="field-app_name")
    assert box["value"] == "my app"
    assert box["aria-describedby"] == "field-app_name-hint field-app_name-error"
    assert box["aria-invalid"] == "true"
    assert box["maxlength"] == "80"
    assert "required" in box
    assert "data-confirm-input" in box
    assert find(parsed, "p", id="field-app_name-hint")
    assert find(parsed, "p", id="field-app_name-error")
    (plain,) = find(parsed, "input", id="field-email")
    assert plain == {"type": "email", "id": "field-email", "name": "email", "value": ""}


def test_error_summary_links_each_field_and_renders_nothing_without_errors() -> None:
    body = '{% import "macros.html" as m %}{{ m.error_summary(errors) }}'
    parsed = parse(page(body, errors=[("email", "Enter an email"), ("code", "Enter the code")]))
    assert len(find(parsed, "div", role="alert")) == 1
    assert "There is a problem" in "".join(parsed.text)
    assert [a["href"] for a in find(parsed, "a") if a["href"].startswith("#field")] == [
        "#field-email",
        "#field-code",
    ]
    assert 'class="error-summary"' not in page(body, errors=[])


def test_csrf_macro_needs_the_context_or_an_argument() -> None:
    env = environment()
    with_context = '{% import "macros.html" as m with context %}{{ m.csrf() }}'
    explicit = '{% import "macros.html" as m %}{{ m.csrf("tok") }}'
    expected = '<input type="hidden" name="csrf_token" value="{}">'
    assert env.from_string(with_context).render(csrf_token="abc") == expected.format("abc")
    assert env.from_string(explicit).render() == expected.format("tok")


def test_every_macro_escapes_user_strings() -> None:
    env = environment()
    html = render(env, "sample.html", v=XSS, app_name=XSS, long_token=LONG_TOKEN)
    parsed = parse(html)
    assert not find(parsed, "img")
    assert "<img" not in html
    escaped = "&lt;img src=x onerror=alert(1)&gt;"
    # Once per macro argument carrying it (see portal_ui_app.SAMPLE), plus the h1 and caption.
    assert html.count(escaped) >= 20
    user_html = page(user=User(XSS, company_name=XSS), flashes=[("error", XSS)], request_id=XSS)
    assert "<img" not in user_html


def test_error_page_shows_status_message_and_request_id() -> None:
    env = environment()
    html = render(env, "error.html", status=403, message=f"Not yours {XSS}", user=None)
    parsed = parse(html)
    text = " ".join("".join(parsed.text).split())
    assert "Error 403" in text
    assert f"Not yours {XSS}" in text
    assert "quote this request id: req-0123456789abcdef" in text
    assert len(find(parsed, "h1")) == 1
    assert "<img" not in html
    assert not find(parsed, "form", action="/portal/sign-out")
