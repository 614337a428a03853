"""The fetch guard: no fetch, redirect hop or feed entry reaches a loopback, private or link-local address
unless SITREP_FETCH_ALLOW lets it, checked on the address actually connected to.

"Inside" is a second local server on 127.0.0.2, standing for a service inside the network: the tests allow
only 127.0.0.1 (the ordinary test server, as an operator would allow an intranet feed host) and show that
127.0.0.2 never receives a request, however it is spelled or reached.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import socket
import ssl
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.digest.scheduler import FeedPoller
from bot.feeds.registry import FeedRegistry
from bot.settings import load_settings
from retrieval.documents import Article, LoadFailure
from retrieval.errors import ConfigError, SourceError
from retrieval.fetchguard import (
    FetchGuard,
    FetchRefusedError,
    address_problem,
    numeric_host,
    parse_allow,
)
from retrieval.loaders import FetchOptions, fetch_feed, iter_sources
from retrieval.loaders.web import HttpFetcher
from tests.httpfixtures import ALLOW_LOCAL, LOCAL_FETCH, LocalHTTPServer, Route

PAGE = ("<html><head><title>Aid reaches Lashkargah</title></head><body><article><p>A convoy of twelve trucks "
        "carrying food reached Lashkargah on Saturday, the World Food Programme said.</p></article></body></html>")
SECRET = '{"AccessKeyId": "ASIA-NOT-FOR-ARTICLES"}'
REFUSAL_HINT = "sitrep fetches only from public addresses (list intranet hosts or networks in SITREP_FETCH_ALLOW)"


@pytest.fixture
def outside() -> Iterator[LocalHTTPServer]:
    """The allowed server (127.0.0.1), standing for a public site."""
    with LocalHTTPServer({"/story": Route(PAGE)}) as server:
        yield server


@pytest.fixture
def inside(outside: LocalHTTPServer) -> Iterator[LocalHTTPServer]:
    """A server inside the network (127.0.0.2, on the same port as ``outside``), serving a secret."""
    try:
        server = LocalHTTPServer({"/secret": Route(SECRET, content_type="text/plain")}, host="127.0.0.2",
                                 port=outside.port).start()
    except OSError as exc:  # 127.0.0.0/8 is all loopback on Linux; some systems configure only 127.0.0.1
        pytest.skip(f"cannot listen on 127.0.0.2: {exc}")
    try:
        yield server
    finally:
        server.stop()


def inside_url(inside: LocalHTTPServer, host: str = "127.0.0.2") -> str:
    return f"http://{host}:{inside.port}/secret"


# ---------------------------------------------------------------- the address rules


@pytest.mark.parametrize(("address", "problem"), [
    ("127.0.0.1", "a loopback address"),
    ("127.255.0.9", "a loopback address"),
    ("10.1.2.3", "a private address"),
    ("172.16.5.4", "a private address"),
    ("192.168.1.1", "a private address"),
    ("169.254.169.254", "a link-local address"),
    ("100.64.0.1", "a carrier-grade NAT address"),
    ("100.127.255.254", "a carrier-grade NAT address"),
    ("224.0.0.251", "a multicast address"),
    ("240.0.0.1", "a reserved address"),
    ("0.0.0.0", "the unspecified address"),
    ("::1", "a loopback address"),
    ("::", "the unspecified address"),
    ("fe80::1", "a link-local address"),
    ("fd12:3456::1", "a private address"),
    ("fec0::1", "a private address"),
    ("ff02::1", "a multicast address"),
    ("::ffff:127.0.0.1", "a loopback address"),  # IPv4-mapped
    ("::ffff:169.254.169.254", "a link-local address"),
    ("::10.0.0.1", "a private address"),  # IPv4-compatible
    ("2002:7f00:1::", "a loopback address"),  # 6to4 around 127.0.0.1
    ("2002:a9fe:a9fe::1", "a link-local address"),  # 6to4 around 169.254.169.254
    ("64:ff9b::a00:1", "a private address"),  # NAT64 around 10.0.0.1
    ("64:ff9b::7f00:1", "a loopback address"),
    ("64:ff9b:1::5", "a private address"),  # local-use NAT64
    ("2001:db8::1", "a private address"),  # documentation
])
def test_forbidden_addresses(address: str, problem: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) == problem


@pytest.mark.parametrize("address", ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "::ffff:93.184.216.34",
                                     "64:ff9b::808:808", "2002:808:808::1"])
def test_public_addresses(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("host", ["2130706433", "0177.0.0.1", "0x7f000001", "127.1", "0177.0.0.01",
                                  "[::ffff:127.0.0.1]"])
def test_numeric_spellings_of_loopback(host: str) -> None:
    address = numeric_host(host)
    assert address is not None and address_problem(address) == "a loopback address"


def test_host_names_are_not_numeric() -> None:
    assert numeric_host("news.example") is None and numeric_host("1password.com") is None


def test_allowlist_entries() -> None:
    allow = parse_allow(["intranet.corp", "10.20.0.0/16", "fd00::/8", "127.0.0.1", "[::1]", " "])
    guard = FetchGuard(allow)
    guard.check_address("intranet.corp", ipaddress.ip_address("192.168.9.9"))  # allowed by name
    guard.check_address("INTRANET.corp.", ipaddress.ip_address("192.168.9.9"))
    guard.check_address("wiki", ipaddress.ip_address("10.20.3.4"))  # allowed by network
    guard.check_address("wiki6", ipaddress.ip_address("fd00::7"))
    guard.check_address("x", ipaddress.ip_address("::ffff:127.0.0.1"))  # the IPv4 inside is allowed
    with pytest.raises(FetchRefusedError, match=r"^wiki is 10\.21\.0\.1, a private address; "):
        guard.check_address("wiki", ipaddress.ip_address("10.21.0.1"))
    with pytest.raises(FetchRefusedError, match="the unspecified address"):  # never, even for a listed host
        guard.check_address("intranet.corp", ipaddress.ip_address("0.0.0.0"))


@pytest.mark.parametrize("entry", ["10.0.0.0/33", "http://intranet", "intra!net", "1.2.3", "-bad.example"])
def test_bad_allowlist_entry_fails_at_start_naming_the_setting(entry: str) -> None:
    with pytest.raises(ConfigError, match=r"^SITREP_FETCH_ALLOW\b.* is not a host name, an IP address or a CIDR"):
        load_settings({"SITREP_FETCH_ALLOW": f"intranet.corp,{entry}"})


def test_allowlist_setting() -> None:
    allow = load_settings({"SITREP_FETCH_ALLOW": "feeds.intranet, 10.0.0.0/8"}).fetch_allow
    assert allow.allows_host("feeds.intranet") and allow.allows_address(ipaddress.ip_address("10.9.9.9"))
    assert not load_settings({}).fetch_allow.allows_address(ipaddress.ip_address("127.0.0.1"))


# ---------------------------------------------------------------- fetches


def test_loopback_is_refused_unless_allowed(outside: LocalHTTPServer) -> None:
    url = outside.url("/story")
    with pytest.raises(FetchRefusedError) as refused:
        HttpFetcher().get(url)
    assert refused.value.message == f"refused to fetch {url}: 127.0.0.1, a loopback address; {REFUSAL_HINT}"
    assert outside.requests == []
    assert HttpFetcher(LOCAL_FETCH).get(url).status == 200


@pytest.mark.parametrize("host", ["2130706434", "0177.0.0.2", "0x7f000002", "127.0.2", "[::ffff:127.0.0.2]",
                                  "[::127.0.0.2]"])
def test_other_spellings_of_an_inside_address_are_refused(inside: LocalHTTPServer, host: str) -> None:
    url = inside_url(inside, host)
    with pytest.raises(FetchRefusedError, match=r"127\.0\.0\.2, a loopback address"):
        HttpFetcher(LOCAL_FETCH).get(url)
    assert inside.requests == []


def test_decimal_ip_reaches_nothing_without_the_allowlist(outside: LocalHTTPServer) -> None:
    with pytest.raises(FetchRefusedError, match=r"^refused to fetch http://2130706433:\d+/story: 2130706433 is "
                                                r"127\.0\.0\.1, a loopback address"):
        HttpFetcher().get(f"http://2130706433:{outside.port}/story")
    assert outside.requests == []


def test_host_with_several_addresses_one_private_is_refused(outside: LocalHTTPServer) -> None:
    def resolver(host: str, port: int) -> list[str]:
        return ["127.0.0.1", "10.9.8.7"]  # the first is allowed (standing for a public address)

    url = f"http://news.test:{outside.port}/story"
    with pytest.raises(FetchRefusedError, match=r"news\.test is 10\.9\.8\.7, a private address"):
        HttpFetcher(LOCAL_FETCH, resolver=resolver).get(url)
    assert outside.requests == []


def test_connection_goes_to_the_address_that_was_checked(outside: LocalHTTPServer, inside: LocalHTTPServer) -> None:
    """DNS rebinding: the name is resolved once per connection, and the socket goes to that checked address,
    so an answer that changes afterwards (here: to 127.0.0.2) is never used."""
    answers = iter([["127.0.0.1"]])
    lookups: list[str] = []

    def rebinding_resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return next(answers, ["127.0.0.2"])

    fetcher = HttpFetcher(LOCAL_FETCH, resolver=rebinding_resolver)
    resp = fetcher.get(f"http://news.test:{outside.port}/story")
    assert resp.status == 200 and b"twelve trucks" in resp.body
    assert lookups == ["news.test"]
    [request] = outside.requests
    assert request.headers["host"] == f"news.test:{outside.port}"  # the name, not the address, as Host
    fetcher.close()  # a new connection resolves again, and now gets the inside address: refused
    with pytest.raises(FetchRefusedError, match=r"news\.test is 127\.0\.0\.2, a loopback address"):
        fetcher.get(f"http://news.test:{outside.port}/story")
    assert inside.requests == []


def test_redirect_chain_ending_inside_is_refused(outside: LocalHTTPServer, inside: LocalHTTPServer) -> None:
    outside.route("/start", Route.redirect("/next", 301))
    outside.route("/next", Route.redirect(inside_url(inside), 302))
    start = outside.url("/start")
    with pytest.raises(FetchRefusedError) as refused:
        HttpFetcher(LOCAL_FETCH).get(start)
    assert refused.value.message == (f"refused to fetch {start} (redirected to {inside_url(inside)}): "
                                     f"127.0.0.2, a loopback address; {REFUSAL_HINT}")
    assert inside.requests == []
    assert [r.path for r in outside.requests] == ["/start", "/next"]


@pytest.mark.parametrize(("location", "expected"), [
    ("http://169.254.169.254/latest/meta-data/", "169.254.169.254, a link-local address"),
    ("http://[::ffff:a9fe:a9fe]/latest/", "169.254.169.254, a link-local address"),
    ("http://100.100.100.200/latest/meta-data/", "100.100.100.200, a carrier-grade NAT address"),
    ("file:///etc/passwd", "unsupported URL scheme 'file'"),
    ("gopher://127.0.0.1:6379/_INFO", "unsupported URL scheme 'gopher'"),
])
def test_redirects_to_forbidden_targets_are_refused(outside: LocalHTTPServer, location: str, expected: str) -> None:
    url = outside.route("/r", Route.redirect(location))
    with pytest.raises(FetchRefusedError, match=expected):
        HttpFetcher(LOCAL_FETCH).get(url)


def _certificate(folder: Path, host: str) -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` (made with the openssl command)."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a test certificate")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", f"/CN={host}",
                    "-addext", f"subjectAltName=DNS:{host}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def test_https_keeps_the_host_name_for_sni_and_certificate_checks(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The guard picks the address; TLS still sends the URL's host name (SNI) and verifies the certificate
    against it, not against the address connected to."""
    cert, key = _certificate(tmp_path, "news.test")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server_names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: server_names.append(name)  # type: ignore[assignment,misc]
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate, as an operator's CA bundle
    resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731 - every name points at the test server
    with LocalHTTPServer({"/story": Route(PAGE)}, tls=context) as server:
        resp = HttpFetcher(LOCAL_FETCH, resolver=resolver).get(f"https://news.test:{server.port}/story")
        assert resp.status == 200 and b"twelve trucks" in resp.body
        assert server_names == ["news.test"]
        assert server.requests[0].headers["host"] == f"news.test:{server.port}"
        with pytest.raises(SourceError, match="certificate"):  # the certificate is not for other.test
            HttpFetcher(LOCAL_FETCH, resolver=resolver).get(f"https://other.test:{server.port}/story")


def test_allowed_name_may_be_private(outside: LocalHTTPServer) -> None:
    options = FetchOptions(allow=parse_allow(["feeds.intranet"]))
    resp = HttpFetcher(options, resolver=lambda host, port: ["127.0.0.1"]).get(
        f"http://feeds.intranet:{outside.port}/story")
    assert resp.status == 200


# ---------------------------------------------------------------- feeds and the ingest report


def hostile_feed(outside: LocalHTTPServer, inside: LocalHTTPServer) -> str:
    """A feed whose author points entries inside the network, directly and through a redirect."""
    outside.route("/bounce", Route.redirect(inside_url(inside)))
    entries = [
        ("Aid reaches Lashkargah", outside.url("/story")),
        ("Metadata", "http://169.254.169.254/latest/meta-data/iam/"),
        ("Inside", inside_url(inside)),
        ("Bounced", outside.url("/bounce")),
        ("Spelled as a number", f"http://2130706434:{inside.port}/secret"),
    ]
    items = "".join(f"<item><title>{title}</title><link>{link}</link><description>Summary of {title}."
                    f"</description></item>" for title, link in entries)
    rss = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Hostile</title>{items}</channel></rss>'
    return outside.route("/feed.xml", Route(rss, content_type="application/rss+xml"))


def test_feed_entries_pointing_inside_are_failures_and_nothing_inside_is_fetched(
        outside: LocalHTTPServer, inside: LocalHTTPServer) -> None:
    items = list(iter_sources([hostile_feed(outside, inside)], options=LOCAL_FETCH))
    articles = [i for i in items if isinstance(i, Article)]
    failures = {f.source: f.error for f in items if isinstance(f, LoadFailure)}
    assert [a.title for a in articles] == ["Aid reaches Lashkargah"]
    assert set(failures) == {"http://169.254.169.254/latest/meta-data/iam/", inside_url(inside),
                             outside.url("/bounce"), f"http://2130706434:{inside.port}/secret"}
    assert all(error.startswith("refused to fetch ") for error in failures.values())
    assert "redirected to" in failures[outside.url("/bounce")]
    assert inside.requests == []


def test_feed_status_shows_refusals(tmp_path: Path, outside: LocalHTTPServer, inside: LocalHTTPServer) -> None:
    hostile = hostile_feed(outside, inside)
    private_feed = inside.route("/feed.xml", Route("<rss/>", content_type="application/rss+xml"))
    ingested: list[object] = []

    class Corpus:
        def ingest_articles(self, articles: list[object], progress: bool = False,
                            date_order: str | None = None) -> object:
            ingested.extend(articles)
            return type("Report", (), {"failed": [a for a in articles if isinstance(a, LoadFailure)],
                                       "added": 1, "updated": 0, "warnings": [], "refused": []})()

    registry = FeedRegistry(tmp_path / "state.db", env_feeds=[hostile, private_feed],
                            poll_interval=timedelta(minutes=15))
    now = datetime(2020, 10, 17, 8, 0, tzinfo=UTC)
    polls = FeedPoller(registry, Corpus(), LOCAL_FETCH).tick(now)
    assert [p.status for p in polls] == ["ok", "error"]
    states = {f.url: f for f in registry.feeds()}
    assert states[private_feed].last_status == "error"
    assert states[private_feed].last_error == (f"refused to fetch {private_feed}: 127.0.0.2, a loopback address; "
                                               f"{REFUSAL_HINT}")
    assert states[hostile].last_status == "ok"
    assert states[hostile].last_error.startswith("4 entries not ingested, the first: ")
    assert "refused to fetch" in states[hostile].last_error
    assert inside.requests == []


def test_ingest_report_names_each_refusal(tmp_path: Path, outside: LocalHTTPServer, inside: LocalHTTPServer
                                          ) -> None:
    """``sitrep ingest --json`` as a user runs it, with the test server allowed by SITREP_FETCH_ALLOW."""
    outside.route("/bounce", Route.redirect(inside_url(inside)))
    env = {**os.environ, "SITREP_DATA_DIR": str(tmp_path / "data"), "SITREP_FETCH_ALLOW": ALLOW_LOCAL}
    cmd = [sys.executable, "-m", "bot.cli.main", "ingest", outside.url("/story"), outside.url("/bounce"),
           "http://[::ffff:127.0.0.2]/", "--json"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stderr
    report = json.loads(proc.stdout)
    assert report["added"] == 1
    errors = {f["source"]: f["error"] for f in report["failed"]}
    bounce = outside.url("/bounce")
    assert errors == {
        bounce: f"refused to fetch {bounce} (redirected to {inside_url(inside)}): 127.0.0.2, a loopback address; "
                f"{REFUSAL_HINT}",
        "http://[::ffff:127.0.0.2]/": f"refused to fetch http://[::ffff:127.0.0.2]/: ::ffff:127.0.0.2 is 127.0.0.2, "
                                      f"a loopback address; {REFUSAL_HINT}",
    }
    assert inside.requests == []


def test_nothing_fetched_for_a_refused_feed_itself(inside: LocalHTTPServer) -> None:
    with pytest.raises(FetchRefusedError):
        fetch_feed(inside_url(inside), options=LOCAL_FETCH)
    assert inside.requests == []


def test_unresolvable_host_is_a_plain_failure() -> None:
    def resolver(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(Exception, match=r"could not connect to http://nowhere\.test/: host not found"):
        HttpFetcher(LOCAL_FETCH, resolver=resolver).get("http://nowhere.test/")
