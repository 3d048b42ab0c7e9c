"""A webhook receiver in its own process for the notify benchmark (no GIL shared with it).

    python bench/notify_receiver.py PORT FAILURE_RATE SEED [LOG]

POST answers 500 to a random FAILURE_RATE share of calls and 200 to the rest, counting the
200s per `notification_id`; GET /stats returns {"calls": n, "accepted": {id: count}}.
With LOG, every call is also appended to that file as one JSON line (before the answer is
sent, so a receiver killed mid-call never forgets a call it accepted): the chaos run reads
it after killing and restarting the receiver.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any


def serve(port: int, failure_rate: float, seed: int, log_path: str | None = None) -> None:
    """Serve until killed."""
    rng = random.Random(seed)
    lock = threading.Lock()
    accepted: Counter[str] = Counter()
    calls = [0]
    log: IO[str] | None = open(log_path, "a", encoding="utf-8") if log_path else None

    class Handle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            with lock:
                calls[0] += 1
                fail = rng.random() < failure_rate
                if not fail:
                    accepted[body["notification_id"]] += 1
                if log is not None:
                    entry = {
                        "id": body.get("notification_id"),
                        "key": self.headers.get("Idempotency-Key"),
                        "ok": not fail,
                        "recipient": body.get("recipient"),
                        "event_type": body.get("event_type"),
                        "case_id": body.get("case_id"),
                    }
                    log.write(json.dumps(entry) + "\n")
                    log.flush()
            self.send_response(500 if fail else 200)
            self.send_header("content-length", "0")
            self.end_headers()

        def do_GET(self) -> None:
            with lock:
                payload = json.dumps({"calls": calls[0], "accepted": accepted}).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            return None

    ThreadingHTTPServer.request_queue_size = 256
    server = ThreadingHTTPServer(("127.0.0.1", port), Handle)
    server.daemon_threads = True
    print("ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    serve(
        int(sys.argv[1]),
        float(sys.argv[2]),
        int(sys.argv[3]),
        sys.argv[4] if len(sys.argv) > 4 else None,
    )
