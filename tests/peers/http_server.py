#!/usr/bin/env python3
"""A small HTTPS file server for the download tests, with misbehaviours by path.

  http_server.py DIR PORT CERT KEY

Serves DIR on 127.0.0.1:PORT over TLS. /files/NAME is NAME with Range support; the other
prefixes change that:
  /cut-once/NAME  the first request gets its headers and half its bytes, then the
                  connection is closed; later requests are answered as /files/ does
  /norange/NAME   ignores Range: always 200 with the whole file
  /short/NAME     the file without its last 1000 bytes (as if that were all there is)
  /stall/NAME     headers and 1000 bytes, then nothing while the client waits
  /garbage...     200 with an HTML page, whatever follows
Every request is logged to DIR/requests.log as "PATH RANGE".
"""

import http.server
import os
import ssl
import sys
import threading
import time

ROOT = sys.argv[1]
cut_done = set()
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        with lock, open(os.path.join(ROOT, "requests.log"), "a") as log:
            log.write(f"{self.path} {self.headers.get('Range', '-')}\n")
        if self.path.startswith("/garbage"):
            return self.send(200, b"<html><body>502 Bad Gateway, but as a 200</body></html>", "text/html")
        _, mode, name = (self.path.split("/", 2) + ["", ""])[:3]
        path = os.path.join(ROOT, os.path.basename(name))
        if mode not in ("files", "cut-once", "norange", "short", "stall") or not os.path.isfile(path):
            return self.send(404, b"not found\n", "text/plain")
        with open(path, "rb") as f:
            data = f.read()
        if mode == "short":
            data = data[:-1000]
        start = 0
        ranged = self.headers.get("Range", "")
        if ranged.startswith("bytes=") and mode != "norange":
            start = int(ranged[6:].split("-")[0])
            if start >= len(data):
                return self.send(416, b"", "text/plain", {"Content-Range": f"bytes */{len(data)}"})
        body = data[start:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        if mode == "stall":
            self.wfile.write(body[:1000])
            self.wfile.flush()
            time.sleep(3600)
            return
        with lock:
            cut = mode == "cut-once" and name not in cut_done
            cut_done.add(name)
        if cut:
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return
        self.wfile.write(body)

    def send(self, status, body, kind, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body)


def main():
    port, cert, key = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
