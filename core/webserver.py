"""The web server `serve` starts: uvicorn (httptools, uvloop) on one listening socket, in one process or
several (`--workers N`), every accepted connection with TCP_NODELAY.

Run as `python -m core.webserver --host H --port P [--workers N]`, or `--fd FD` on a socket bound by the
caller. uvicorn's own `--workers` binds its socket with protocol 0, and asyncio turns Nagle off only on
sockets whose protocol is IPPROTO_TCP, so each small write (headers, then body) of a keep-alive answer could
wait for the client's delayed ACK: about 40 ms a request. Here the socket says IPPROTO_TCP, Nagle is off on
it (Linux passes that on to accepted connections), and both asyncio and uvloop turn it off on each
accepted connection of such a socket."""

from __future__ import annotations

import argparse
import logging
import socket
from collections.abc import Sequence

import uvicorn
from uvicorn.supervisors import Multiprocess

APP = "orchestrator.asgi:application"
logger = logging.getLogger("uvicorn.error")


def listening_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def inherited_socket(fd: int) -> socket.socket:
    """A socket the caller bound; family, type and protocol are read from the descriptor (uvicorn's own
    --fd calls every such socket a Unix one, which no loop sets TCP_NODELAY on)."""
    sock = socket.socket(fileno=fd)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def config(workers: int, log_level: str = "info", loop: str = "uvloop") -> uvicorn.Config:
    return uvicorn.Config(
        APP,
        http="httptools",
        loop=loop,
        lifespan="off",
        workers=workers,
        log_level=log_level,
    )


def run(sock: socket.socket, workers: int, log_level: str = "info", loop: str = "uvloop") -> None:
    cfg = config(workers, log_level, loop)  # each web process loads the app itself
    host, port = sock.getsockname()[:2]
    logger.info("Serving on http://%s:%d with %d web process(es)", host, port, workers)
    if workers > 1:
        Multiprocess(cfg, sockets=[sock]).run()
    else:
        uvicorn.Server(cfg).run(sockets=[sock])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--fd", type=int, default=None, help="serve on this already bound socket")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--loop", choices=["uvloop", "asyncio"], default="uvloop")
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    sock = inherited_socket(args.fd) if args.fd is not None else listening_socket(args.host, args.port)
    run(sock, args.workers, args.log_level, args.loop)


if __name__ == "__main__":
    main()
