"""Follow links and submit forms the way a browser does, with the Django test client.

A test that finds "page=2" somewhere in the HTML lets a broken "Next" link through; a test that
resolves the link's ``href`` against the page's own URL, requests it and looks at the next page
does not. These helpers read the HTML a response carries (BeautifulSoup), so the test sees
exactly the links and form fields a person would.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from bs4 import BeautifulSoup, Tag
from django.test import Client
from django.test.client import RequestFactory

BASE = "http://testserver"


def page_url(response) -> str:
    """The absolute URL the response answered, query string included."""
    request = response.wsgi_request
    return f"{BASE}{request.get_full_path()}"


def soup(response) -> BeautifulSoup:
    return BeautifulSoup(response.content.decode(), "html.parser")


def text_of(response, selector: str = "body") -> str:
    """The visible text under ``selector``, whitespace collapsed."""
    found = soup(response).select_one(selector)
    return " ".join(found.get_text(" ").split()) if found else ""


def local_path(url: str) -> str:
    """What the test client requests for an absolute URL on the test server."""
    parts = urlsplit(url)
    assert parts.netloc in ("", "testserver"), f"{url} leaves the site"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def link(response, *, text: str | None = None, selector: str | None = None) -> str:
    """The absolute URL of the one link whose visible text contains ``text`` (or that matches
    ``selector``), resolved against the page's URL as a browser would."""
    page = soup(response)
    anchors = page.select(selector) if selector else page.find_all("a")
    if text is not None:
        anchors = [a for a in anchors if text in " ".join(a.get_text(" ").split())]
    anchors = [a for a in anchors if a.get("href") is not None]
    assert len(anchors) == 1, f"expected one link {text or selector!r}, found {len(anchors)}"
    return urljoin(page_url(response), anchors[0]["href"])


def links(response, selector: str = "a") -> list[str]:
    """Every link under ``selector``, resolved against the page's URL."""
    base = page_url(response)
    return [urljoin(base, a["href"]) for a in soup(response).select(selector) if a.get("href")]


def follow(client: Client, response, **which) -> object:
    """Click a link (see :func:`link`) and return the next page's response."""
    return client.get(local_path(link(response, **which)))


@dataclass
class Form:
    action: str
    method: str
    fields: list[tuple[str, str]]
    element: Tag

    def set(self, name: str, value: str | list[str]) -> Form:
        """Type into a field (or choose several values), replacing what it held. The field keeps
        its place, as a browser sends fields in the order of the form."""
        values = [value] if isinstance(value, str) else value
        names = [k for k, _ in self.fields]
        at = names.index(name) if name in names else len(names)
        kept = [(k, v) for k, v in self.fields if k != name]
        at = sum(1 for k in names[:at] if k != name)
        self.fields = kept[:at] + [(name, v) for v in values] + kept[at:]
        return self

    def value(self, name: str) -> str | None:
        for key, value in self.fields:
            if key == name:
                return value
        return None


def form(response, selector: str = "form") -> Form:
    """The form matching ``selector``, with what a browser would send if submitted as it is:
    text inputs and textareas with their values, checked boxes and radios, selected options."""
    page = soup(response)
    element = page.select_one(selector)
    assert element is not None, f"no form {selector!r} on the page"
    fields: list[tuple[str, str]] = []
    for field in element.select("input, textarea, select"):
        name = field.get("name")
        if not name or field.has_attr("disabled"):
            continue
        if field.name == "textarea":
            # As HTML parsing does: a newline right after <textarea> is not part of the value.
            text = field.get_text()
            fields.append((name, text[1:] if text.startswith("\n") else text))
        elif field.name == "select":
            chosen = field.select("option[selected]") or (
                [] if field.has_attr("multiple") else field.select("option")[:1]
            )
            fields += [(name, option.get("value", option.get_text())) for option in chosen]
        else:
            kind = (field.get("type") or "text").lower()
            if kind in ("checkbox", "radio"):
                if field.has_attr("checked"):
                    fields.append((name, field.get("value", "on")))
            elif kind not in ("submit", "button", "image", "reset", "file"):
                fields.append((name, field.get("value", "")))
    action = urljoin(page_url(response), element.get("action") or page_url(response))
    return Form(action, (element.get("method") or "get").lower(), fields, element)


def submit(client: Client, filled: Form, *, button: str | None = None, **extra) -> object:
    """Submit the form; ``button`` is the visible text of the submit button pressed (exactly,
    or else contained in it), whose name and value are sent as a browser sends them."""
    data = list(filled.fields)
    if button is not None:
        labelled = [
            (b, " ".join((b.get_text(" ") or b.get("value", "")).split()))
            for b in filled.element.select("button, input[type=submit]")
        ]
        buttons = [b for b, label in labelled if label == button] or [
            b for b, label in labelled if button in label
        ]
        assert len(buttons) == 1, f"expected one button {button!r}, found {len(buttons)}"
        if buttons[0].get("name"):
            data.append((buttons[0]["name"], buttons[0].get("value", "")))
    if filled.method == "get":
        query = RequestFactory().get("/", data=_as_dict(data)).META["QUERY_STRING"]
        target = local_path(filled.action).split("?")[0]
        return client.get(f"{target}?{query}" if query else target, **extra)
    return client.post(local_path(filled.action), data=_as_dict(data), **extra)


def _as_dict(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for key, value in pairs:
        data.setdefault(key, []).append(value)
    return data
