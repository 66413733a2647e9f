"""``${NAME}`` references in channel URLs, filled in from ``SHOUWANG_CHANNEL_SECRETS`` only where notifications leave.

A bot key or webhook token written straight into a person's channel URL travels everywhere the URL does: the
registry file, the people table, every outbox row, the api container. Written as a reference instead
(``wecombot://${WECOM_GRID1}``), the URL is safe to store, show and log, and only the role that sends (``ingest``,
which alone is given ``SHOUWANG_CHANNEL_SECRETS``) turns it into the real one, at the moment it builds the channel.
References resolve against that setting and nothing else, so a URL can never pull another variable of the process
(the database password, the signing key) out to a webhook.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from alerts.channels.base import PermanentError

NAME = re.compile(r"[A-Z][A-Z0-9_]{0,63}")
_REFERENCE = re.compile(r"\$\{([^}]*)\}")
STAND_IN = "0123456789abcdef0123456789abcdef"  # what a reference becomes when a URL is only being checked


class ChannelSecretError(PermanentError, ValueError):
    """A channel URL's reference is malformed or names a secret this process was not given."""


def references(url: str) -> list[str]:
    """The secret names a channel URL refers to, in order; raises ChannelSecretError for a malformed one."""
    names = _REFERENCE.findall(url)
    bad = [n for n in names if not NAME.fullmatch(n)]
    if bad or url.count("${") != len(names):
        shown = f"${{{bad[0]}}}" if bad else "an unclosed ${"
        raise ChannelSecretError(f"channel URL has a malformed secret reference ({shown}): write ${{NAME}} with "
                                 "capital letters, digits and underscores, starting with a letter")
    return names


def resolve(url: str, secrets: Mapping[str, str]) -> str:
    """The URL with every ``${NAME}`` replaced by ``secrets[NAME]``; the error names what is missing, never a value."""
    absent = missing(url, secrets)
    if absent:
        raise ChannelSecretError(f"channel URL refers to ${{{absent[0]}}}, which SHOUWANG_CHANNEL_SECRETS does not "
                                 "define in this process (only the ingest role is given the channel secrets)")
    return _REFERENCE.sub(lambda m: secrets[m.group(1)], url)


def missing(url: str, secrets: Mapping[str, str]) -> list[str]:
    """The names ``url`` refers to that ``secrets`` does not define; raises ChannelSecretError for a malformed one."""
    return [n for n in references(url) if n not in secrets]


def stand_ins(url: str) -> dict[str, str]:
    """A stand-in value for every reference of ``url``: enough to check the URL's shape without the secrets."""
    return dict.fromkeys(references(url), STAND_IN)


def unresolved(urls: Iterable[tuple[str, str]], secrets: Mapping[str, str]) -> list[str]:
    """For (owner, url) pairs, one line per reference that is malformed or not defined in ``secrets``."""
    problems = []
    for owner, url in urls:
        try:
            absent = missing(url, secrets)
        except ChannelSecretError as exc:
            problems.append(f"{owner}: {exc}")
            continue
        problems += [f"{owner}: ${{{n}}} is not in SHOUWANG_CHANNEL_SECRETS" for n in absent]
    return problems
