"""HTTP for the benchmarks: a logged-in browser session, a lean keep-alive
connection for API clients, and the small helpers every bench needs (log,
percentile; wait_for is scripts/services.py's).

    from bench.http_session import Client, KeepAlive, log, percentile
"""
import http.client
import re
import socket
import time
import uuid
from urllib.parse import urlencode, urlsplit


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def percentile(values, share):
    """Nearest-rank percentile of `values` (share 0..1); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(share * len(ordered) + 0.5)) - 1))]


# ---------------------------------------------------------------- a logged-in browser

class Client:
    """A browser's session: cookies, CSRF tokens, the login form, the upload form.
    Every request opens a new connection, as a page load would."""

    def __init__(self, port):
        self.port = port
        self.cookies = {}

    @property
    def cookie_header(self):
        return "; ".join(f"{name}={value}" for name, value in self.cookies.items())

    def request(self, method, path, body=None, headers=None, timeout=60):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            headers = dict(headers or {})
            if self.cookies:
                headers["Cookie"] = self.cookie_header
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            content = response.read().decode("utf-8", "replace")
            for header in response.msg.get_all("Set-Cookie") or []:
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, response.getheader("Location") or "", content
        finally:
            connection.close()

    def csrf_token(self, path):
        status, _, page = self.request("GET", path)
        match = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        if status != 200 or not match:
            raise RuntimeError(f"GET {path} answered {status} without a CSRF token")
        return match.group(1)

    def log_in(self, email, password):
        body = urlencode({"email": email, "password": password, "csrf_token": self.csrf_token("/login")})
        status, _, _ = self.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        if status != 303:
            raise RuntimeError(f"logging in answered {status}")

    def upload(self, path, on_duplicate="skip", timeout=1800):
        """POST /uploads/new with the file streamed from disk; returns the upload id."""
        boundary = "bench" + uuid.uuid4().hex
        fields = {"csrf_token": self.csrf_token("/uploads/new"), "on_duplicate": on_duplicate}
        head = "".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                       for name, value in fields.items())
        head = (head + f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{path.name}"\r\n'
                "Content-Type: text/csv\r\n\r\n").encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            connection.putrequest("POST", "/uploads/new")
            connection.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
            connection.putheader("Content-Length", str(len(head) + path.stat().st_size + len(tail)))
            connection.putheader("Cookie", self.cookie_header)
            connection.endheaders()
            connection.send(head)
            with open(path, "rb") as file:
                while block := file.read(1 << 20):
                    connection.send(block)
            connection.send(tail)
            response = connection.getresponse()
            content = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        match = re.search(r"/uploads/(\d+)$", response.getheader("Location") or "")
        if response.status != 303 or not match:
            raise RuntimeError(f"upload answered {response.status}: {content[:300]}")
        return int(match.group(1))


# ---------------------------------------------------------------- a lean API client

class Closed(ConnectionError):
    """The server closed the connection before answering."""


class KeepAlive:
    """One keep-alive HTTP/1.1 connection that costs the client as little CPU as it can:
    fixed headers formatted once, the request sent with one sendall, the answer read by
    its Content-Length (no header objects, no redirects, no cookies). Plain http:// only.

    A request on a reused connection that the server had closed while idle (gunicorn's
    keep-alive timeout) is sent again once on a new connection, as browsers do;
    `reconnects` counts those."""

    def __init__(self, url, headers=None, timeout=60):
        parts = urlsplit(url)
        if parts.scheme != "http":
            raise ValueError(f"only http:// URLs, not {url}")
        self.address = (parts.hostname, parts.port or 80)
        self.prefix = parts.path.rstrip("/")
        self.fixed = f"Host: {parts.netloc}\r\n" + "".join(f"{name}: {value}\r\n"
                                                            for name, value in (headers or {}).items())
        self.timeout = timeout
        self.sock = None
        self.buffer = b""
        self.reconnects = 0

    def close(self):
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buffer = None, b""

    def _connect(self):
        self.close()
        self.sock = socket.create_connection(self.address, timeout=self.timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method, path, body=None, content_type="application/json"):
        """(status, body bytes) of one request; `body` is bytes or None."""
        head = f"{method} {self.prefix}{path} HTTP/1.1\r\n{self.fixed}"
        if body is not None:
            head += f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
        data = (head + "\r\n").encode("latin-1") + (body or b"")
        reused = self.sock is not None
        if not reused:
            self._connect()
        try:
            self.sock.sendall(data)
            return self._answer()
        except (Closed, BrokenPipeError, ConnectionResetError):
            if not reused or self.buffer:
                raise
        self.reconnects += 1
        self._connect()
        self.sock.sendall(data)
        return self._answer()

    def _read(self):
        chunk = self.sock.recv(262144)
        if not chunk:
            raise Closed("the server closed the connection")
        self.buffer += chunk

    def _answer(self):
        while (end := self.buffer.find(b"\r\n\r\n")) < 0:
            self._read()
        lines = self.buffer[:end].decode("latin-1").split("\r\n")
        self.buffer = self.buffer[end + 4:]
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        if "content-length" in headers:
            length = int(headers["content-length"])
            while len(self.buffer) < length:
                self._read()
            body, self.buffer = self.buffer[:length], self.buffer[length:]
        elif "chunked" in headers.get("transfer-encoding", ""):
            raise RuntimeError("chunked answers are not supported by this client")
        else:  # the answer ends when the server closes the connection
            try:
                while True:
                    self._read()
            except Closed:
                pass
            body = self.buffer
            self.close()
        if headers.get("connection") == "close":
            self.close()
        return status, body
