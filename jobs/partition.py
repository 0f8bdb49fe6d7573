"""A large upload's own partition of `records`.

Created bare when its job starts, loaded chunk by chunk, given the list's
indexes in bulk when the load ends, then attached to `records`, whose
partitioned indexes adopt them (migration 0005 says why). Every step is
idempotent, so a job resumed after a crash at any point finishes the build.
"""
from concurrent.futures import ThreadPoolExecutor

import psycopg
from psycopg import sql

from webapp.models import Upload

table_name = Upload.own_table_name

# Per build: in memory, a 1M-row sort index sorts without spilling to disk.
BUILD_MEMORY = "256MB"
# Indexes built at once, each in a session of its own.
BUILDERS = 2
# Tests and benchmarks start from an empty records table: TRUNCATE records leaves these behind.
DROP_EVERY_UPLOAD_TABLE = r"""
    DO $$ DECLARE name text; BEGIN
        FOR name IN SELECT relname FROM pg_class WHERE relname LIKE 'records\_upload\_%' AND relkind = 'r' LOOP
            EXECUTE format('DROP TABLE %I', name);
        END LOOP;
    END $$"""


def create(connection, upload_id):
    """The upload's table, with records' columns and defaults and no index; its rows say segment = upload_id."""
    if exists(connection, upload_id):
        return table_name(upload_id)
    table = sql.Identifier(table_name(upload_id))
    with connection.transaction():
        connection.execute(sql.SQL("CREATE TABLE {} (LIKE records INCLUDING DEFAULTS, CHECK (segment = {}))")
                           .format(table, sql.Literal(upload_id)))
        connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN segment SET DEFAULT {}").format(
            table, sql.Literal(upload_id)))
        for column, target in connection.execute(
                "SELECT attname, attstattarget FROM pg_attribute "
                "WHERE attrelid = 'records_shared'::regclass AND attstattarget > 0").fetchall():
            connection.execute(sql.SQL("ALTER TABLE {} ALTER COLUMN {} SET STATISTICS {}").format(
                table, sql.Identifier(column), sql.Literal(target)))
        connection.execute("UPDATE uploads SET loading_alone = true WHERE id = %s", (upload_id,))
    return table_name(upload_id)


def is_attached(connection, upload_id):
    return connection.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_inherits WHERE inhrelid = to_regclass(%s) "
        "AND inhparent = 'records'::regclass)", (table_name(upload_id),)).fetchone()[0]


def exists(connection, upload_id):
    return connection.execute("SELECT to_regclass(%s) IS NOT NULL", (table_name(upload_id),)).fetchone()[0]


def finish(connection, database_url, upload_id, announce):
    """Build the list's indexes on the upload's table and attach it to `records`;
    `announce` is called once the upload says so. True when this call attached it."""
    if not exists(connection, upload_id) or is_attached(connection, upload_id):
        return False
    connection.execute("UPDATE uploads SET indexing_started_at = coalesce(indexing_started_at, now()) "
                       "WHERE id = %s", (upload_id,))
    announce()
    end_stale_work(connection, upload_id)
    builds = missing_indexes(connection, upload_id)
    with ThreadPoolExecutor(BUILDERS) as pool:
        list(pool.map(lambda statement: _build(database_url, statement), builds))
    with connection.transaction():
        connection.execute(f"ALTER TABLE records ATTACH PARTITION {table_name(upload_id)} "
                           f"FOR VALUES IN ({upload_id})")
        connection.execute("UPDATE uploads SET loading_alone = false WHERE id = %s", (upload_id,))
    return True


def attached_uploads(connection):
    """The ids of the uploads whose own tables are partitions of records, oldest first."""
    rows = connection.execute(
        "SELECT substring(relname FROM '[0-9]+$')::int AS upload_id FROM pg_inherits "
        "JOIN pg_class ON pg_class.oid = inhrelid WHERE inhparent = 'records'::regclass "
        "AND relname ~ '^records_upload_[0-9]+$' ORDER BY upload_id").fetchall()
    return [upload_id for (upload_id,) in rows]


def merge_into_shared(connection, upload_id):
    """Move an attached upload table's records into the shared partition and drop the table, in one
    transaction. The registry's rows for them are written again by the shared partition's triggers."""
    table = table_name(upload_id)
    # Every column but segment, which the shared partition sets to 0.
    names = connection.execute("SELECT attname FROM pg_attribute WHERE attrelid = 'records'::regclass "
                               "AND attnum > 0 AND NOT attisdropped AND attname <> 'segment'").fetchall()
    columns = sql.SQL(", ").join(sql.Identifier(name) for (name,) in names)
    with connection.transaction():
        connection.execute("DELETE FROM record_emails WHERE segment = %s", (upload_id,))
        connection.execute(sql.SQL("INSERT INTO records_shared ({0}) SELECT {0} FROM {1}").format(
            columns, sql.Identifier(table)))
        connection.execute(sql.SQL("DROP TABLE {}").format(sql.Identifier(table)))


def end_stale_work(connection, upload_id):
    """A killed job's builds and attach may still run, or wait for a lock, in sessions whose client is
    gone; this job holds the upload's lock, so they belong to no live job and would collide with its own."""
    table = table_name(upload_id)
    connection.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
        "AND (pid IN (SELECT pid FROM pg_stat_progress_create_index WHERE relid = to_regclass(%s)) "
        "OR starts_with(query, %s) OR starts_with(query, %s) OR starts_with(query, %s))",
        (table, f"CREATE INDEX {table}_", f"ALTER TABLE {table} ", f"ALTER TABLE records ATTACH PARTITION {table} "))


def missing_indexes(connection, upload_id):
    """CREATE INDEX statements for the shared partition's indexes that the upload's table lacks,
    dearest first, each followed by the statistics targets of its columns."""
    table = table_name(upload_id)
    rows = connection.execute(
        """SELECT index.relname, pg_get_indexdef(index.oid), array_remove(array_agg(
                  CASE WHEN attribute.attstattarget > 0 THEN attribute.attnum || ':' || attribute.attstattarget END
               ), NULL), pg_index.indisprimary
           FROM pg_index JOIN pg_class AS index ON index.oid = pg_index.indexrelid
           JOIN pg_attribute AS attribute ON attribute.attrelid = index.oid
           WHERE pg_index.indrelid = 'records_shared'::regclass
           GROUP BY index.relname, index.oid, pg_index.indisprimary
           ORDER BY pg_relation_size(index.oid) DESC""").fetchall()
    statements = []
    for shared_name, definition, statistics, primary in rows:
        name = shared_name.replace("records_shared", table, 1)
        if connection.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()[0]:
            continue
        statements.append(_statements(definition, shared_name, name, table, statistics, primary))
    return statements


def _statements(definition, shared_name, name, table, statistics, primary):
    if primary:
        return [f"ALTER TABLE {table} ADD CONSTRAINT {name} PRIMARY KEY {definition[definition.index('('):]}"]
    build = definition.replace(f"INDEX {shared_name} ON public.records_shared ", f"INDEX {name} ON public.{table} ")
    targets = [f"ALTER INDEX {name} ALTER COLUMN {item.split(':')[0]} SET STATISTICS {item.split(':')[1]}"
               for item in statistics]
    return [build, *targets]


def _build(database_url, statements):
    with psycopg.connect(database_url, autocommit=True) as connection, connection.transaction():
        connection.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'")
        for statement in statements:
            connection.execute(statement)
