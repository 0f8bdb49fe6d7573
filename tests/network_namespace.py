"""Another host on this machine: a network namespace joined to this one by a veth
pair, and TCP forwarders on this end of the pair that relay to servers listening
on 127.0.0.1 only. Needs root (ip netns)."""
import asyncio
import os
import subprocess
import threading

RELAY_BYTES = 1 << 16


def ip(*arguments):
    subprocess.run(["ip", *arguments], check=True, capture_output=True)


class NetworkNamespace:
    """`name`, reachable from here at `inside` and reaching this host at `host` (a /30 of
    link-local addresses taken from our pid, so that two runs at once do not collide)."""

    def __init__(self):
        pid = os.getpid()
        self.name = f"intake-test-{pid}"
        self.host_link, self.inside_link = f"ik{pid}h", f"ik{pid}n"
        block = pid % (254 * 64)
        prefix, first = f"169.254.{block // 64 + 1}", block % 64 * 4
        self.host, self.inside = f"{prefix}.{first + 1}", f"{prefix}.{first + 2}"

    def create(self):
        ip("netns", "add", self.name)
        ip("link", "add", self.host_link, "type", "veth", "peer", "name", self.inside_link)
        ip("link", "set", self.inside_link, "netns", self.name)
        ip("addr", "add", f"{self.host}/30", "dev", self.host_link)
        ip("link", "set", self.host_link, "up")
        for command in (["addr", "add", f"{self.inside}/30", "dev", self.inside_link],
                        ["link", "set", self.inside_link, "up"], ["link", "set", "lo", "up"]):
            ip("netns", "exec", self.name, "ip", *command)
        return self

    def command(self, *argv):
        """argv run inside the namespace."""
        return ["ip", "netns", "exec", self.name, *argv]

    def remove(self):
        """Deleting either end of the pair deletes both; every step is skipped if already gone."""
        subprocess.run(["ip", "link", "del", self.host_link], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)


class Forwarders:
    """TCP relays on an event loop in a thread of their own: forward(address, port) makes
    connections to address:port reach 127.0.0.1:port."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.servers = []
        self.streams = set()

    def start(self):
        self.thread.start()
        return self

    def forward(self, address, port):
        server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(lambda reader, writer: self._relay(reader, writer, port), address, port),
            self.loop).result(timeout=10)
        self.servers.append(server)

    async def _relay(self, client_reader, client_writer, port):
        try:
            server_reader, server_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_writer.close()
            return
        self.streams.update((client_writer, server_writer))
        await asyncio.gather(self._pipe(client_reader, server_writer), self._pipe(server_reader, client_writer))

    async def _pipe(self, reader, writer):
        """Copies until either side ends, then closes: a peer that dies ends its relayed connection too."""
        try:
            while data := await reader.read(RELAY_BYTES):
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()
            self.streams.discard(writer)

    def stop(self):
        async def close_all():
            for server in self.servers:
                server.close()
            for writer in list(self.streams):
                writer.close()
        asyncio.run_coroutine_threadsafe(close_all(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
