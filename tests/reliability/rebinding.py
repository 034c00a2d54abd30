"""A DNS answer re-pointed after the guard's check, for the crawl's resolver tests.

``RebindingResolver`` answers every ``*.test`` name with ``$STEPPEWATCH_TEST_REBIND_TO``, as a
name server that re-points a name between the check and the connection would (no name
server here to do it for real). It keeps ``GuardedResolver``'s check: what a test sees is
what the crawl's own resolver does with such an answer."""

from __future__ import annotations

import os
from collections.abc import Sequence

from twisted.internet import defer
from twisted.internet.defer import Deferred

from spiders.resolver import GuardedResolver


class RebindingResolver(GuardedResolver):
    def resolve(self, name: str, timeout: Sequence[int] = ()) -> Deferred[str]:
        if name.endswith(".test"):
            return defer.succeed(os.environ["STEPPEWATCH_TEST_REBIND_TO"])
        return super().resolve(name, timeout)
