"""Records list benchmark: page latency and CSV export speed on 5 million records.

    .venv/bin/python bench/records_bench.py                 # load once (≈ 5 min), then measure
    .venv/bin/python bench/records_bench.py --reload        # throw the data away and load again
    .venv/bin/python bench/records_bench.py --rows 200000   # a quick try
    .venv/bin/python bench/records_bench.py --partitions 0,5,50,500   # layouts one after the other, compared
    .venv/bin/python bench/records_bench.py --partitions 500 --requests 20   # fewer requests a row, for slow layouts

It runs its own PostgreSQL with scripts/services.py (stock settings) and keeps
the data for the next run, one data directory per layout: bench/data/records/
for --partitions 0, bench/data/records-pN/ for N. The records are the same in
every layout (deterministic: same names, companies, countries and ties; each
upload's rows share one created_at per 50,000-row chunk, as ingest writes them).

--partitions 0 (the default): a fresh load migrates to 0001, COPYs the records
of 50 uploads, then migrates to head, which builds the indexes of 0002 on the
full table; every record is in the shared partition.

--partitions N: the records are spread over N uploads, each loaded as a large
upload is (jobs/partition.py): its own table created bare, its records COPYed
into it with ids from records_id_seq and its emails into record_emails, then
the shared partition's indexes built on it and the table attached.

Latencies are server-side: the Flask test client in this process, a request
through the app (routing, login, queries, templates) without network. Page
requests that htmx makes (search, next page) are sent as htmx sends them.
"""
import argparse
import gc
import html
import os
import platform
import random
import re
import statistics
import sys
from itertools import islice
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import Postgres  # noqa: E402

DATA = ROOT / "bench" / "data"
UPLOADS = 50  # of the shared layout
CHUNK_ROWS = 50_000
REQUESTS = 200  # per row of the table, unless --requests says otherwise
CLICKS_PER_REQUEST = 10  # the walk through the default list follows 10 × requests Next links
DEEP_ROWS = 100_000  # where the deep page of each sort starts: page 2,001
HTMX = {"HX-Request": "true"}

FIRST_NAMES = """James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard
Susan Joseph Jessica Thomas Sarah Charles Karen Daniel Lisa Matthew Nancy Anthony Sandra Mark Ashley Paul Emily
Steven Donna Andrew Michelle Joshua Carol Kevin Amanda Brian Melissa George Deborah Timothy Stephanie Jose Maria
Juan Carmen Luis Ana Carlos Lucia Javier Sofia Miguel Elena Pedro Isabel Hans Anna Peter Ursula Klaus Monika
Jürgen Petra Lukas Lena Jonas Leonie Pierre Marie Jean Camille Louis Chloé François Léa Giovanni Giulia Marco
Francesca Luca Chiara Sven Ingrid Lars Astrid Olav Sigrid Jan Eva Piotr Zofia Tomasz Agnieszka Hiroshi Yuki Kenji
Aiko Wei Fang Li Mei Raj Priya Arjun Ananya Mohammed Fatima Ahmed Aisha Omar Layla Ali Zeynep Mehmet Elif Ivan
Olga Dmitri Natalia Sergei Tatiana Kwame Ama Chinedu Ngozi Thabo Lerato Diego Valentina Mateo Camila Noah Emma
Liam Olivia Ethan Ava Mason Mia Logan Zoë Aurélien Siobhán Seán Niamh Oisín Saoirse""".split()
LAST_NAMES = """Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez
Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark Ramirez Lewis
Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams Nelson Baker Hall Rivera
Campbell Mitchell Carter Roberts Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Dubois
Durand Lefebvre Moreau Laurent Simon Michel Leroy Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci
Marino Greco Hansen Johansen Olsen Larsen Andersen Pedersen Nilsson Eriksson Larsson Kowalski Nowak Wiśniewski
Wójcik Kowalczyk Sato Suzuki Takahashi Tanaka Watanabe Wang Zhang Liu Chen Yang Huang Patel Sharma Singh Kumar
Gupta Khan Hussain Ahmed Yılmaz Kaya Demir Şahin Ivanov Smirnov Kuznetsov Popov Okafor Mensah Mokoena Dlamini
Silva Santos Oliveira Souza Pereira Costa Fernandes O'Brien O'Connor Murphy Kelly Byrne Ryan Walsh McCarthy
van Dijk de Jong Jansen de Vries Bakker Visser""".split()
COMPANY_STEMS = """Acme Globex Initech Umbrella Stark Wayne Wonka Tyrell Cyberdyne Soylent Hooli Vandelay
Dunder Aperture Oscorp Gringotts Monarch Virtucon Nakatomi Prestige Sterling Pied Piper Blue Sun Black Mesa
Northwind Contoso Fabrikam Tailspin Litware Adventure Alpine Coho Lucerne Margie Proseware Trey Wide World
Bluth Krusty Duff Gekko Massive Dynamic Rekall Weyland Yoyodyne Zorg Nordlicht Sonnenschein Alpenglühen Horizonte
Solaria Boreal Maple Cedar Granite Harbor Summit Meridian Pinnacle Vertex""".split()
COMPANY_SUFFIXES = ["Ltd", "Inc", "GmbH", "SA", "BV", "AB", "Group", "& Co", "Holdings", "Labs"]
COUNTRIES = {  # country: (weight, cities)
    "US": (20, ["New York", "Chicago", "Austin", "Seattle", "Boston"]),
    "GB": (10, ["London", "Leeds", "Glasgow", "Bristol"]),
    "DE": (10, ["Berlin", "München", "Hamburg", "Köln"]),
    "FR": (8, ["Paris", "Lyon", "Marseille", "Toulouse"]),
    "ES": (6, ["Madrid", "Barcelona", "Sevilla", "Valencia"]),
    "IT": (6, ["Roma", "Milano", "Napoli", "Torino"]),
    "NL": (4, ["Amsterdam", "Rotterdam", "Utrecht"]),
    "SE": (3, ["Stockholm", "Göteborg", "Malmö"]),
    "NO": (2, ["Oslo", "Bergen"]),
    "PL": (4, ["Warszawa", "Kraków", "Łódź"]),
    "IN": (6, ["Mumbai", "Bengaluru", "Delhi", "Chennai"]),
    "JP": (4, ["Tokyo", "Osaka", "Kyoto"]),
    "CN": (3, ["Shanghai", "Beijing", "Shenzhen"]),
    "BR": (4, ["São Paulo", "Rio de Janeiro", "Curitiba"]),
    "MX": (3, ["Ciudad de México", "Guadalajara"]),
    "TR": (2, ["İstanbul", "Ankara"]),
    "NG": (2, ["Lagos", "Abuja"]),
    "ZA": (1, ["Johannesburg", "Cape Town"]),
    "IE": (1, ["Dublin", "Cork"]),
    "CA": (1, ["Toronto", "Montréal", "Vancouver"]),
}
DOMAINS = ["gmail.com", "outlook.com", "yahoo.com", "web.de", "orange.fr", "libero.it", "example.org", "proton.me"]
OWN_TABLE_COLUMNS = ("id", "segment")  # then COPY_COLUMNS
COPY_COLUMNS = ("email", "email_norm", "first_name", "last_name", "phone", "company", "city", "country",
                "extra", "upload_id", "source_line", "created_at", "updated_at")
EPOCH = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)


# Data

def ascii_local(text):
    return "".join(ch for ch in text.lower() if ch.isascii() and ch.isalnum())


def copy_escape(value):
    return "\\N" if value is None else value.replace("\\", "\\\\").replace("\t", " ")


def generate_rows(count, uploads=UPLOADS, first_upload=1, first_number=0, seed=42):
    """COPY text lines of `count` records spread over `uploads` uploads; the same
    for the same arguments. Emails are unique through their number."""
    rng = random.Random(seed)
    companies = [f"{stem} {suffix}" for stem in COMPANY_STEMS for suffix in COMPANY_SUFFIXES]
    countries = list(COUNTRIES)
    weights = [COUNTRIES[country][0] for country in countries]
    per_upload = max(count // uploads, 1)
    for n in range(count):
        upload = min(n // per_upload, uploads - 1) + first_upload
        line = n - (upload - first_upload) * per_upload + 2
        created = EPOCH + timedelta(days=upload, seconds=(line - 2) // CHUNK_ROWS)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        email = f"{ascii_local(first)}.{ascii_local(last)}{first_number + n}@{rng.choice(DOMAINS)}"
        if n % 7 == 0:
            email = email.capitalize()
        country = rng.choices(countries, weights)[0]
        company = rng.choice(companies) if rng.random() > 0.08 else None
        city = rng.choice(COUNTRIES[country][1]) if rng.random() > 0.03 else None
        phone = f"+{rng.randint(1, 99)} {rng.randint(100, 999)} {rng.randint(1000000, 9999999)}"
        extra = '{"source": "webinar", "score": "%d"}' % rng.randint(1, 100) if n % 5 == 0 else "{}"
        stamp = created.isoformat()
        cells = [email, email.lower(), first, last, phone, company, city, country, extra,
                 str(upload), str(line), stamp, stamp]
        yield "\t".join(map(copy_escape, cells)) + "\n"


def copy_records(connection, rows):
    columns = ", ".join(COPY_COLUMNS)
    with connection.cursor().copy(f"COPY records ({columns}) FROM STDIN") as copy:
        batch = []
        for line in rows:
            batch.append(line)
            if len(batch) == 10_000:
                copy.write("".join(batch))
                batch.clear()
        copy.write("".join(batch))


def insert_uploads(connection, first, last, rows_each):
    connection.execute(
        "INSERT INTO uploads (id, filename, size_bytes, source, on_duplicate, validate_only, encoding, "
        "delimiter, status, cancel_requested, lines_read, rows_inserted, rows_updated, duplicates_in_file, "
        "duplicates_existing, rows_invalid, bytes_processed, checkpoint_records) "
        "SELECT n, 'contacts-' || n || '.csv', 0, 'form', 'skip', false, 'utf-8', ',', 'completed', false, "
        "%(rows)s, %(rows)s, 0, 0, 0, 0, 0, %(rows)s FROM generate_series(%(first)s::int, %(last)s::int) AS n",
        {"rows": rows_each, "first": first, "last": last})


def timed_copy_rate(url, rows, loaded):
    """Rows per second of one ingest-like COPY into the full table, rolled back afterwards."""
    with psycopg.connect(url) as connection:
        insert_uploads(connection, UPLOADS + 1, UPLOADS + 1, rows)
        started = time.perf_counter()
        copy_records(connection, generate_rows(rows, uploads=1, first_upload=UPLOADS + 1,
                                               first_number=loaded, seed=7))
        elapsed = time.perf_counter() - started
        connection.rollback()
    return rows / elapsed


def reset_schema(url):
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")


def vacuum(url):
    """As after autovacuum: statistics, and visibility maps for the index-only counts."""
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE records")
        connection.execute("VACUUM ANALYZE record_emails")


def load_shared(app, url, rows):
    """Load `rows` records into the shared partition of an empty schema; prints what it took."""
    figures = {}
    reset_schema(url)
    migrate(app, "0001")
    with psycopg.connect(url) as connection:
        insert_uploads(connection, 1, UPLOADS, rows // UPLOADS)
        started = time.perf_counter()
        copy_records(connection, generate_rows(rows))
        connection.commit()
        figures["load_seconds"] = time.perf_counter() - started
    figures["copy_rate_0001"] = timed_copy_rate(url, 100_000, rows)
    started = time.perf_counter()
    migrate(app, "0002")
    figures["migrate_0002_seconds"] = time.perf_counter() - started
    figures["copy_rate_0002"] = timed_copy_rate(url, 100_000, rows)
    migrate(app, "head")
    vacuum(url)
    print(f"- load: {rows:,} rows by COPY in {figures['load_seconds']:.0f} s; "
          f"migration 0002 (building its indexes) {figures['migrate_0002_seconds']:.0f} s")
    print(f"- an ingest-like COPY of 100,000 more rows into the full table: "
          f"{figures['copy_rate_0001']:,.0f} rows/s with the indexes of 0001, "
          f"{figures['copy_rate_0002']:,.0f} rows/s with those of 0002 too", flush=True)


def upload_sizes(rows, uploads):
    """Rows per upload as generate_rows spreads them: the last one takes the remainder."""
    per_upload = max(rows // uploads, 1)
    return [per_upload] * (uploads - 1) + [rows - per_upload * (uploads - 1)]


def load_partitions(app, url, rows, partitions):
    """Load `rows` records as `partitions` large uploads, each into its own partition; prints what it took."""
    from jobs import partition

    reset_schema(url)
    migrate(app, "head")
    lines = generate_rows(rows, uploads=partitions)
    sizes = upload_sizes(rows, partitions)
    copy_seconds = finish_seconds = 0.0
    with psycopg.connect(url, autocommit=True) as connection:
        insert_uploads(connection, 1, partitions, sizes[0])
        for upload_id, size in enumerate(sizes, start=1):
            started = time.perf_counter()
            table = partition.create(connection, upload_id)
            copy_own_partition(connection, table, upload_id, islice(lines, size))
            copy_seconds += time.perf_counter() - started
            started = time.perf_counter()
            partition.finish(connection, url, upload_id, announce=lambda: None)
            finish_seconds += time.perf_counter() - started
    started = time.perf_counter()
    vacuum(url)
    vacuum_seconds = time.perf_counter() - started
    print(f"- load: {rows:,} rows in {partitions} uploads' own partitions: created and COPYed in "
          f"{copy_seconds:.0f} s, indexed and attached in {finish_seconds:.0f} s "
          f"({finish_seconds / partitions:.2f} s each); VACUUM ANALYZE {vacuum_seconds:.0f} s", flush=True)


def copy_own_partition(connection, table, upload_id, lines):
    """An upload's records into its own table and their emails into the registry, chunk by chunk
    (one transaction each), as jobs/chunk_writer.py stores a large upload."""
    while chunk := list(islice(lines, CHUNK_ROWS)):
        with connection.transaction():
            ids = connection.execute("SELECT nextval('records_id_seq') FROM generate_series(1, %s)",
                                     (len(chunk),)).fetchall()
            cells = [line.split("\t") for line in chunk]
            registry = [f"{row[1]}\t{record_id}\t{upload_id}\t{row[9]}\t{row[10]}\n"
                        for row, (record_id,) in zip(cells, ids)]
            copy_lines(connection, "record_emails", ("email_norm", "record_id", "segment", "upload_id",
                                                     "source_line"), registry)
            copy_lines(connection, table, OWN_TABLE_COLUMNS + COPY_COLUMNS,
                       (f"{record_id}\t{upload_id}\t{line}" for line, (record_id,) in zip(chunk, ids)))


def copy_lines(connection, table, columns, lines):
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
    with connection.cursor().copy(statement) as copy:
        copy.write("".join(lines))


def migrate(app, revision):
    from flask_migrate import upgrade

    from webapp.extensions import db

    with app.app_context():
        upgrade(revision=revision)
        db.engine.dispose()


def bench_login(app):
    """The session id of an operator for the test client (created on first use)."""
    from webapp.extensions import db
    from webapp.models import Operator

    with app.app_context():
        operator = db.session.scalar(db.select(Operator).filter_by(email="bench@example.com"))
        if operator is None:
            operator = Operator(email="bench@example.com")
            operator.set_password("bench password")
            db.session.add(operator)
            db.session.commit()
        return operator.get_id()


def loaded_layout(url):
    """(records, attached partitions besides the shared one) of the stored data; (0, 0) when empty."""
    with psycopg.connect(url) as connection:
        if not connection.execute("SELECT to_regclass('record_emails') IS NOT NULL").fetchone()[0]:
            return 0, 0
        rows = connection.execute("SELECT count(*) FROM records").fetchone()[0]
        partitions = connection.execute(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'records'::regclass").fetchone()[0]
        return rows, partitions - 1


# Measuring

def rss_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def percentiles(samples):
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples) * 1000, cuts[94] * 1000


def timed_get(client, url, headers=None):
    started = time.perf_counter()
    response = client.get(url, headers=headers)
    body = response.get_data()
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise RuntimeError(f"{url} answered {response.status_code}")
    return elapsed, body.decode()


def next_url(page):
    found = re.search(r'rel="next" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def count_label(page):
    found = re.search(r'<p class="count"[^>]*>([^<]+)</p>', page)
    return found.group(1) if found else "?"


class Latencies:
    """The rows of the latency table, printed as they are measured: {request: (p50, p95)}."""

    def __init__(self):
        self.rows = {}

    def add(self, name, samples, urls, page):
        p50, p95 = percentiles(samples)
        self.rows[name] = p50, p95
        slowest = urls[max(range(len(samples)), key=samples.__getitem__)]
        print(f"| {name} | {len(samples)} | {p50:.1f} | {p95:.1f} | {max(samples) * 1000:.0f} "
              f"(`{slowest}`) | {count_label(page)} |", flush=True)


def measure(client, latencies, name, urls, headers=None):
    """GET each of `urls` (after 5 unmeasured ones to warm up) and record the latencies."""
    for url in urls[:5]:
        timed_get(client, url, headers)
    samples = []
    for url in urls:
        elapsed, page = timed_get(client, url, headers)
        samples.append(elapsed)
    latencies.add(name, samples, urls, page)


def walk(client, latencies, name, start, clicks, headers=None):
    """Follow `clicks` next links from `start`, record their latencies; returns the last URL."""
    url, samples, urls = start, [], []
    for _ in range(clicks):
        elapsed, page = timed_get(client, url, headers)
        samples.append(elapsed)
        urls.append(url)
        url = next_url(page)
    latencies.add(name, samples, urls, page)
    return url


def measure_export(client, url):
    gc.collect()
    before = peak = rss_mb()
    started = time.perf_counter()
    response = client.get(url, buffered=False)
    lines = size = 0
    for chunk in response.response:
        lines += chunk.count(b"\n")
        size += len(chunk)
        peak = max(peak, rss_mb())
    response.close()
    elapsed = time.perf_counter() - started
    rows = lines - 1
    print(f"| `{url}` | {rows:,} | {elapsed:.2f} | {rows / elapsed:,.0f} | {size / 2**20:.1f} | "
          f"{before:.0f} → {peak:.0f} |", flush=True)


def sample_queries(rows, count, seed=99):
    """Search terms an operator would type: email prefixes, names, companies."""
    rng = random.Random(seed)
    emails, names = [], []
    for line in generate_rows(min(rows, 200_000)):
        if rng.random() < 0.002:
            email, first, last, company = (line.split("\t")[index] for index in (1, 2, 3, 5))
            emails.append(email[:rng.randint(5, email.index("@") + 3)])
            company = last if company == "\\N" else company
            names.append(rng.choice([last, first[:3], f"{first} {last[:2]}", company[:rng.randint(3, 12)]]))
    return emails[:count], names[:count]


def deep_page_url(sort, direction, rows_before):
    """The list sorted by `sort` from the row after the first `rows_before`, as its Next link says."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Record
    from webapp.records.query import SORTS, RecordQuery, encode_cursor, sort_order

    query = RecordQuery(sort=sort, direction=direction)
    key = SORTS[sort].key(Record)
    value, record_id = db.session.execute(
        select(key, Record.id).order_by(*sort_order(query)).offset(rows_before - 1).limit(1)).one()
    db.session.rollback()
    return "/records?" + urlencode(query.link_args(after=encode_cursor(value, record_id)))


def run_measurements(app, session_id, rows, uploads, requests):
    """The latency and export tables; returns the Latencies."""
    from webapp.records.query import SORTS, default_direction

    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    latencies = Latencies()
    print("\n| request | n | p50 ms | p95 ms | slowest ms | count shown (last) |\n|---|---:|---:|---:|---|---|")
    clicks = CLICKS_PER_REQUEST * requests
    measure(client, latencies, "first page (full page)", ["/records"] * requests)
    deep_url = walk(client, latencies, f"each of {clicks:,} next clicks (htmx)", "/records", clicks, HTMX)
    measure(client, latencies, f"page {clicks + 1:,} by its cursor (full page)", [deep_url] * requests)
    deep_rows = min(DEEP_ROWS, rows // 2)
    for sort in SORTS:
        direction = default_direction(sort)
        first_url = "/records?" + urlencode({"sort": sort, "dir": direction})
        measure(client, latencies, f"sort by {sort} {direction}: first page (htmx)", [first_url] * requests, HTMX)
        measure(client, latencies, f"sort by {sort} {direction}: after row {deep_rows:,} (htmx)",
                [deep_page_url(sort, direction, deep_rows)] * requests, HTMX)
    email_terms, name_terms = sample_queries(rows, requests)
    email_searches = ["?" + urlencode({"q": term}) for term in email_terms]
    name_searches = ["?" + urlencode({"q": term}) for term in name_terms]
    measure(client, latencies, "email prefix search (htmx)", ["/records" + search for search in email_searches], HTMX)
    measure(client, latencies, "name / company search (htmx)", ["/records" + search for search in name_searches],
            HTMX)
    measure(client, latencies, "count of the name / company search (htmx)",
            ["/records/count" + search for search in name_searches], HTMX)
    walk(client, latencies, f"sort by last name A–Z, pages 1–{requests} (htmx)", "/records?sort=last_name&dir=asc",
         requests, HTMX)
    walk(client, latencies, f"sort by last name Z–A, pages 1–{requests} (htmx)", "/records?sort=last_name&dir=desc",
         requests, HTMX)
    measure(client, latencies, "filter by upload (full page)",
            [f"/records?upload={n % uploads + 1}" for n in range(requests)])
    measure(client, latencies, "count of the upload filter (htmx)",
            [f"/records/count?upload={n % uploads + 1}" for n in range(requests)], HTMX)
    countries = [list(COUNTRIES)[n % len(COUNTRIES)] for n in range(requests)]
    measure(client, latencies, "filter by country, sort by company (htmx)",
            [f"/records?country={country}&sort=company" for country in countries], HTMX)
    measure(client, latencies, "count of the country filter (htmx)",
            [f"/records/count?country={country}" for country in countries], HTMX)

    print("\n| export | rows | s | rows/s | MB | RSS before → peak (MB) |\n|---|---:|---:|---:|---:|---|")
    exported = min(7, uploads)
    for _ in range(3):
        measure_export(client, f"/records/export.csv?upload={exported}")
    measure_export(client, "/records/export.csv?country=US")
    return latencies


def set_shared_buffers(postgres, url, size):
    """shared_buffers for this run (PostgreSQL's default when `size` is None); restarts PostgreSQL."""
    with psycopg.connect(url, autocommit=True) as connection:
        if size:
            connection.execute(sql.SQL("ALTER SYSTEM SET shared_buffers = {}").format(size))
        else:
            connection.execute("ALTER SYSTEM RESET shared_buffers")
        connection.execute("CHECKPOINT")  # the restart is immediate: nothing to replay
    postgres.restart()


def machine():
    with open("/proc/meminfo") as meminfo:
        ram_kb = int(meminfo.readline().split()[1])
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    return f"{os.cpu_count()} cores ({cpu}), {ram_kb / 2**20:.0f} GB RAM"


def data_directory(partitions):
    return DATA / ("records" if partitions == 0 else f"records-p{partitions}")


def layout_name(partitions):
    return "shared partition only" if partitions == 0 else f"{partitions} own partitions"


def run_layout(args, partitions):
    """Load the layout unless its data directory holds it already, then measure it; returns the Latencies."""
    print(f"\n### {layout_name(partitions)}\n", flush=True)
    postgres = Postgres(data_directory(partitions) / "postgres")
    url = postgres.start()
    set_shared_buffers(postgres, url, args.shared_buffers)
    os.environ.update(DATABASE_URL=url, INTAKE_ENV="test", SECRET_KEY="bench")
    try:
        from webapp import create_app
        app = create_app()
        with psycopg.connect(url) as connection:
            version = connection.execute("SHOW server_version").fetchone()[0]
            shared_buffers = connection.execute("SHOW shared_buffers").fetchone()[0]
        print(f"- machine: {machine()}\n- PostgreSQL {version}, shared_buffers {shared_buffers}, "
              "otherwise stock settings")
        if args.reload or loaded_layout(url) != (args.rows, partitions):
            print(f"- loading {args.rows:,} records …", flush=True)
            if partitions:
                load_partitions(app, url, args.rows, partitions)
            else:
                load_shared(app, url, args.rows)
        else:
            migrate(app, "head")
        print(f"- load average before measuring: {os.getloadavg()[0]:.2f}", flush=True)
        with app.app_context():
            latencies = run_measurements(app, bench_login(app), args.rows, partitions or UPLOADS, args.requests)
        print(f"- load average after measuring: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")
        return latencies
    finally:
        postgres.stop()


def print_comparison(layouts):
    """p95 of every request per layout, side by side: {partitions: Latencies}."""
    print("\n### p95 ms by layout\n")
    print("| request | " + " | ".join(layout_name(partitions) for partitions in layouts) + " |")
    print("|---|" + "---:|" * len(layouts))
    for name in next(iter(layouts.values())).rows:
        cells = (f"{latencies.rows[name][1]:.1f}" for latencies in layouts.values())
        print(f"| {name} | " + " | ".join(cells) + " |")


def partition_counts(text):
    counts = [int(item) for item in text.split(",")]
    if any(count < 0 for count in counts):
        raise argparse.ArgumentTypeError("partition counts are 0 or more")
    return counts


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--partitions", type=partition_counts, default=[0],
                        help="uploads' own partitions holding the records, e.g. 50; 0 (the default): all in the "
                             "shared partition; several, e.g. 0,5,50: each layout in turn, then a comparison")
    parser.add_argument("--requests", type=int, default=REQUESTS,
                        help=f"requests per row of the table (default {REQUESTS}); fewer for slow layouts")
    parser.add_argument("--reload", action="store_true", help="drop the stored data and load it again")
    parser.add_argument("--shared-buffers", default=None, help="e.g. 4GB; PostgreSQL's default is 128MB")
    args = parser.parse_args()

    layouts = {partitions: run_layout(args, partitions) for partitions in args.partitions}
    if len(layouts) > 1:
        print_comparison(layouts)


if __name__ == "__main__":
    main()
