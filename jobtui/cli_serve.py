"""``jobtui serve``: the console in a browser, through textual-serve, behind a token.

textual-serve (``jobtui[serve]``) runs ``python -m jobtui.tui`` once per browser session
and relays its screen over a websocket. It has no authentication of its own, and the
console can cancel, kill and delete jobs, so every request must carry the random token
printed with the URL: in the query (``/?token=...``, the URL printed) or in the cookie
that first page sets (``SameSite=Strict``, so the page's own websocket and static files
carry it and a page of another site cannot). Anything else gets 403. A websocket whose
``Origin`` is another host is refused too. ``--read-only`` starts every console read-only
(no writing action shown or bound), as ``jobtui --read-only`` in a terminal.
"""

from __future__ import annotations

import argparse
import hmac
import secrets
import shlex
import sys

from jobtui.models.errors import ConfigurationError

COOKIE = "jobtui_token"


def add_serve_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="serve the console to a browser (needs jobtui[serve])")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--read-only", dest="serve_read_only", action="store_true",
                   help="hide every writing action")  # fmt: skip
    p.set_defaults(func=run_serve_command, opens_database_itself=True)


def console_command(database: str | None, read_only: bool) -> str:
    """The shell command textual-serve runs for each session."""
    words = [sys.executable, "-m", "jobtui.tui"]
    if database:
        words += ["--database", database]
    if read_only:
        words.append("--read-only")
    return shlex.join(words)


def token_middleware(token: str):
    """An aiohttp middleware that lets through only requests that carry ``token``."""
    from aiohttp import web

    expected = token.encode()

    def carries(value: str | None) -> bool:
        return value is not None and hmac.compare_digest(value.encode(), expected)

    @web.middleware
    async def guard(request, handler):
        in_query = carries(request.query.get("token"))
        if not (in_query or carries(request.cookies.get(COOKIE))):
            raise web.HTTPForbidden(text="jobtui serve: open the URL with its token\n")
        origin = request.headers.get("Origin")
        if origin is not None and origin.split("://", 1)[-1] != request.host:
            raise web.HTTPForbidden(text="jobtui serve: cross-origin request refused\n")
        response = await handler(request)
        if in_query and not getattr(response, "prepared", False):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict")
        return response

    return guard


def build_server(host: str, port: int, command: str, token: str):
    """A textual-serve ``Server`` with the token guard, printing the URL with its token."""
    try:
        from textual_serve.server import Server
    except ImportError:
        raise ConfigurationError("jobtui serve needs textual-serve: pip install 'jobtui[serve]'"
                                 ) from None  # fmt: skip

    class GuardedServer(Server):
        async def _make_app(self):
            app = await super()._make_app()
            app.middlewares.append(token_middleware(token))
            return app

        async def on_startup(self, app) -> None:
            """Silent: aiohttp runs start-up hooks before it binds the socket."""

        def announce(self, *_banner: object) -> None:
            """Print the URL once the socket listens, so the URL printed can be opened."""
            print(f"jobtui console on {self.public_url}/?token={token}", flush=True)
            print("anyone with this URL can use the console; Ctrl+C stops", flush=True)

        def serve(self, debug: bool = False) -> None:
            """textual-serve's ``serve``, with ``announce`` as aiohttp's after-bind banner.

            textual-serve prints its banner from a start-up hook, before aiohttp binds: a
            URL printed there could be refused for a moment (CI saw it once).
            """
            import asyncio
            import signal

            from aiohttp import web

            self.debug = debug
            self.initialize_logging()
            loop = asyncio.new_event_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, self.request_exit)
            web.run_app(self._make_app(), host=self.host, port=self.port,
                        handle_signals=False, loop=loop, print=self.announce)  # fmt: skip

    return GuardedServer(command, host=host, port=port, title="jobtui")


def check_port(host: str, port: int) -> None:
    """Refuse a port in use before the URL is printed (aiohttp binds after start-up)."""
    import socket

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise ConfigurationError(f"--host {host}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
        try:
            probe.bind(address)
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror or exc}"
                                     ) from None  # fmt: skip


def run_serve_command(args: argparse.Namespace) -> int:
    if not 0 < args.port < 65536:
        raise ConfigurationError(f"--port {args.port}: a port from 1 to 65535")
    token = secrets.token_urlsafe(24)
    command = console_command(args.database, args.serve_read_only)
    server = build_server(args.host, args.port, command, token)  # textual-serve missing: first
    check_port(args.host, args.port)
    try:
        server.serve()
    except OSError as exc:
        raise ConfigurationError(f"cannot listen on {args.host}:{args.port}: {exc.strerror or exc}"
                                 ) from None  # fmt: skip
    return 0
