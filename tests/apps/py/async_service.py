"""A single-threaded event-loop HTTP/1.1 service (asyncio, stdlib only):
GET /work/<id>?next=PORT waits DELAY seconds, then fetches
http://127.0.0.1:PORT/leaf/<id> over a new connection and answers 200.
Many requests are in flight on its one thread at once."""
import asyncio
import sys
import urllib.parse

DELAY = float(sys.argv[2]) if len(sys.argv) > 2 else 0.2


async def fetch(port, path):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


async def handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            target = head.split(b" ")[1].decode()
            u = urllib.parse.urlsplit(target)
            body = b"ok\n"
            if u.path.startswith("/work/"):
                await asyncio.sleep(DELAY)
                port = int(urllib.parse.parse_qs(u.query)["next"][0])
                await fetch(port, "/leaf/" + u.path.split("/")[2])
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main():
    srv = await asyncio.start_server(handle, "127.0.0.1", int(sys.argv[1]))
    print("listening", flush=True)
    async with srv:
        await srv.serve_forever()


asyncio.run(main())
