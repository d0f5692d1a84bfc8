#!/usr/bin/env bash
# Captures golden pgoutput (protocol version 1) messages from a real PostgreSQL 15 and writes
# them, with the decoded fields each must produce, to pgoutput_v1.test beside this script.
#
#   libs/pgoutput/testdata/capture.sh [conninfo]     default: $SPLITSTREAM_PG_DSN
#
# Needs a server with wal_level=logical (scripts/stack's PostgreSQL). It (re)creates a
# throwaway database `pgoutput_capture`, a publication, a replication
# origin, and for each scenario creates a logical slot, runs the scenario, reads its messages
# with pg_logical_slot_peek_binary_changes(..., 'proto_version', '1', 'publication_names',
# 'pub', 'messages', 'true') as hex and drops the slot. Each scenario is a new decoding
# session, so Relation (and Type) messages come before a relation's first change every time.
#
# The expectations come from the server, not from the decoder under test: relation, type and
# column facts from the catalogs, xid and LSN from the peek function's own columns, values
# from the literals below.
set -euo pipefail

dsn=${1:-${SPLITSTREAM_PG_DSN:?set SPLITSTREAM_PG_DSN or pass a conninfo}}
here=$(cd "$(dirname "$0")" && pwd)
out=$here/pgoutput_v1.test
db=pgoutput_capture
slot=pgoutput_capture
origin=splitstream_origin

export PGOPTIONS='-c client_min_messages=warning'
admin() { psql "$dsn" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
q() { psql "$dsn dbname=$db" -X -q -v ON_ERROR_STOP=1 -At "$@"; }
die() {
  echo "capture: $*" >&2
  exit 1
}

cleanup() {
  admin -c "select pg_drop_replication_slot(slot_name) from pg_replication_slots
            where slot_name = '$slot'" >/dev/null || true
  admin -c "drop database if exists $db" >/dev/null || true
}
cleanup
trap cleanup EXIT
admin -c "create database $db"

q >/dev/null <<SQL
create type mood as enum ('sad', 'ok', 'happy');
create table users (id int primary key, name text, mood mood, note varchar(20));
create table audit (id int primary key, payload text, tag text);
alter table audit replica identity full;
create table docs (id bigint primary key, body text, version int);
-- Out of line and uncompressed: the body is always a TOAST pointer.
alter table docs alter column body set storage external;
create publication pub for table users, audit, docs;
select pg_replication_origin_create('$origin')
  where not exists (select from pg_replication_origin where roname = '$origin');
SQL

oid() { q -c "select '$1'::regclass::oid"; }
users=$(oid users)
audit=$(oid audit)
docs=$(oid docs)
mood=$(q -c "select 'mood'::regtype::oid")
# "*id:23:-1,name:25:-1,...": '*' marks replica identity columns (every column under FULL).
columns() {
  q -c "select string_agg(format('%s%s:%s:%s',
                 case when c.relreplident = 'f' or a.attnum = any(i.indkey) then '*' else '' end,
                 a.attname, a.atttypid, a.atttypmod), ',' order by a.attnum)
        from pg_class c
        join pg_attribute a on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
        left join pg_index i on i.indrelid = c.oid and i.indisprimary
        where c.oid = '$1'::regclass"
}
relation() {
  local ri
  ri=$(q -c "select relreplident from pg_class where oid = '$1'::regclass")
  echo "R oid=$(oid "$1") ns=public name=$1 ri=$ri cols=$(columns "$1")"
}
R_users=$(relation users)
R_audit=$(relation audit)
R_docs=$(relation docs)
Y_mood="Y oid=$mood ns=public name=mood"
# The TOASTed body: 200 md5 digests (6400 hexadecimal characters, incompressible enough).
body_sql="(select string_agg(md5(i::text), '') from generate_series(1, 200) i)"
body_len=$(q -c "select length($body_sql)")
body_head=$(q -c "select left($body_sql, 16)")
hex() { q -c "select encode(convert_to('$1', 'UTF8'), 'hex')"; }

{
  echo "# pgoutput protocol version 1 messages captured from a real server by capture.sh;"
  echo "# regenerate with that script, do not edit. Format: see tests/golden.h."
  echo "# server: $(q -c 'select version()')"
  echo "captured_unix_us $(q -c "select (extract(epoch from now()) * 1000000)::bigint")"
} >"$out"

# scenario NAME SQL EXPECT...: runs SQL, peeks the slot and pairs each message with one
# expectation, in which {xid} and {lsn} stand for the peek function's xid and lsn columns.
scenario() {
  local name=$1 sql=$2
  shift 2
  local expected=("$@") rows=() i lsn xid data line
  # A fresh slot per scenario: a slot moved on with pg_replication_slot_advance was seen to
  # skip later non-transactional messages.
  q -c "select pg_create_logical_replication_slot('$slot', 'pgoutput')" >/dev/null
  q >/dev/null <<<"$sql"
  # A non-transactional message is not flushed by itself and peeking reads only flushed WAL:
  # commit an empty transaction with an xid (pgoutput skips empty transactions) to flush it.
  q -c "select pg_current_xact_id()" >/dev/null
  mapfile -t rows < <(q -F ' ' -c "select lsn, xid, encode(data, 'hex')
    from pg_logical_slot_peek_binary_changes('$slot', null, null, 'proto_version', '1',
         'publication_names', 'pub', 'messages', 'true')")
  q -c "select pg_drop_replication_slot('$slot')" >/dev/null
  ((${#rows[@]} == ${#expected[@]})) ||
    die "scenario $name: ${#rows[@]} messages, expected ${#expected[@]}: ${rows[*]}"
  {
    echo
    echo "scenario $name"
    echo "# sql: $(tr '\n' ' ' <<<"$sql")"
    for i in "${!rows[@]}"; do
      read -r lsn xid data <<<"${rows[i]}"
      line=${expected[i]//\{xid\}/$xid}
      line=${line//\{lsn\}/$lsn}
      [[ $(printf '%02x' "'${line:0:1}") == "${data:0:2}" ]] ||
        die "scenario $name: message $i is 0x${data:0:2}, expected ${line:0:1}"
      echo "msg $data"
      echo "expect $line"
    done
  } >>"$out"
}

B="B xid={xid}"
C="C flags=0 end_lsn={lsn}"

scenario insert_users \
  "insert into users values (1, 'alice', 'happy', null), (2, 'bob', 'sad', 'naïve');" \
  "$B" "$Y_mood" "$R_users" \
  "I rel=$users new=t:1|t:alice|t:happy|n" \
  "I rel=$users new=t:2|t:bob|t:sad|t:naïve" \
  "$C"

scenario update_users_no_old "update users set name = 'alicia' where id = 1;" \
  "$B" "$Y_mood" "$R_users" "U rel=$users new=t:1|t:alicia|t:happy|n" "$C"

scenario update_users_key "update users set id = 20 where id = 2;" \
  "$B" "$Y_mood" "$R_users" "U rel=$users old=K:t:2|n|n|n new=t:20|t:bob|t:sad|t:naïve" "$C"

scenario delete_users_key "delete from users where id = 20;" \
  "$B" "$Y_mood" "$R_users" "D rel=$users old=K:t:20|n|n|n" "$C"

scenario replica_identity_full \
  "begin; insert into audit values (1, 'p1', 'a'); update audit set tag = 'b' where id = 1;
   delete from audit where id = 1; commit;" \
  "$B" "$R_audit" \
  "I rel=$audit new=t:1|t:p1|t:a" \
  "U rel=$audit old=O:t:1|t:p1|t:a new=t:1|t:p1|t:b" \
  "D rel=$audit old=O:t:1|t:p1|t:b" \
  "$C"

scenario insert_toast "insert into docs values (1, $body_sql, 1);" \
  "$B" "$R_docs" "I rel=$docs new=t:1|t#$body_len:$body_head|t:1" "$C"

scenario update_unchanged_toast "update docs set version = 2 where id = 1;" \
  "$B" "$R_docs" "U rel=$docs new=t:1|u|t:2" "$C"

scenario message_transactional \
  "begin; select pg_logical_emit_message(true, 'splitstream', '\\x00ff01'::bytea); commit;" \
  "$B" "M tx=1 lsn={lsn} prefix=splitstream content=00ff01" "$C"

scenario message_non_transactional \
  "select pg_logical_emit_message(false, 'splitstream', 'hello-non-transactional');" \
  "M tx=0 lsn={lsn} prefix=splitstream content=$(hex hello-non-transactional)"

scenario origin \
  "select pg_replication_origin_session_setup('$origin');
   begin; select pg_replication_origin_xact_setup('0/ABCDEF', now());
   insert into users values (3, 'carol', 'ok', 'from-origin'); commit;
   select pg_replication_origin_session_reset();" \
  "$B" "O lsn=0/ABCDEF name=$origin" "$Y_mood" "$R_users" \
  "I rel=$users new=t:3|t:carol|t:ok|t:from-origin" "$C"

scenario truncate_two_relations "truncate users, audit;" \
  "$B" "$Y_mood" "$R_users" "$R_audit" "T options=0 rels=$users,$audit" "$C"

scenario truncate_restart_cascade "truncate docs restart identity cascade;" \
  "$B" "$R_docs" "T options=3 rels=$docs" "$C"

echo "capture: wrote $(grep -c '^msg ' "$out") messages to $out" >&2
