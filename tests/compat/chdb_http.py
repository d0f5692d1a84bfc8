#!/usr/bin/env python3
"""The part of ClickHouse's HTTP interface that Splitstream's client uses, in front of a
current ClickHouse embedded by chdb, so that tests can point the real `splitstream` binary
at a current release (Debian ships 18.16, which the test stack runs).

This forwards every statement to chdb's ClickHouse unchanged; it interprets nothing but the
transport:
- GET /ping answers "Ok.\\n"; GET /?query=... runs the query;
- POST /?params: the statement is the `query` parameter with the body as its data (an
  INSERT ... FORMAT F: the body is written to a file and inserted with the `file` table
  function, typed by the table's own columns), or the body itself; `database` selects the
  database; the HTTP-only parameters (`enable_http_compression`, `wait_end_of_query`) are
  dropped and any other parameter is a setting (SET); a gzip body (Content-Encoding) is
  inflated; the answer is TabSeparated unless the statement names a format;
- a ClickHouse error is HTTP 500 with ClickHouse's own message and its code in
  X-ClickHouse-Exception-Code, as a ClickHouse server answers.

Run with the python of scripts/install-chdb's virtualenv:
    chdb_http.py PORT_FILE DATA_DIR
It listens on 127.0.0.1 on a free port, writes that port to PORT_FILE once it accepts
connections, and serves until SIGTERM.
"""

import gzip
import http.server
import os
import re
import signal
import sys
import tempfile
import threading
import urllib.parse

from chdb import session

HTTP_ONLY = {"database", "query", "enable_http_compression", "wait_end_of_query"}
INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+(?:(?P<db>`[^`]+`|\w+)\s*\.\s*)?(?P<table>`[^`]+`|\w+)\s*"
    r"(?:\((?P<columns>[^)]*)\))?\s*FORMAT\s+(?P<format>\w+)\s*$",
    re.IGNORECASE | re.DOTALL,
)
CODE = re.compile(r"Code:\s*(\d+)")


def unquote(name):
    name = name.strip()
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def quote_string(s):
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class Engine:
    """One chdb session, used by one request at a time."""

    def __init__(self, data_dir):
        self.session = session.Session(data_dir)
        self.lock = threading.Lock()
        self.spool = tempfile.mkdtemp(prefix="spool-", dir=data_dir)

    def run(self, sql, database, settings, data):
        with self.lock:
            self.session.query("USE " + (database or "default"))
            for name, value in settings.items():
                self.session.query("SET %s = %s" % (name, quote_string(value)))
            insert = INSERT.match(sql) if data else None
            if insert:
                return self.insert(insert, database, data)
            return self.session.query(sql, "TabSeparated").bytes()

    def insert(self, match, database, data):
        db = unquote(match.group("db")) if match.group("db") else (database or "default")
        table = unquote(match.group("table"))
        types = dict(
            line.split("\t", 1)
            for line in self.session.query(
                "SELECT name, type FROM system.columns WHERE database = %s AND table = %s"
                % (quote_string(db), quote_string(table)), "TabSeparated").bytes().decode().splitlines()
        )
        columns = ([unquote(c) for c in match.group("columns").split(",")]
                   if match.group("columns") else list(types))
        missing = [c for c in columns if c not in types]
        if missing:
            raise RuntimeError("Code: 16. DB::Exception: No such column %s in table %s.%s"
                               % (missing[0], db, table))
        structure = ", ".join("`%s` %s" % (c, types[c]) for c in columns)
        path = os.path.join(self.spool, "insert.bin")
        with open(path, "wb") as f:
            f.write(data)
        try:
            self.session.query(
                "INSERT INTO `%s`.`%s` (%s) SELECT * FROM file(%s, %s, %s)"
                % (db, table, ", ".join("`%s`" % c for c in columns), quote_string(path),
                   quote_string(match.group("format")), quote_string(structure)))
        finally:
            os.unlink(path)
        return b""


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    engine = None

    def log_message(self, fmt, *args):  # one line per request on stderr, as the base does
        sys.stderr.write("chdb_http: %s\n" % (fmt % args))

    def answer(self, status, body, headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/ping":
            self.answer(200, b"Ok.\n")
        elif url.path == "/" and "query=" in url.query:
            self.execute(b"")
        else:
            self.answer(404, b"only /ping, GET /?query= and POST are served here\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.headers.get("Content-Encoding", "").lower() == "gzip":
            body = gzip.decompress(body)
        self.execute(body)

    def execute(self, body):
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query,
                                             keep_blank_values=True))
        if "query" in params:
            sql, data = params["query"], body
        else:
            sql, data = body.decode(), b""
        settings = {k: v for k, v in params.items() if k not in HTTP_ONLY}
        try:
            out = self.engine.run(sql, params.get("database"), settings, data)
        except Exception as e:  # noqa: BLE001 - every engine error goes back to the client
            message = str(e)
            code = CODE.search(message)
            headers = [("X-ClickHouse-Exception-Code", code.group(1))] if code else []
            self.answer(500, (message + "\n").encode(), headers)
            return
        self.answer(200, out)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: chdb_http.py PORT_FILE DATA_DIR")
    port_file, data_dir = sys.argv[1], sys.argv[2]
    os.makedirs(data_dir, exist_ok=True)
    Handler.engine = Engine(data_dir)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(port_file + ".tmp", port_file)
    print("chdb_http: ClickHouse %s on 127.0.0.1:%d"
          % (Handler.engine.session.query("SELECT version()", "TabSeparated").bytes().decode()
             .strip(), server.server_address[1]), flush=True)
    server.serve_forever()
    Handler.engine.session.close()


if __name__ == "__main__":
    main()
