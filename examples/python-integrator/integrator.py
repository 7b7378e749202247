#!/usr/bin/env python3
"""Polls the ticket event feed with gql and resumes exactly where the last run stopped.

Each run pages `ticketEvents(first: PAGE_SIZE, after: <cursor>)` until `hasNextPage` is
false, prints every event, and saves the page's `endCursor` in STATE_FILE after EACH page:
a run that dies half-way resumes from the last page it finished, so nothing is lost (at
most that one page is printed again). Run it from cron, a CI job or a loop.

    ITSM_URL=http://127.0.0.1:8080 ITSM_TOKEN=... STATE_FILE=./events.cursor \
        python integrator.py

stdout: one JSON object per line (event, retry, done); errors go to stderr.
"""

import json
import os
import random
import sys
import tempfile
import time

from gql import Client, GraphQLRequest, gql
from gql.transport.exceptions import (
    TransportConnectionFailed,
    TransportQueryError,
    TransportServerError,
)
from gql.transport.requests import RequestsHTTPTransport

# The edges carry the cursors; `node { cursor }` holds the same value.
EVENTS = gql(
    """
    query Events($first: Int!, $after: String, $queueId: ID) {
      ticketEvents(first: $first, after: $after, queueId: $queueId) {
        edges {
          cursor
          node { seq kind occurredAt ticket { id number } }
        }
        pageInfo { hasNextPage endCursor }
      }
    }
    """
)

# Refusals that say "later": HTTP 429 (RATE_LIMITED: this caller spent its points for
# the minute) and 503 (SERVICE_UNAVAILABLE: the server is full or has no database
# connection). Both come with Retry-After.
RETRYABLE_CODES = {"RATE_LIMITED", "SERVICE_UNAVAILABLE"}
MAX_RETRIES = int(os.environ.get("MAX_RETRIES") or 5)  # in a row, for one page


def emit(line):
    print(json.dumps(line, separators=(",", ":")), flush=True)


def fail(message):
    print(f"[integrator] error: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def required(name):
    value = os.environ.get(name)
    if not value:
        fail(f"{name} is required")
    return value


def load_cursor(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read().strip() or None
    except FileNotFoundError:
        return None  # first run: from the start of the feed


def save_cursor(path, cursor):
    """Writes a temporary file beside STATE_FILE, then renames it over the old one:
    a crash leaves the old cursor or the new one, never half of one."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(dir=directory, prefix=".cursor-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(cursor)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


def retry_after(transport, error):
    """Seconds the server asked us to wait: the Retry-After header, else the error's
    `extensions.retryAfter`, else None."""
    header = (transport.response_headers or {}).get("Retry-After")
    if header and header.strip().isdigit():
        return int(header)
    seconds = ((error or {}).get("extensions") or {}).get("retryAfter")
    return seconds if isinstance(seconds, (int, float)) else None


def fetch_page(session, transport, variables):
    """One page, retrying what the server or the network says is temporary."""
    for attempt in range(MAX_RETRIES + 1):
        try:
            request = GraphQLRequest(EVENTS, variable_values=variables)
            return session.execute(request)["ticketEvents"]
        except TransportQueryError as e:
            # A GraphQL answer with errors, whatever the HTTP status (401, 429 ...): the
            # reason is in errors[].extensions.code.
            first = (e.errors or [{}])[0]
            code = (first.get("extensions") or {}).get("code", "UNKNOWN")
            if code not in RETRYABLE_CODES or attempt == MAX_RETRIES:
                fail(f"{code}: {first.get('message', e)}")
            wait = retry_after(transport, first)
        except TransportServerError as e:
            # An HTTP error without a GraphQL body (a proxy in front, say).
            code = f"HTTP_{e.code}"
            if e.code not in (429, 502, 503, 504) or attempt == MAX_RETRIES:
                fail(f"the server answered HTTP {e.code}: {e}")
            wait = retry_after(transport, None)
        except TransportConnectionFailed as e:
            code = "CONNECTION_FAILED"
            if attempt == MAX_RETRIES:
                fail(f"cannot reach the server: {e}")
            wait = None
        # Honour Retry-After; without one, back off exponentially with jitter.
        if wait is None:
            wait = random.uniform(0, min(10.0, 0.5 * 2**attempt))
        print(f"[integrator] {code}: retrying in {wait:.1f} s", file=sys.stderr, flush=True)
        emit({"type": "retry", "code": code, "waitSeconds": round(wait, 3)})
        time.sleep(wait)
    raise AssertionError("unreachable")


def main():
    url = required("ITSM_URL").rstrip("/") + "/graphql"
    token = required("ITSM_TOKEN")
    state_file = required("STATE_FILE")
    page_size = int(os.environ.get("PAGE_SIZE") or 100)  # the server allows at most 100
    queue_id = os.environ.get("QUEUE_ID") or None  # optional: one queue's events only

    transport = RequestsHTTPTransport(
        url=url,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
        retries=0,  # fetch_page retries, honouring Retry-After and telling us
    )
    # Schema-less: no introspection round trip (production servers may close
    # introspection: ITSM_INTROSPECTION=authenticated or off); the server validates the
    # query. For local validation pass `schema=open("schema.graphql").read()` instead.
    client = Client(transport=transport, fetch_schema_from_transport=False)

    cursor = load_cursor(state_file)
    print(f"[integrator] reading events from {url} after {cursor or '(the start)'}",
          file=sys.stderr, flush=True)
    pages = events = 0
    with client as session:  # one HTTP session (keep-alive) for every page
        while True:
            page = fetch_page(session, transport,
                              {"first": page_size, "after": cursor, "queueId": queue_id})
            pages += 1
            for edge in page["edges"]:
                node = edge["node"]
                ticket = node["ticket"] or {}  # null when the viewer may no longer see it
                emit({
                    "type": "event",
                    "cursor": edge["cursor"],
                    "seq": node["seq"],
                    "kind": node["kind"],
                    "ticketId": ticket.get("id"),
                    "ticketNumber": ticket.get("number"),
                })
                events += 1
            # The page is handled: only now does the next run start after it. An empty
            # page has no endCursor, and the cursor stays where it was.
            if page["pageInfo"]["endCursor"]:
                cursor = page["pageInfo"]["endCursor"]
                save_cursor(state_file, cursor)
            if not page["pageInfo"]["hasNextPage"]:
                break
    emit({"type": "done", "pages": pages, "events": events, "cursor": cursor})


if __name__ == "__main__":
    main()
