#!/usr/bin/env python3
"""Receives the service's webhooks and verifies them with the Standard Webhooks library.

Register this receiver's URL with `createWebhook` (an admin does it once), keep the
`secret` the mutation returns, and run:

    WEBHOOK_SECRET=whsec_... PORT=8090 python webhook_receiver.py

Every delivery is checked before it is trusted: the `webhook-signature` must be an
HMAC-SHA256 of `webhook-id.webhook-timestamp.body` under the secret (during a secret
rotation the service signs with both secrets, and either verifies), and the timestamp
must be within five minutes. Deliveries are at least once: a repeat carries the same
`webhook-id`, so the receiver remembers the ids it handled and skips repeats. A 2xx
answer tells the service the event was handled; anything else makes it retry later.

stdout: one JSON object per line (listening, event, repeat, rejected).
"""

import json
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from standardwebhooks.webhooks import Webhook, WebhookVerificationError

SECRET = os.environ["WEBHOOK_SECRET"]
PORT = int(os.environ.get("PORT", "8090"))

verifier = Webhook(SECRET)
handled = set()


def say(**fields):
    print(json.dumps(fields), flush=True)


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        try:
            payload = verifier.verify(body, dict(self.headers.items()))
        except WebhookVerificationError as error:
            say(step="rejected", reason=str(error), id=self.headers.get("webhook-id"))
            self.send_response(400)
            self.end_headers()
            return
        message = self.headers["webhook-id"]
        data = payload["data"]
        if message in handled:
            say(step="repeat", id=message, seq=data["seq"])
        else:
            handled.add(message)
            # Handle the event here: open a chat thread, update a CMDB, ...
            say(
                step="event",
                id=message,
                type=payload["type"],
                seq=data["seq"],
                cursor=data["cursor"],
                ticket=data["ticket"]["number"],
                status=data["ticket"]["status"],
            )
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass  # stdout is for the JSON lines


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", PORT), Receiver)
    say(step="listening", port=PORT)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)
