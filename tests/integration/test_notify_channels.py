"""Channel adapters against real servers the test starts: webhook, group robot, SMS, SMTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pydantic import SecretStr

from services.notify.channels import (
    DeliveryError,
    EmailChannel,
    HttpSlots,
    Outgoing,
    RobotChannel,
    SmsChannel,
    WebhookChannel,
)
from services.notify.config import NotifySettings
from shared.logs import configure_logging

MESSAGE = Outgoing(
    notification_id="n-1",
    address="",
    text="【防返贫】农户hh-1报因病风险，请3月4日前入户核实",
    body={"household_id": "hh-1", "text": "【防返贫】农户hh-1报因病风险", "deadline": None},
)

# (status, JSON answer) or (status, JSON answer, extra headers)
Reply = Callable[[dict[str, Any]], tuple[Any, ...]]


class Server:
    """A real HTTP server on 127.0.0.1 recording each request, answering with `reply`."""

    def __init__(self, reply: Reply, delay: float = 0) -> None:
        self.requests: list[dict[str, Any]] = []
        requests = self.requests

        class Handle(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                request = {
                    "path": self.path,
                    "headers": dict(self.headers),
                    "json": json.loads(self.rfile.read(length)),
                }
                requests.append(request)
                time.sleep(delay)
                code, answer, *extra = reply(request)
                payload = json.dumps(answer).encode()
                self.send_response(code)
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def start(reply: Reply = lambda r: (200, {"ok": True}), delay: float = 0) -> Server:
        servers.append(Server(reply, delay))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


async def test_webhook_posts_the_json_body_with_an_idempotency_key(
    serve: Callable[..., Server],
) -> None:
    server = serve()
    async with httpx.AsyncClient() as http:
        code = await WebhookChannel(http, 5).send(_to(server.url))
    assert code == 200
    [request] = server.requests
    assert request["json"]["household_id"] == "hh-1"
    assert request["headers"]["Idempotency-Key"] == "n-1"


async def test_webhook_error_status_and_timeout_are_delivery_errors(
    serve: Callable[..., Server],
) -> None:
    failing = serve(lambda r: (503, {}))
    slow = serve(delay=1.0)
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError, match="HTTP 503") as failed:
            await WebhookChannel(http, 5).send(_to(failing.url))
        assert failed.value.status_code == 503
        # the per-channel timeout, not the gateway, decides how long we wait
        with pytest.raises(DeliveryError, match="Timeout"):
            await WebhookChannel(http, 0.2).send(_to(slow.url))


async def test_slots_carry_concurrent_sends_each_client_one_at_a_time(
    serve: Callable[..., Server],
) -> None:
    in_flight, most = 0, 0
    lock = threading.Lock()

    def reply(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        nonlocal in_flight, most
        with lock:
            in_flight += 1
            most = max(most, in_flight)
        time.sleep(0.05)
        with lock:
            in_flight -= 1
        return 200, {"ok": True}

    server = serve(reply)
    http = HttpSlots(3)
    try:
        channel = WebhookChannel(http, 5)
        messages = [
            Outgoing(notification_id=f"n-{n}", address=server.url, text="t", body={"n": n})
            for n in range(12)
        ]
        codes = await asyncio.gather(*(channel.send(m) for m in messages))
        # a failed send hands its slot back too
        with pytest.raises(DeliveryError):
            await channel.send(_to("http://127.0.0.1:1/hook"))
        assert await channel.send(messages[0]) == 200
    finally:
        await http.aclose()
    assert codes == [200] * 12
    assert sorted(r["json"]["n"] for r in server.requests[:12]) == list(range(12))
    assert 2 <= most <= 3  # concurrent, never more than the slots


async def test_a_slot_sends_to_the_address_alone_and_keeps_no_cookie(
    serve: Callable[..., Server],
) -> None:
    def reply(request: dict[str, Any]) -> tuple[Any, ...]:
        if request["path"] == "/hook":
            moved = {"location": "/elsewhere", "set-cookie": "session=abc; Path=/"}
            return 302, {"moved": True}, moved
        return 200, {"ok": True}

    server = serve(reply)
    http = HttpSlots(2)
    try:
        channel = WebhookChannel(http, 5)
        with pytest.raises(DeliveryError) as moved:
            await channel.send(_to(server.url))
        assert await channel.send(_to(server.url.replace("/hook", "/other"))) == 200
    finally:
        await http.aclose()
    # the redirect was not followed: an alert goes where it was configured to, or fails
    assert moved.value.status_code == 302
    assert [r["path"] for r in server.requests] == ["/hook", "/other"]
    later = {k.lower(): v for k, v in server.requests[1]["headers"].items()}
    assert "cookie" not in later
    assert later["user-agent"] == HttpSlots.USER_AGENT
    assert later["content-type"] == "application/json"
    assert server.requests[1]["json"] == dict(MESSAGE.body)


async def test_a_slot_leaves_through_the_proxy_the_environment_names(
    serve: Callable[..., Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy, receiver = serve(), serve()
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", proxy.url.removesuffix("/hook"))
    monkeypatch.setenv("NO_PROXY", "localhost")
    http = HttpSlots(2)
    try:
        # a forward proxy gets the whole address in the request line
        assert await WebhookChannel(http, 5).send(_to("http://alerts.example.invalid/hook")) == 200
    finally:
        await http.aclose()
    assert [r["path"] for r in proxy.requests] == ["http://alerts.example.invalid/hook"]

    monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # the receiver is on the inside
    http = HttpSlots(2)
    try:
        assert await WebhookChannel(http, 5).send(_to(receiver.url)) == 200
    finally:
        await http.aclose()
    assert [r["path"] for r in receiver.requests] == ["/hook"]
    assert len(proxy.requests) == 1


async def test_a_robot_address_and_its_signature_never_reach_the_log(
    serve: Callable[..., Server], capsys: pytest.CaptureFixture[str]
) -> None:
    server = serve(lambda r: (200, {"errcode": 0, "errmsg": "ok"}))
    root, httpx_log = logging.getLogger(), logging.getLogger("httpx")
    saved = root.handlers[:], root.level, httpx_log.level
    configure_logging("notify", "INFO")
    try:
        async with httpx.AsyncClient() as http:
            await RobotChannel(http, 5, secret="SEC123").send(
                _to(server.url + "?access_token=TOKEN-4f1c")
            )
        logging.getLogger("services.notify").info("sent")  # the handler does write
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        httpx_log.setLevel(saved[2])
    [request] = server.requests
    assert "access_token=TOKEN-4f1c" in request["path"]
    sign = parse_qs(urlsplit(request["path"]).query)["sign"][0]
    err = capsys.readouterr().err
    assert '"message": "sent"' in err
    assert "TOKEN-4f1c" not in err and sign not in err and "/hook" not in err


async def test_robot_sends_wecom_text_and_signs_dingtalk_style(
    serve: Callable[..., Server],
) -> None:
    server = serve(lambda r: (200, {"errcode": 0, "errmsg": "ok"}))
    async with httpx.AsyncClient() as http:
        await RobotChannel(http, 5, secret="SEC123").send(_to(server.url))
    [request] = server.requests
    assert request["json"] == {"msgtype": "text", "text": {"content": MESSAGE.text}}
    query = parse_qs(urlsplit(request["path"]).query)
    stamp, sign = query["timestamp"][0], query["sign"][0]
    expected = hmac.new(b"SEC123", f"{stamp}\nSEC123".encode(), hashlib.sha256).digest()
    assert base64.b64decode(sign) == expected


async def test_robot_errcode_is_a_failure_even_with_http_200(serve: Callable[..., Server]) -> None:
    server = serve(lambda r: (200, {"errcode": 45009, "errmsg": "api freq out of limit"}))
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError, match="45009"):
            await RobotChannel(http, 5, secret=None).send(_to(server.url))


async def test_sms_gateway_gets_phone_text_and_credentials(serve: Callable[..., Server]) -> None:
    def gateway(request: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if request["headers"].get("Authorization") != "Bearer k-1":
            return 401, {"code": "unauthorized"}
        return 200, {"code": "OK", "message_id": "m1"}

    server = serve(gateway)
    good = NotifySettings(sms_gateway_url=server.url, sms_api_key=SecretStr("k-1"))
    bad = NotifySettings(sms_gateway_url=server.url, sms_api_key=SecretStr("wrong"))
    async with httpx.AsyncClient() as http:
        assert await SmsChannel(http, good).send(_to("13800001111")) == 200
        with pytest.raises(DeliveryError, match="HTTP 401"):
            await SmsChannel(http, bad).send(_to("13800001111"))
    sent = server.requests[0]["json"]
    assert sent["phone"] == "13800001111"
    assert sent["text"] == MESSAGE.text
    assert sent["client_ref"] == "n-1"


class MiniSmtp(socketserver.ThreadingTCPServer):
    """Just enough SMTP to accept a message and keep it."""

    allow_reuse_address = True
    daemon_threads = True

    def __init__(self) -> None:
        self.messages: list[str] = []
        outer = self

        class Handle(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                self.wfile.write(b"220 mini ESMTP\r\n")
                while line := self.rfile.readline():
                    verb = line.decode().strip().upper()
                    if verb.startswith(("EHLO", "HELO", "MAIL", "RCPT", "RSET", "NOOP")):
                        self.wfile.write(b"250 ok\r\n")
                    elif verb == "DATA":
                        self.wfile.write(b"354 go\r\n")
                        body = []
                        while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                            body.append(chunk.decode())
                        outer.messages.append("".join(body))
                        self.wfile.write(b"250 queued\r\n")
                    elif verb == "QUIT":
                        self.wfile.write(b"221 bye\r\n")
                        return
                    else:
                        self.wfile.write(b"502 no\r\n")

        super().__init__(("127.0.0.1", 0), Handle)
        threading.Thread(target=self.serve_forever, daemon=True).start()


async def test_email_goes_over_smtp() -> None:
    smtp = MiniSmtp()
    try:
        settings = NotifySettings(smtp_host="127.0.0.1", smtp_port=smtp.server_address[1])
        assert await EmailChannel(settings).send(_to("cadre@example.cn")) == 250
    finally:
        smtp.shutdown()
        smtp.server_close()
    [mail] = smtp.messages
    assert "To: cadre@example.cn" in mail
    assert "Message-ID: <n-1@holdline>" in mail


async def test_email_to_a_dead_smtp_server_is_a_delivery_error() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = NotifySettings(smtp_port=port, email_timeout_seconds=2)
    with pytest.raises(DeliveryError, match="ConnectionRefused"):
        await EmailChannel(settings).send(_to("cadre@example.cn"))


def _to(address: str) -> Outgoing:
    return Outgoing(MESSAGE.notification_id, address, MESSAGE.text, MESSAGE.body)
