#!/usr/bin/env python3
"""Splitstream's ClickHouse SQL on a current ClickHouse beside Debian's 18.16.

The schema of `splitstream migrate`, the results engine's queries (printed by
clickhouse_sql_dump, the C++ builders themselves) and what the sink's writer reads of the
tables run on the 18.16 server of the test stack
(SPLITSTREAM_CLICKHOUSE_URL) and on a current ClickHouse embedded by chdb (the virtualenv
of scripts/install-chdb, SPLITSTREAM_CHDB_PYTHON), over the same rows: superseded versions, a
deleted assignment, deleted events whose delete marker carries only the key, a truncation,
another experiment's rows. Every query must run on both and give the same answer; the
users per variant and the count metric's sums must also equal what this script computes
from the rows it wrote.

    clickhouse_current_test.py PATH/TO/clickhouse_sql_dump
"""

import json
import math
import os
import random
import subprocess
import sys
import urllib.parse
import urllib.request

DATABASE = "compat_%d" % os.getpid()
VARIANTS = (1, 2)
# What the sink's writer reads to learn the tables (libs/pipeline/src/clickhouse_writer.cc,
# Load): the key and the column types it parses. Current releases quote a keyword in
# sorting_key (`table`), which the writer strips: compared without backquotes.
WRITER_QUERIES = {
    "writer_keys": "SELECT name, sorting_key FROM system.tables WHERE database = '%s' "
                   "ORDER BY name" % DATABASE,
    "writer_columns": "SELECT table, name, type FROM system.columns WHERE database = '%s' "
                      "ORDER BY table, name" % DATABASE,
}


def fail(message):
    print("FAILED: " + message, file=sys.stderr)
    sys.exit(1)


def ts(seconds):
    """A DateTime literal and its microseconds, `seconds` after 2026-11-20 00:00:00 UTC."""
    base = 1763596800  # 2026-11-20 00:00:00 UTC
    t = base + seconds
    return (
        "toDateTime(%d, 'UTC')" % t,
        t * 1_000_000,
    )


def fixture():
    """INSERT statements (unqualified tables) and the expected figures they imply."""
    rng = random.Random(20261207)
    version = 1000
    statements = []
    assignments = {}  # user -> (variant, exposed_us) after deduplication
    assignment_rows = []
    for u in range(240):
        user = "u%03d" % u
        variant = VARIANTS[u % 2]
        at, at_us = ts(3600 * 24 * 15 + u * 60)
        if u % 17 == 0:  # an older, superseded version with the other variant
            other = VARIANTS[(u + 1) % 2]
            assignment_rows.append((1, user, other, at, at_us, version, 0))
            version += 1
        assignment_rows.append((1, user, variant, at, at_us, version, 0))
        version += 1
        assignments[user] = (variant, at_us)
    # A deleted assignment: the user is not exposed.
    assignment_rows.append((1, "u007", 2, ts(0)[0], ts(0)[1], version, 1))
    version += 1
    del assignments["u007"]
    # Another experiment's assignment of a user.
    assignment_rows.append((9, "u001", 5, ts(0)[0], ts(0)[1], version, 0))
    version += 1
    statements.append(
        "INSERT INTO assignments (experiment_id, user_id, variant_id, assigned_at, "
        "assigned_at_us, _version, _deleted, _source_ts_ms) VALUES "
        + ", ".join(
            "(%d, '%s', %d, %s, %d, %d, %d, %d)"
            % (e, user, v, at, at_us, ver, deleted, 1_700_000_000_000 + ver)
            for (e, user, v, at, at_us, ver, deleted) in assignment_rows
        )
    )

    event_rows = []
    live = {}  # (event_id, ts_us) -> (user, type, value) of experiment 1, after deduplication
    n = 0
    for user in sorted(assignments) + ["u007"]:
        variant = VARIANTS[int(user[1:]) % 2]
        exposed_us = assignments.get(user, (variant, ts(0)[1]))[1]
        for _ in range(rng.randint(0, 9)):
            n += 1
            event_type = rng.choice(["purchase", "view", "view", "latency", "other"])
            # From 20 days before exposure (CUPED's pre-period) to 4 days after (the window).
            offset = rng.randint(-20 * 24 * 3600, 4 * 24 * 3600)
            at, at_us = ts((exposed_us // 1_000_000 - 1763596800) + offset)
            value = "NULL" if rng.random() < 0.1 else "%.3f" % rng.uniform(0, 100)
            key = ("e%05d" % n, at_us)
            if n % 13 == 0:  # superseded by a later version with another value
                event_rows.append((key, 1, variant, user, event_type, "1.5", at, version, 0))
                version += 1
            event_rows.append((key, 1, variant, user, event_type, value, at, version, 0))
            version += 1
            live[key] = (user, event_type, value)
            if n % 29 == 0:  # deleted: the marker carries only the key
                event_rows.append((key, 0, 0, "", "", "NULL", at, version, 1))
                version += 1
                del live[key]
    # Another experiment's event.
    event_rows.append((("x1", ts(0)[1]), 9, 5, "u001", "purchase", "3", ts(0)[0], version, 0))
    version += 1
    statements.append(
        "INSERT INTO events (event_id, experiment_id, variant_id, user_id, event_type, value, "
        "properties, ts, ts_us, received_at, received_at_us, _version, _deleted, _source_ts_ms) "
        "VALUES "
        + ", ".join(
            "('%s', %d, %d, '%s', '%s', %s, '{}', %s, %d, %s, %d, %d, %d, %d)"
            % (key[0], e, v, user, t, value, at, key[1], at, key[1], ver, deleted,
               1_700_000_000_000 + ver)
            for (key, e, v, user, t, value, at, ver, deleted) in event_rows
        )
    )
    # Truncations: one of events at version 5 (below every row: removes nothing), and the
    # baseline row each table gets from migrate's first use.
    statements.append(
        "INSERT INTO _truncations (`table`, version) VALUES ('events', 5), ('assignments', 0), "
        "('events', 0), ('experiments', 0), ('variants', 0)"
    )
    statements.append(
        "INSERT INTO experiments (id, key, name, description, status, traffic, layer, "
        "layer_start, layer_end, seed, hash_version, metrics, allocation_version, created_at, "
        "created_at_us, updated_at, updated_at_us, _version, _deleted, _source_ts_ms) VALUES "
        "(1, 'checkout', 'Checkout', '', 'running', 1, NULL, 0, 1, 'checkout', 2, '[]', 1, "
        "%s, %d, %s, %d, 1, 0, 1700000000001)" % (ts(0)[0], ts(0)[1], ts(0)[0], ts(0)[1])
    )
    statements.append(
        "INSERT INTO variants (id, experiment_id, key, weight, position, _version, _deleted, "
        "_source_ts_ms) VALUES (1, 1, 'control', 0.5, 0, 2, 0, 1700000000002), "
        "(2, 1, 'b', 0.5, 1, 3, 0, 1700000000003)"
    )

    users = {v: 0 for v in VARIANTS}
    for variant, _ in assignments.values():
        users[variant] += 1
    # The count metric "views": per exposed user, views at or after exposure (no window).
    views = {v: [0, 0] for v in VARIANTS}  # sum, sum of squares
    per_user = {}
    for (event_id, at_us), (user, event_type, _) in live.items():
        if event_type != "view" or user not in assignments:
            continue
        if at_us >= assignments[user][1]:
            per_user[user] = per_user.get(user, 0) + 1
    for user, count in per_user.items():
        variant = assignments[user][0]
        views[variant][0] += count
        views[variant][1] += count * count
    return statements, {"users": users, "views": views}


class Stack1816:
    """The test stack's ClickHouse 18.16 over HTTP."""

    def __init__(self, url):
        self.url = url.rstrip("/") + "/"

    def run(self, sql, database=None, select=False):
        params = {}
        if database:
            params["database"] = database
        if select:
            sql += " FORMAT TabSeparated"
        request = urllib.request.Request(
            self.url + "?" + urllib.parse.urlencode(params), data=sql.encode(), method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=120) as response:
                return response.read().decode()
        except urllib.error.HTTPError as e:
            raise RuntimeError(e.read().decode().strip()) from None


class Chdb:
    """A current ClickHouse in the chdb virtualenv, fed over a pipe (one process)."""

    SERVER = r"""
import json, sys
from chdb import session
s = session.Session()
for line in sys.stdin:
    request = json.loads(line)
    try:
        if request["database"]:
            s.query("USE " + request["database"])
        out = s.query(request["sql"], "TabSeparated" if request["select"] else "CSV")
        print(json.dumps({"ok": str(out)}), flush=True)
    except Exception as e:
        print(json.dumps({"error": str(e)}), flush=True)
"""

    def __init__(self, python):
        self.process = subprocess.Popen(
            [python, "-c", self.SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, sql, database=None, select=False):
        self.process.stdin.write(
            json.dumps({"sql": sql, "database": database, "select": select}) + "\n"
        )
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("chdb exited")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(answer["error"])
        return answer["ok"]

    def version(self):
        return self.run("SELECT version()", select=True).strip()

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=30)


def fields(tsv):
    return [line.split("\t") for line in tsv.strip("\n").split("\n") if line]


def same_value(a, b):
    if a == b:
        return True
    if a.startswith("[") and b.startswith("["):
        xs, ys = a.strip("[]").split(","), b.strip("[]").split(",")
        return len(xs) == len(ys) and all(same_value(x, y) for x, y in zip(xs, ys))
    try:
        x, y = float(a), float(b)
    except ValueError:
        return False
    return math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)


def main():
    if len(sys.argv) != 2:
        fail("usage: clickhouse_current_test.py PATH/TO/clickhouse_sql_dump")
    url = os.environ.get("SPLITSTREAM_CLICKHOUSE_URL", "")
    python = os.environ.get("SPLITSTREAM_CHDB_PYTHON", "")
    if not url:
        fail("SPLITSTREAM_CLICKHOUSE_URL is not set: run through scripts/test")
    if not python or not os.access(python, os.X_OK):
        fail("SPLITSTREAM_CHDB_PYTHON (%r) is not chdb's python: run scripts/install-chdb, "
             "as scripts/test does" % python)
    dump = json.loads(subprocess.run([sys.argv[1], DATABASE], check=True,
                                     capture_output=True, text=True).stdout)
    statements, expected = fixture()

    old, new = Stack1816(url), Chdb(python)
    passed = failed = 0
    try:
        old_version = old.run("SELECT version()", select=True).strip()
        new_version = new.version()
        print("ClickHouse %s (test stack) and %s (chdb)" % (old_version, new_version))
        answers = {}
        for name, server in (("18.16", old), ("current", new)):
            for sql in dump["schema"]:
                try:
                    server.run(sql)
                except RuntimeError as e:
                    fail("schema statement fails on %s: %s\n%s" % (name, e, sql))
            for sql in statements:
                server.run(sql, database=DATABASE)
            queries = dict(dump["queries"], **WRITER_QUERIES)
            for query, sql in sorted(queries.items()):
                try:
                    answers[(name, query)] = server.run(sql, database=DATABASE, select=True)
                    if query == "writer_keys":
                        answers[(name, query)] = answers[(name, query)].replace("`", "")
                except RuntimeError as e:
                    answers[(name, query)] = e
        for query in sorted(queries):
            a, b = answers[("18.16", query)], answers[("current", query)]
            problems = []
            for name, answer in (("18.16", a), ("current", b)):
                if isinstance(answer, RuntimeError):
                    problems.append("fails on %s: %s" % (name, answer))
            if not problems:
                ra, rb = fields(a), fields(b)
                if len(ra) != len(rb) or any(
                    len(x) != len(y) or not all(same_value(p, q) for p, q in zip(x, y))
                    for x, y in zip(ra, rb)
                ):
                    problems.append("different answers:\n18.16:\n%s\ncurrent:\n%s" % (a, b))
                elif query.startswith("main_"):
                    for row in ra:
                        variant = int(row[0])
                        if int(row[1]) != expected["users"][variant]:
                            problems.append("variant %d: %s users, expected %d" % (
                                variant, row[1], expected["users"][variant]))
                        # The count metric "views" is the third: columns 11 and 12.
                        got = [float(row[11]), float(row[12])]
                        if got != [float(x) for x in expected["views"][variant]]:
                            problems.append("variant %d: views sums %s, expected %s" % (
                                variant, got, expected["views"][variant]))
            if problems:
                failed += 1
                print("FAIL %s: %s" % (query, "; ".join(problems)))
            else:
                passed += 1
                print("ok   %s (%d rows)" % (query, len(fields(a))))
    finally:
        try:
            old.run("DROP DATABASE IF EXISTS " + DATABASE)
        except Exception:  # noqa: BLE001 - cleanup only
            pass
        new.close()
    print("%d passed, %d failed" % (passed, failed))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
