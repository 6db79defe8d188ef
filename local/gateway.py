"""A local HTTP API: the routes of template.yaml, turned into payload-2.0 proxy events."""

import base64
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from local.template import Route
from local.tokens import LocalIssuer, Unauthorized

logger = logging.getLogger("local.gateway")

Invoke = Callable[[str, dict[str, Any]], Any]
# What an HTTP API's ANY route stands for.
HTTP_API_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
_TEXT_TYPES = ("application/json", "application/xml", "text/", "application/x-www-form-urlencoded")


class _CompiledRoute:
    def __init__(self, route: Route) -> None:
        self.route = route
        pattern = re.sub(r"\{(\w+)\+\}", r"(?P<\1>.+)", route.path)
        pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        self.regex = re.compile(f"^{pattern}$")


class LocalGateway:
    def __init__(
        self,
        routes: list[Route],
        invoke: Invoke,
        host: str = "127.0.0.1",
        port: int = 3000,
        authorizer: LocalIssuer | None = None,
    ) -> None:
        # API Gateway prefers an exact route to a greedy {proxy+} one, and a method to ANY.
        self._routes = sorted(
            (_CompiledRoute(route) for route in routes),
            key=lambda compiled: ("+}" in compiled.route.path, compiled.route.method == "ANY"),
        )
        self._invoke = invoke
        self._authorizer = authorizer or LocalIssuer()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="local-gateway", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        for compiled in self._routes:
            found = compiled.regex.match(path)
            any_method = compiled.route.method == "ANY" and method in HTTP_API_METHODS
            if (compiled.route.method == method or any_method) and found:
                return compiled.route, found.groupdict()
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                gateway._serve(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET  # noqa: N815

            def __getattr__(self, name: str) -> Any:
                # Any other method (TRACE, QUERY, ...) gets API Gateway's answer, not a 501.
                if name.startswith("do_"):
                    return self.do_GET
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                logger.debug(format, *args)

        return Handler

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        url = urlsplit(request.path)
        matched = self.match(request.command, url.path)
        if matched is None:
            _write(request, 404, {"content-type": "application/json"}, b'{"message":"Not Found"}')
            return
        route, path_parameters = matched
        event = proxy_event(request, route, path_parameters, url.path, url.query, body)
        if route.authorizer is not None:
            try:
                claims = self._authorizer.claims(request.headers.get("Authorization"))
            except Unauthorized:
                _write(request, 401, {"content-type": "application/json"}, b'{"message":"Unauthorized"}')
                return
            # The shape API Gateway's JWT authorizer hands to payload-2.0 integrations.
            event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        try:
            response = self._invoke(route.function, event)
        except Exception:
            logger.exception("%s failed", route.function)
            _write(request, 500, {"content-type": "application/json"}, b'{"message":"Internal Server Error"}')
            return
        status, headers, payload = _from_proxy_response(response)
        _write(request, status, headers, payload)


def proxy_event(
    request: BaseHTTPRequestHandler,
    route: Route,
    path_parameters: dict[str, str],
    path: str,
    query: str,
    body: bytes,
) -> dict[str, Any]:
    headers: dict[str, str] = {}
    for name, value in request.headers.items():
        key = name.lower()
        headers[key] = f"{headers[key]},{value}" if key in headers else value
    content_type = headers.get("content-type", "")
    is_text = content_type.startswith(_TEXT_TYPES)
    if is_text:
        try:
            text_body = body.decode("utf-8")
        except UnicodeDecodeError:
            is_text = False
    now = time.time()
    query_parameters: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        query_parameters[key] = f"{query_parameters[key]},{value}" if key in query_parameters else value
    return {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": path,
        "rawQueryString": query,
        "cookies": [c.strip() for c in headers.get("cookie", "").split(";") if c.strip()] or None,
        "headers": headers,
        "queryStringParameters": query_parameters or None,
        "pathParameters": path_parameters or None,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "local",
            "domainName": headers.get("host", "127.0.0.1"),
            "domainPrefix": "local",
            "http": {
                "method": request.command,
                "path": path,
                "protocol": request.request_version,
                "sourceIp": request.client_address[0],
                "userAgent": headers.get("user-agent", ""),
            },
            "requestId": str(uuid.uuid4()),
            "routeKey": route.route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "body": (text_body if is_text else base64.b64encode(body).decode("ascii")) if body else None,
        "isBase64Encoded": bool(body) and not is_text,
    }


def _from_proxy_response(response: Any) -> tuple[int, dict[str, str], bytes]:
    """Interpret a payload-2.0 response the way API Gateway does."""
    if not isinstance(response, dict) or "statusCode" not in response:
        return 200, {"content-type": "application/json"}, json.dumps(response).encode()
    body = response.get("body") or ""
    payload = base64.b64decode(body) if response.get("isBase64Encoded") else str(body).encode("utf-8")
    headers = {str(k).lower(): str(v) for k, v in (response.get("headers") or {}).items()}
    return int(response["statusCode"]), headers, payload


def _write(request: BaseHTTPRequestHandler, status: int, headers: dict[str, str], payload: bytes) -> None:
    request.send_response(status)
    for name, value in headers.items():
        if name not in ("content-length", "connection"):
            request.send_header(name, value)
    request.send_header("content-length", str(len(payload)))
    request.end_headers()
    if request.command != "HEAD":
        request.wfile.write(payload)
