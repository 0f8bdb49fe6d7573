"""records becomes a table partitioned by segment, and email uniqueness moves
to a registry that spans every partition.

Maintaining the list's sort indexes row by row is the dearest part of a
large ingest; building them once over loaded rows is a sort, several times
cheaper (bench/README.md, "CSV ingest"). So a large upload loads into a
table of its own with no indexes, builds them when its load ends and is then
attached as a partition (jobs/partition.py). Everything else (small uploads,
API batches, records made by hand) goes to the shared partition, segment 0,
whose indexes are live.

A unique index cannot span partitions, so `record_emails` holds one row per
stored email, keyed by the normalized email: the database's last word on
uniqueness. A large upload writes it in the same transaction as its records;
for every other write of `records`, triggers keep it in step.

Revision ID: 0005
Revises: 0004
"""
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

# Index names of migration 0002 (and the primary key) as the shared partition keeps them.
LIST_INDEXES = ("email_sort", "name_sort", "last_name_sort", "company_sort", "city_sort", "country_sort",
                "upload_sort", "created_sort", "upload_created")
SEARCH_STATISTICS = 1000

FOLLOW_RECORDS = """
CREATE FUNCTION record_emails_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        DELETE FROM record_emails WHERE email_norm = OLD.email_norm AND record_id = OLD.id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO record_emails (email_norm, record_id, segment, upload_id, source_line)
        VALUES (NEW.email_norm, NEW.id, NEW.segment, NEW.upload_id, NEW.source_line);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER record_emails_follow_insert AFTER INSERT OR DELETE ON records
    FOR EACH ROW EXECUTE FUNCTION record_emails_follow();
CREATE TRIGGER record_emails_follow_update AFTER UPDATE OF email_norm, upload_id, source_line ON records
    FOR EACH ROW WHEN ((OLD.email_norm, OLD.upload_id, OLD.source_line)
                       IS DISTINCT FROM (NEW.email_norm, NEW.upload_id, NEW.source_line))
    EXECUTE FUNCTION record_emails_follow();
CREATE FUNCTION record_emails_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE record_emails;
    RETURN NULL;
END $$;
CREATE TRIGGER record_emails_truncate AFTER TRUNCATE ON records
    FOR EACH STATEMENT EXECUTE FUNCTION record_emails_truncate();
"""


def upgrade():
    op.execute("ALTER TABLE records RENAME TO records_shared")
    op.execute("ALTER TABLE records_shared ALTER COLUMN id DROP IDENTITY")
    op.execute("CREATE SEQUENCE records_id_seq AS bigint")
    op.execute("SELECT setval('records_id_seq', coalesce(max(id), 0) + 1, false) FROM records_shared")
    op.execute("ALTER TABLE records_shared ADD COLUMN segment integer NOT NULL DEFAULT 0")
    op.execute("ALTER TABLE records_shared ADD CONSTRAINT records_shared_segment CHECK (segment = 0)")
    op.execute("ALTER TABLE records_shared DROP CONSTRAINT records_email_norm_key")
    op.execute("ALTER TABLE records_shared DROP CONSTRAINT records_pkey")
    op.execute("ALTER TABLE records_shared ADD CONSTRAINT records_shared_pkey PRIMARY KEY (id, segment)")
    op.execute("ALTER TABLE records_shared DROP CONSTRAINT records_upload_id_fkey")
    op.execute("ALTER TABLE records_shared DROP CONSTRAINT records_updated_by_fkey")
    for name in LIST_INDEXES:
        op.execute(f"ALTER INDEX ix_records_{name} RENAME TO records_shared_{name}")

    op.execute("""
        CREATE TABLE records (
            id bigint NOT NULL DEFAULT nextval('records_id_seq'),
            email varchar NOT NULL,
            email_norm varchar NOT NULL,
            first_name varchar,
            last_name varchar,
            phone varchar,
            company varchar,
            city varchar,
            country varchar,
            extra jsonb NOT NULL DEFAULT '{}',
            upload_id integer REFERENCES uploads (id) ON DELETE SET NULL,
            source_line integer,
            created_at timestamptz NOT NULL DEFAULT now(),
            updated_at timestamptz NOT NULL DEFAULT now(),
            updated_by integer REFERENCES operators (id) ON DELETE SET NULL,
            segment integer NOT NULL DEFAULT 0,
            PRIMARY KEY (id, segment)
        ) PARTITION BY LIST (segment)""")
    op.execute("ALTER SEQUENCE records_id_seq OWNED BY records.id")
    op.execute("ALTER TABLE records_shared ALTER COLUMN id SET DEFAULT nextval('records_id_seq')")
    op.execute("ALTER TABLE records ATTACH PARTITION records_shared FOR VALUES IN (0)")
    # Each partitioned index adopts the shared partition's equal index instead of building one.
    for name, definition in _shared_index_definitions():
        op.execute(definition.replace(f"records_shared_{name} ON public.records_shared",
                                      f"ix_records_{name} ON public.records"))
    op.execute(f"ALTER TABLE records ALTER COLUMN email_norm SET STATISTICS {SEARCH_STATISTICS}")

    op.execute("""
        CREATE TABLE record_emails (
            email_norm text COLLATE "C" PRIMARY KEY,
            record_id bigint NOT NULL,
            segment integer NOT NULL,
            upload_id integer,
            source_line integer
        )""")
    op.execute("INSERT INTO record_emails SELECT email_norm, id, segment, upload_id, source_line FROM records")
    op.execute(FOLLOW_RECORDS)
    op.execute("ALTER TABLE uploads ADD COLUMN loading_alone boolean NOT NULL DEFAULT false")
    op.execute("ALTER TABLE uploads ADD COLUMN indexing_started_at timestamptz")
    # The records list reads the statistics of records as a whole, which autovacuum never gathers.
    op.execute("ANALYZE records")


def _shared_index_definitions():
    connection = op.get_bind()
    for name in LIST_INDEXES:
        definition = connection.exec_driver_sql(
            "SELECT pg_get_indexdef(%s::regclass)", (f"records_shared_{name}",)).scalar()
        yield name, definition


def downgrade():
    """One plain table again; rows of uploads still loading into tables of their own are not carried."""
    definitions = [definition.replace(" ON ONLY public.records ", " ON public.records ")
                   for definition in _parent_index_definitions()]
    op.execute("ALTER TABLE uploads DROP COLUMN loading_alone, DROP COLUMN indexing_started_at")
    op.execute("DROP TABLE record_emails")
    op.execute("CREATE TABLE records_single (LIKE records INCLUDING DEFAULTS)")
    op.execute("INSERT INTO records_single SELECT * FROM records")
    op.execute("ALTER SEQUENCE records_id_seq OWNED BY records_single.id")
    op.execute("DROP TABLE records")
    op.execute("DROP FUNCTION record_emails_follow()")
    op.execute("DROP FUNCTION record_emails_truncate()")
    op.execute("ALTER TABLE records_single RENAME TO records")
    op.execute("ALTER TABLE records DROP COLUMN segment")
    op.execute("ALTER TABLE records ADD PRIMARY KEY (id)")
    op.execute("ALTER TABLE records ADD CONSTRAINT records_email_norm_key UNIQUE (email_norm)")
    op.execute("ALTER TABLE records ADD FOREIGN KEY (upload_id) REFERENCES uploads (id) ON DELETE SET NULL")
    op.execute("ALTER TABLE records ADD FOREIGN KEY (updated_by) REFERENCES operators (id) ON DELETE SET NULL")
    for definition in definitions:
        op.execute(definition)
    for name in ("name_sort", "last_name_sort", "company_sort"):
        op.execute(f"ALTER INDEX ix_records_{name} ALTER COLUMN 1 SET STATISTICS {SEARCH_STATISTICS}")
    op.execute(f"ALTER TABLE records ALTER COLUMN email_norm SET STATISTICS {SEARCH_STATISTICS}")


def _parent_index_definitions():
    return op.get_bind().exec_driver_sql(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid "
        "WHERE indrelid = 'records'::regclass AND NOT indisprimary AND relname LIKE 'ix_records_%%'").scalars().all()
