"""The outlet of an article from its URL, when the source names none: a readable name for common outlets,
else the registered domain (``theweek.co.uk``, not ``www.theweek.co.uk`` or ``co.uk``).

Registered domains come from the Public Suffix List that the ``tld`` package ships (it is read from the
installed package; nothing is downloaded).
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from urllib.parse import urlsplit

from tld import get_fld

# Registered domain (or a more specific host, checked first) → the outlet's usual name.
KNOWN_OUTLETS: dict[str, str] = {
    "cnn.com": "CNN",
    "reuters.com": "Reuters",
    "bbc.co.uk": "BBC",
    "bbc.com": "BBC",
    "apnews.com": "AP",
    "ap.org": "AP",
    "aljazeera.com": "Al Jazeera",
    "aljazeera.net": "Al Jazeera",
    "tolonews.com": "TOLOnews",
    "pajhwok.com": "Pajhwok",
    "khaama.com": "Khaama Press",
    "ariananews.af": "Ariana News",
    "amu.tv": "Amu TV",
    "afintl.com": "Afghanistan International",
    "rferl.org": "RFE/RL",
    "azadiradio.com": "Radio Azadi",
    "nytimes.com": "The New York Times",
    "washingtonpost.com": "The Washington Post",
    "theguardian.com": "The Guardian",
    "guardian.co.uk": "The Guardian",
    "usatoday.com": "USA Today",
    "theweek.co.uk": "The Week",
    "theweek.com": "The Week",
    "wsj.com": "The Wall Street Journal",
    "ft.com": "Financial Times",
    "economist.com": "The Economist",
    "bloomberg.com": "Bloomberg",
    "npr.org": "NPR",
    "pbs.org": "PBS",
    "nbcnews.com": "NBC News",
    "cbsnews.com": "CBS News",
    "abcnews.go.com": "ABC News",
    "abc.net.au": "ABC News (Australia)",
    "foxnews.com": "Fox News",
    "cnbc.com": "CNBC",
    "politico.com": "Politico",
    "politico.eu": "Politico Europe",
    "axios.com": "Axios",
    "thehill.com": "The Hill",
    "latimes.com": "Los Angeles Times",
    "time.com": "Time",
    "newsweek.com": "Newsweek",
    "theatlantic.com": "The Atlantic",
    "independent.co.uk": "The Independent",
    "telegraph.co.uk": "The Telegraph",
    "thetimes.co.uk": "The Times",
    "dailymail.co.uk": "Daily Mail",
    "news.sky.com": "Sky News",
    "france24.com": "France 24",
    "afp.com": "AFP",
    "dw.com": "DW",
    "euronews.com": "Euronews",
    "lemonde.fr": "Le Monde",
    "spiegel.de": "Der Spiegel",
    "aa.com.tr": "Anadolu Agency",
    "xinhuanet.com": "Xinhua",
    "tass.com": "TASS",
    "scmp.com": "South China Morning Post",
    "dawn.com": "Dawn",
    "thehindu.com": "The Hindu",
    "hindustantimes.com": "Hindustan Times",
    "timesofindia.indiatimes.com": "The Times of India",
    "kyivindependent.com": "The Kyiv Independent",
    "koreaherald.com": "The Korea Herald",
    "koreatimes.co.kr": "The Korea Times",
    "yna.co.kr": "Yonhap",
    "news.yahoo.com": "Yahoo News",
    "reliefweb.int": "ReliefWeb",
    "unocha.org": "OCHA",
    "un.org": "United Nations",
    "who.int": "WHO",
    "unhcr.org": "UNHCR",
    "icrc.org": "ICRC",
    "hrw.org": "Human Rights Watch",
    "amnesty.org": "Amnesty International",
}

_DOMAIN_LIKE = re.compile(r"^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+$")


def outlet_for_url(url: str) -> str:
    """The outlet a URL belongs to: a known name, else its registered domain, else its host ("" without one)."""
    try:
        host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
    except ValueError:  # a malformed address (bad port, bracket) names no outlet
        return ""
    return _outlet_for_host(host) if host else ""


def readable_outlet(name: str) -> str:
    """A recorded outlet made readable when it is only a web domain (``www.cnn.com`` → ``CNN``)."""
    candidate = name.strip().lower()
    if not _DOMAIN_LIKE.match(candidate):
        return name
    return _outlet_for_host(candidate)


@lru_cache(maxsize=4096)
def _outlet_for_host(host: str) -> str:
    host = host.removeprefix("www.")
    if _is_ip(host) or "." not in host:
        return host  # a local server or an address: nothing better to call it
    parts = host.split(".")
    for start in range(len(parts) - 1):  # the most specific known suffix wins: abcnews.go.com before go.com
        known = KNOWN_OUTLETS.get(".".join(parts[start:]))
        if known:
            return known
    domain = get_fld(host, fix_protocol=True, fail_silently=True)
    return str(domain) if domain else host


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True
