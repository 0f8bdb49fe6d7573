"""Records list benchmark: page latency and CSV export speed on 5 million records.

    .venv/bin/python bench/records_bench.py                 # load once (≈ 5 min), then measure
    .venv/bin/python bench/records_bench.py --reload        # throw the data away and load again
    .venv/bin/python bench/records_bench.py --rows 200000   # a quick try

It runs its own PostgreSQL under bench/data/records/ with scripts/services.py
(stock settings) and keeps the data for the next run. A fresh load migrates to
0001, COPYs the records of 50 uploads (deterministic: same names, companies,
countries and ties every time; each upload's rows share one created_at per
50,000-row chunk, as ingest writes them), then migrates to head, which builds
the indexes of 0002 on the full table.

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
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import urlencode

import psycopg
from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.services import Postgres  # noqa: E402

DATA = ROOT / "bench" / "data" / "records"
UPLOADS = 50
CHUNK_ROWS = 50_000
REQUESTS = 200
DEEP_CLICKS = 2000
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


def load(app, url, rows):
    """Load `rows` records into an empty schema; prints and returns what it took."""
    figures = {}
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("DROP SCHEMA public CASCADE")
        connection.execute("CREATE SCHEMA public")
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
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE records")
    print(f"- load: {rows:,} rows by COPY in {figures['load_seconds']:.0f} s; "
          f"migration 0002 (building its indexes) {figures['migrate_0002_seconds']:.0f} s")
    print(f"- an ingest-like COPY of 100,000 more rows into the full table: "
          f"{figures['copy_rate_0001']:,.0f} rows/s with the indexes of 0001, "
          f"{figures['copy_rate_0002']:,.0f} rows/s with those of 0002 too", flush=True)
    return figures


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


def loaded_rows(url):
    with psycopg.connect(url) as connection:
        has_table = connection.execute("SELECT to_regclass('records') IS NOT NULL").fetchone()[0]
        return connection.execute("SELECT count(*) FROM records").fetchone()[0] if has_table else 0


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


def print_latencies(name, samples, urls, page):
    p50, p95 = percentiles(samples)
    slowest = urls[max(range(len(samples)), key=samples.__getitem__)]
    print(f"| {name} | {len(samples)} | {p50:.1f} | {p95:.1f} | {max(samples) * 1000:.0f} "
          f"(`{slowest}`) | {count_label(page)} |", flush=True)


def measure(client, name, urls, headers=None):
    """GET each of `urls` (after 5 unmeasured ones to warm up) and print the latencies."""
    for url in urls[:5]:
        timed_get(client, url, headers)
    samples = []
    for url in urls:
        elapsed, page = timed_get(client, url, headers)
        samples.append(elapsed)
    print_latencies(name, samples, urls, page)


def walk(client, name, start, clicks, headers=None):
    """Follow `clicks` next links from `start`, print their latencies; returns the last URL."""
    url, samples, urls = start, [], []
    for _ in range(clicks):
        elapsed, page = timed_get(client, url, headers)
        samples.append(elapsed)
        urls.append(url)
        url = next_url(page)
    print_latencies(name, samples, urls, page)
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


def sample_queries(rows, seed=99):
    """Search terms an operator would type: email prefixes, names, companies."""
    rng = random.Random(seed)
    emails, names = [], []
    for line in generate_rows(min(rows, 200_000)):
        if rng.random() < 0.002:
            email, first, last, company = (line.split("\t")[index] for index in (1, 2, 3, 5))
            emails.append(email[:rng.randint(5, email.index("@") + 3)])
            company = last if company == "\\N" else company
            names.append(rng.choice([last, first[:3], f"{first} {last[:2]}", company[:rng.randint(3, 12)]]))
    return emails[:REQUESTS], names[:REQUESTS]


def run_measurements(app, session_id, rows):
    client = app.test_client()
    with client.session_transaction() as session:
        session["_user_id"] = session_id
        session["_fresh"] = True
    print("\n| request | n | p50 ms | p95 ms | slowest ms | count shown (last) |\n|---|---:|---:|---:|---|---|")
    measure(client, "first page (full page)", ["/records"] * REQUESTS)
    deep_url = walk(client, f"each of {DEEP_CLICKS:,} next clicks (htmx)", "/records", DEEP_CLICKS, HTMX)
    measure(client, f"page {DEEP_CLICKS + 1:,} by its cursor (full page)", [deep_url] * REQUESTS)
    email_terms, name_terms = sample_queries(rows)
    email_searches = ["?" + urlencode({"q": term}) for term in email_terms]
    name_searches = ["?" + urlencode({"q": term}) for term in name_terms]
    measure(client, "email prefix search (htmx)", ["/records" + search for search in email_searches], HTMX)
    measure(client, "name / company search (htmx)", ["/records" + search for search in name_searches], HTMX)
    measure(client, "its count, loaded after the rows (htmx)", ["/records/count" + search for search in name_searches],
            HTMX)
    walk(client, "sort by last name A–Z, pages 1–200 (htmx)", "/records?sort=last_name&dir=asc", REQUESTS, HTMX)
    walk(client, "sort by last name Z–A, pages 1–200 (htmx)", "/records?sort=last_name&dir=desc", REQUESTS, HTMX)
    measure(client, "filter by upload (full page)", [f"/records?upload={n % UPLOADS + 1}" for n in range(REQUESTS)])
    measure(client, "its count, loaded after the rows (htmx)",
            [f"/records/count?upload={n % UPLOADS + 1}" for n in range(REQUESTS)], HTMX)
    countries = list(COUNTRIES) * (REQUESTS // len(COUNTRIES))
    measure(client, "filter by country, sort by company (htmx)",
            [f"/records?country={country}&sort=company" for country in countries], HTMX)
    measure(client, "its count, loaded after the rows (htmx)",
            [f"/records/count?country={country}" for country in countries], HTMX)

    print("\n| export | rows | s | rows/s | MB | RSS before → peak (MB) |\n|---|---:|---:|---:|---:|---|")
    for _ in range(3):
        measure_export(client, "/records/export.csv?upload=7")
    measure_export(client, "/records/export.csv?country=US")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--reload", action="store_true", help="drop the stored data and load it again")
    parser.add_argument("--shared-buffers", default=None, help="e.g. 4GB; PostgreSQL's default is 128MB")
    args = parser.parse_args()

    postgres = Postgres(DATA / "postgres")
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
        if args.reload or loaded_rows(url) != args.rows:
            print(f"- loading {args.rows:,} records …", flush=True)
            load(app, url, args.rows)
        else:
            migrate(app, "head")
        print(f"- load average before measuring: {os.getloadavg()[0]:.2f}", flush=True)
        with app.app_context():
            run_measurements(app, bench_login(app), args.rows)
        print(f"- load average after measuring: {os.getloadavg()[0]:.2f} (1 min), {os.getloadavg()[1]:.2f} (5 min)")
    finally:
        postgres.stop()


if __name__ == "__main__":
    main()
