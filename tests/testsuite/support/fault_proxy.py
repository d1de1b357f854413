#!/usr/bin/env python3
"""A fault-injecting HTTP proxy for kiln's registry tests.

It forwards every request to a real registry (`--upstream HOST:PORT`), except where a rule
says otherwise, and logs each request as a JSON line to `--log`, before answering it: a client that has its
answer finds the request in the log (the test reads it as soon as kiln exits). It prints its
port on stdout once it listens.

A rule is "METHOD PATH-REGEX ACTION TIMES" (TIMES: a count, or "always"). Actions:
  status:CODE[:RETRY-AFTER]  answer CODE without forwarding (with Retry-After seconds, or
                             `date+N`: an HTTP-date N seconds from now)
  tamper                     forward, then flip one byte of the response body
  truncate                   forward, then send half the body and close the connection
  endless:CODE               answer CODE with a chunked body that never ends (64 KiB pieces,
                             1 ms apart, up to 1 GiB); when the client hangs up, log a line
                             with method "SENT" and action "sent:BYTES"
  body:FILE                  answer 200 with FILE's bytes (a manifest's media type for
                             /manifests/ paths)

With `--bearer USER:PASSWORD`, it also plays a registry with token auth (the Docker/OCI
token flow): `/v2/` requests without `Authorization: Bearer <token>` get a 401 with a
`WWW-Authenticate: Bearer realm=".../token",service="kiln-test"` challenge, and `GET /token`
answers `{"token": ...}` to those who present USER:PASSWORD with HTTP basic auth. The token is
`--static-token` when given (also accepted as is), else a fixed test token.
"""
import base64
import argparse
import email.utils
import http.client
import http.server
import json
import re
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--upstream", required=True)
parser.add_argument("--log", required=True)
parser.add_argument("--rule", action="append", default=[])
parser.add_argument("--bearer")
parser.add_argument("--static-token", default="kiln-test-token")
args = parser.parse_args()

rules = []
for text in args.rule:
    method, pattern, action, times = text.split(" ")
    rules.append({
        "method": method,
        "re": re.compile(pattern),
        "action": action,
        "left": None if times == "always" else int(times),
    })
lock = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "proxy-connection"}


def pick(method, path):
    with lock:
        for rule in rules:
            if rule["method"] not in ("*", method) or not rule["re"].search(path):
                continue
            if rule["left"] is None:
                return rule["action"]
            if rule["left"] > 0:
                rule["left"] -= 1
                return rule["action"]
    return None


current = threading.local()


def log(entry):
    entry["t"] = time.time()
    # Whether the request carried an Authorization header (never its value).
    entry["authorization"] = getattr(current, "authorization", False)
    with lock, open(args.log, "a") as f:
        f.write(json.dumps(entry) + "\n")


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *_):
        pass

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return body
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def bearer_gate(self):
        """True when the request may pass; otherwise it has been answered."""
        if not args.bearer:
            return True
        def answer(code, body, headers=()):
            log({"method": self.command, "path": self.path, "status": code, "action": "auth"})
            self.send_response(code)
            for key, value in headers:
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)
        if self.path.startswith("/token"):
            action = pick(self.command, self.path)
            if action and action.startswith("endless:"):
                self.endless(int(action.split(":")[1]), action)
                return False
            expected = "Basic " + base64.b64encode(args.bearer.encode()).decode()
            if self.headers.get("Authorization") == expected:
                answer(200, json.dumps({"token": args.static_token}).encode(),
                       [("Content-Type", "application/json")])
            else:
                answer(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}')
            return False
        if self.headers.get("Authorization") == "Bearer " + args.static_token:
            return True
        host = self.headers.get("Host")
        challenge = f'Bearer realm="http://{host}/token",service="kiln-test"'
        answer(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"token required"}]}',
               [("WWW-Authenticate", challenge), ("Content-Type", "application/json")])
        return False

    def handle_any(self):
        current.authorization = "Authorization" in self.headers
        body = self.read_body()
        if not self.bearer_gate():
            return
        action = pick(self.command, self.path)
        if action and action.startswith("endless:"):
            self.endless(int(action.split(":")[1]), action)
            return
        if action and action.startswith("body:"):
            with open(action[len("body:"):], "rb") as f:
                data = f.read()
            log({"method": self.command, "path": self.path, "status": 200, "action": "body"})
            self.send_response(200)
            kind = ("application/vnd.oci.image.manifest.v1+json" if "/manifests/" in self.path
                    else "application/octet-stream")
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        if action and action.startswith("status:"):
            parts = action.split(":")
            code = int(parts[1])
            text = b"injected fault\n"
            log({"method": self.command, "path": self.path, "status": code, "action": action})
            self.send_response(code)
            if len(parts) > 2 and parts[2].startswith("date+"):
                at = time.time() + int(parts[2][len("date+"):])
                self.send_header("Retry-After", email.utils.formatdate(at, usegmt=True))
            elif len(parts) > 2:
                self.send_header("Retry-After", parts[2])
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(text)
            return
        upstream = http.client.HTTPConnection(args.upstream, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        upstream.request(self.command, self.path, body=body, headers=headers)
        response = upstream.getresponse()
        data = response.read()
        upstream.close()
        log({"method": self.command, "path": self.path, "status": response.status,
             "action": action or "forward"})
        self.send_response(response.status)
        for key, value in response.getheaders():
            if key.lower() not in HOP:
                self.send_header(key, value)
        if self.command == "HEAD":
            self.send_header("Content-Length", response.getheader("Content-Length", "0"))
            self.end_headers()
        elif action == "truncate" and data:
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            self.close_connection = True
        else:
            if action == "tamper" and data:
                middle = len(data) // 2
                data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    def endless(self, code, action):
        log({"method": self.command, "path": self.path, "status": code, "action": action})
        self.send_response(code)
        self.send_header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        piece = b"x" * 65536
        sent = 0
        try:
            while sent < 1 << 30:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.flush()
                sent += len(piece)
                time.sleep(0.001)
        except OSError:
            pass
        self.close_connection = True
        log({"method": "SENT", "path": self.path, "status": code, "action": f"sent:{sent}"})

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
