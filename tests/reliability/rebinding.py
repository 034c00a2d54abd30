"""DNS answers a test chooses, for the crawl's resolver tests.

``RebindingResolver`` answers the names in ``$STEPPEWATCH_TEST_DNS`` (JSON, name -> address)
as a name server that re-points a name between the guard's check and the connection
would (there is no name server here to do it for real); names listed in
``$STEPPEWATCH_TEST_DNS_TRUSTED`` (comma-separated) count as the operator's own, like the
proxy's host. Everything else is ``GuardedResolver``'s: what a test sees is what the
crawl's own resolver does with such an answer."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.defer import Deferred

from spiders.resolver import GuardedResolver


class RebindingResolver(GuardedResolver):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answers = json.loads(os.environ.get("STEPPEWATCH_TEST_DNS", "{}"))
        trusted = [h for h in os.environ.get("STEPPEWATCH_TEST_DNS_TRUSTED", "").split(",") if h]
        self.trusted_hosts = self.trusted_hosts | frozenset(trusted)

    def resolve(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        if name in self.answers:
            return defer.succeed(self.answers[name])
        return super().resolve(name, timeout)
