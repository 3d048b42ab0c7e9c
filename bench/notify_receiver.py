"""A webhook receiver in its own process for the notify benchmark (no GIL shared with it).

    python bench/notify_receiver.py PORT FAILURE_RATE SEED

POST answers 500 to a random FAILURE_RATE share of calls and 200 to the rest, counting the
200s per `notification_id`; GET /stats returns {"calls": n, "accepted": {id: count}}.
"""

from __future__ import annotations

import json
import random
import sys
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def serve(port: int, failure_rate: float, seed: int) -> None:
    """Serve until killed."""
    rng = random.Random(seed)
    lock = threading.Lock()
    accepted: Counter[str] = Counter()
    calls = [0]

    class Handle(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
            with lock:
                calls[0] += 1
                fail = rng.random() < failure_rate
                if not fail:
                    accepted[body["notification_id"]] += 1
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
    serve(int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3]))
