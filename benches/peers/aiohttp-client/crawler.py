#!/usr/bin/env python3
"""Benchmark peer: the aiox `crawler` example's command line on Python aiohttp.

    crawler.py [--concurrency C] [--limit-per-host H] [--limit L] [--requests N]
               [--timeout S] [--memory] URL...

Fetches the URLs (cycling through them until N requests, default one each)
over one `ClientSession` with `TCPConnector(limit=L or C, limit_per_host=H)`,
at most C requests in flight, reads every body to its end and prints

    requests=N ok=K errors=E elapsed_s=T req_per_s=R
    status 200=K 404=M ...
    memory rss_kib=R idle_connections=I        (only with --memory)

aiohttp speaks no HTTP/2: `--http2-prior-knowledge` is refused (exit 2).
Plain asyncio event loop (no uvloop), as aiohttp is installed by default.
"""

import argparse
import asyncio
import collections
import os
import sys
import time

import aiohttp


def positive(text):
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive integer")
    return n


def non_negative(text):
    n = int(text)
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is negative")
    return n


def seconds(text):
    s = float(text)
    if not s > 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return s


def parse_args():
    p = argparse.ArgumentParser(description="aiohttp client benchmark peer")
    p.add_argument("--concurrency", type=positive, default=64)
    p.add_argument("--limit-per-host", type=non_negative, default=0)
    p.add_argument("--limit", type=non_negative, default=0)
    p.add_argument("--requests", type=positive, default=None)
    # aiohttp's ClientTimeout(total=300).
    p.add_argument("--timeout", type=seconds, default=300.0)
    p.add_argument("--http2-prior-knowledge", action="store_true")
    p.add_argument("--memory", action="store_true")
    p.add_argument("urls", nargs="+", metavar="URL")
    args = p.parse_args()
    if args.http2_prior_knowledge:
        p.error("aiohttp has no HTTP/2: --http2-prior-knowledge is not supported")
    if args.requests is None:
        args.requests = len(args.urls)
    return args


def rss_kib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tcp_states():
    """This process's TCP sockets: (established, still connecting)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:["):-1])
    established = connecting = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    fields = line.split()
                    # Field 3 is the state (01 ESTABLISHED, 02 SYN_SENT), field 9 the inode.
                    if len(fields) > 9 and fields[9] in inodes:
                        if fields[3] == "01":
                            established += 1
                        elif fields[3] == "02":
                            connecting += 1
        except OSError:
            pass
    return established, connecting


async def settled_connections():
    """Waits until the pool is at rest and returns the connections in it.

    At least 100 ms (connections whose last response just ended go back to the
    pool), then until no connect is still in flight (SYNs dropped by a full
    accept queue are retried 1 s, 3 s, ... later), 10 s at most.
    """
    deadline = time.monotonic() + 10
    while True:
        await asyncio.sleep(0.1)
        established, connecting = tcp_states()
        if connecting == 0 or time.monotonic() >= deadline:
            return established


async def crawl(args):
    urls = args.urls
    n = args.requests
    tasks = min(args.concurrency, n)
    if args.limit:
        tasks = min(tasks, args.limit)
    statuses = collections.Counter()
    failed = 0
    first_error = None
    next_index = 0

    connector = aiohttp.TCPConnector(
        limit=args.limit or args.concurrency, limit_per_host=args.limit_per_host
    )
    timeout = aiohttp.ClientTimeout(total=args.timeout)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def worker():
            nonlocal next_index, failed, first_error
            while next_index < n:
                url = urls[next_index % len(urls)]
                next_index += 1
                try:
                    async with session.get(url) as resp:
                        await resp.read()
                        statuses[resp.status] += 1
                except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
                    failed += 1
                    if first_error is None:
                        first_error = f"{type(e).__name__}: {e}"

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(tasks)))
        elapsed = time.perf_counter() - started

        ok = sum(c for s, c in statuses.items() if s < 400)
        out = [
            f"requests={n} ok={ok} errors={n - ok} elapsed_s={elapsed:.3f} "
            f"req_per_s={n / max(elapsed, 1e-9):.1f}",
            " ".join(["status"] + [f"{s}={statuses[s]}" for s in sorted(statuses)]),
        ]
        if args.memory:
            idle = await settled_connections()
            out.append(f"memory rss_kib={rss_kib()} idle_connections={idle}")
        sys.stdout.write("\n".join(out) + "\n")
        sys.stdout.flush()
    if first_error is not None:
        print(f"{failed} request(s) failed; first: {first_error}", file=sys.stderr)


def main():
    args = parse_args()
    asyncio.run(crawl(args))


if __name__ == "__main__":
    main()
