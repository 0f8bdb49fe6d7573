"""Writes a realistic contacts CSV for the ingest benchmark, deterministically.

    python bench/make_csv.py ROWS OUT.csv [--seed N] [--clean-out CLEAN.tsv]

ROWS data records follow the header
email,first_name,last_name,phone,company,city,country,notes. About 5% of them
repeat the email of an earlier record, at random distances (some a few lines
back, some across the whole file; some differ only in letter case or
surrounding spaces), and about 1% are invalid (a malformed or missing email, too
few or too many fields). Names and cities are accented UTF-8; companies and
notes hold commas and double quotes, some notes span several lines. Lines end
in CRLF, as spreadsheet exports do.

The file is written as it is generated, in constant memory: a duplicate's
email is recomputed from the index of the record it repeats.

--clean-out writes what `records` should hold afterwards (the first record of
every email, valid ones only) in PostgreSQL's COPY text format, with the
columns of jobs.rows.COPY_COLUMNS:
email, first_name, last_name, phone, company, city, country, email_norm, extra,
upload_id, source_line. Load it with
    \\copy copy_baseline (email, first_name, …, source_line) FROM 'CLEAN.tsv'

A summary (records, clean unique rows, duplicates, invalid lines, bytes) is
printed as JSON and written next to OUT.csv as OUT.csv.json.
"""
import argparse
import csv
import json
import random
import sys
import time

HEADER = ["email", "first_name", "last_name", "phone", "company", "city", "country", "notes"]
CLEAN_COLUMNS = ["email", "first_name", "last_name", "phone", "company", "city", "country",
                 "email_norm", "extra", "upload_id", "source_line"]

DUPLICATE_SHARE = 0.05
INVALID_SHARE = 0.01

# (as written, as it appears in an email address)
FIRST_NAMES = [
    ("José", "jose"), ("François", "francois"), ("Zoë", "zoe"), ("Björn", "bjorn"), ("Łukasz", "lukasz"),
    ("Søren", "soren"), ("Ágnes", "agnes"), ("Çağla", "cagla"), ("Renée", "renee"), ("Jürgen", "jurgen"),
    ("Anaïs", "anais"), ("Íñigo", "inigo"), ("Małgorzata", "malgorzata"), ("Dvořák", "dvorak"),
    ("Maria", "maria"), ("John", "john"), ("Emma", "emma"), ("Liam", "liam"), ("Olivia", "olivia"),
    ("Noah", "noah"), ("Ava", "ava"), ("Lucas", "lucas"), ("Mia", "mia"), ("Hugo", "hugo"),
    ("Chloé", "chloe"), ("Mateo", "mateo"), ("Sofía", "sofia"), ("Yusuf", "yusuf"), ("Aiko", "aiko"),
    ("Priya", "priya"), ("Wei", "wei"), ("Olga", "olga"), ("Ingrid", "ingrid"), ("Pedro", "pedro"),
    ("Giulia", "giulia"), ("Hannah", "hannah"), ("Mohammed", "mohammed"), ("Fatima", "fatima"),
    ("Kirsi", "kirsi"), ("Siobhán", "siobhan"), ("Þóra", "thora"), ("Dušan", "dusan"),
]
LAST_NAMES = [
    ("García", "garcia"), ("Müller", "muller"), ("Łopata", "lopata"), ("Østergaard", "ostergaard"),
    ("Nuñez", "nunez"), ("Lefèvre", "lefevre"), ("Dvořáková", "dvorakova"), ("Öztürk", "ozturk"),
    ("Smith", "smith"), ("Johnson", "johnson"), ("Brown", "brown"), ("Rossi", "rossi"),
    ("Schmidt", "schmidt"), ("Dubois", "dubois"), ("Silva", "silva"), ("Kowalski", "kowalski"),
    ("Nakamura", "nakamura"), ("Kim", "kim"), ("Patel", "patel"), ("Novak", "novak"),
    ("Jansen", "jansen"), ("Andersson", "andersson"), ("O'Brien", "obrien"), ("Van der Berg", "vanderberg"),
    ("Ivanova", "ivanova"), ("Papadopoulos", "papadopoulos"), ("Kovač", "kovac"), ("Gonçalves", "goncalves"),
    ("Sørensen", "sorensen"), ("Virtanen", "virtanen"), ("Horváth", "horvath"), ("Ní Bhriain", "nibhriain"),
]
DOMAINS = ["example.com", "example.org", "mail.example.net", "corp.example.de", "example.co.uk",
           "bücher.example", "posteo.example", "example.fr", "uni-example.edu", "example.io"]
# A few addresses keep the accents in the local part (RFC 6531).
ACCENTED_LOCAL_SHARE = 0.02
COMPANIES = ["Acme GmbH", "Müller, Schmidt & Partner", "Globex Corporation", "Initech", "Société Générale",
             "Umbrella, Inc.", 'The "Good" Coffee Co.', "Nordisk Øl A/S", "Żabka Polska", "Hooli",
             "Vandelay Industries", "Stark Industries", "Wayne Enterprises", "Łódź Tech, sp. z o.o.",
             "Čedok a.s.", "Banco Río de la Plata", "Fábrica de Sonhos, Lda.", ""]
PLACES = [("São Paulo", "BR"), ("Zürich", "CH"), ("Kraków", "PL"), ("Malmö", "SE"), ("Besançon", "FR"),
          ("Reykjavík", "IS"), ("A Coruña", "ES"), ("Łódź", "PL"), ("Nürnberg", "DE"), ("Montréal", "CA"),
          ("New York", "US"), ("London", "GB"), ("Tokyo", "JP"), ("Dublin", "IE"), ("İstanbul", "TR"),
          ("København", "DK"), ("Brno", "CZ"), ("Lisboa", "PT"), ("Berlin", "DE"), ("Austin", "US"),
          ("", ""), ("Graz", "")]
NOTES = ["", "", "", "", "", "", "", "", "Met at the trade fair", "Prefers email, not phone",
         "Call back after 3pm, ask for the office", "VIP customer", "Newsletter: yes",
         'Said "maybe next quarter"', "Lead from webinar, follow up", "Änderung der Adresse angefragt",
         "Invoice address differs, see CRM", "Line one\nLine two", "Address:\nHauptstraße 5\n10115 Berlin",
         "Moved to the Lyon office; new phone pending", "Référence client: 12, 34 et 56"]
PHONE_FORMATS = ["+49 30 {a}{b}", "+1 (555) {a}-{b}", "+44 20 {a} {b}", "0{a}/{b}", "+33 1 {a} {b}", ""]

# Each of these fails webapp.validation's email check (or the field count check).
BAD_EMAILS = ["{l}.example.com", "{l}@@example.com", "{l}@", "@example.com", "{l} x@example.com",
              "{l}..x@example.com", "{l}@example", "{l}@-example.com", "{l}@example.123", ""]

MULTIPLIER = 0x9E3779B97F4A7C15
MASK = (1 << 64) - 1
ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
ACCENTED_LOCAL = {"jose": "josé", "francois": "françois", "zoe": "zoë", "agnes": "ágnes", "renee": "renée",
                  "jurgen": "jürgen", "anais": "anaïs", "sofia": "sofía", "chloe": "chloé"}


def base36(number):
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = ALPHABET[digit] + digits
        if not number:
            return digits


def email_of(index, seed):
    """The email of the index-th unique record: unique by construction (the part
    after the last dot of the local part is the index), lower case."""
    h = ((index + 1) * MULTIPLIER + seed * 0xD1B54A32D192ED03) & MASK
    first = FIRST_NAMES[h % len(FIRST_NAMES)][1]
    last = LAST_NAMES[(h >> 8) % len(LAST_NAMES)][1]
    domain = DOMAINS[(h >> 16) % len(DOMAINS)]
    style = (h >> 24) % 4
    if (h >> 32) % 1000 < ACCENTED_LOCAL_SHARE * 1000:
        first = ACCENTED_LOCAL.get(first, first)
    if style == 0:
        local = f"{first}.{last}"
    elif style == 1:
        local = f"{first[0]}{last}"
    elif style == 2:
        local = f"{last}_{first}"
    else:
        local = f"{first}+news"
    return f"{local}.{base36(index)}@{domain}"


def case_variant(email, rng):
    """The same address as someone else typed it: other letter case or stray spaces."""
    kind = rng.random()
    if kind < 0.35:
        variant = email.upper()
    elif kind < 0.7:
        local, domain = email.split("@")
        variant = local[:1].upper() + local[1:] + "@" + domain.capitalize()
    else:
        variant = f" {email} "
    return variant if variant.strip().lower() == email else email


class CopyText:
    """Values in PostgreSQL's COPY text format, as jobs.rows.copy_cell writes them."""
    SPECIALS = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})

    @classmethod
    def cell(cls, value):
        if value is None or value == "":
            return "\\N"
        return str(value).translate(cls.SPECIALS)

    @classmethod
    def line(cls, values):
        return "\t".join(map(cls.cell, values)) + "\n"


class Generator:
    def __init__(self, rows, seed, upload_id):
        self.rows = rows
        self.seed = seed
        self.upload_id = upload_id
        self.rng = random.Random(seed)
        self.unique = 0
        self.physical_line = 1           # the header
        self.counts = dict(records=0, unique=0, duplicates=0, duplicates_case_or_space=0, invalid=0,
                           invalid_email=0, invalid_field_count=0, multiline_records=0)

    def person(self, email):
        r = self.rng.random
        first = FIRST_NAMES[int(r() * len(FIRST_NAMES))][0]
        last = LAST_NAMES[int(r() * len(LAST_NAMES))][0]
        number = int(r() * 100_000_000)
        phone = PHONE_FORMATS[int(r() * len(PHONE_FORMATS))].format(a=number // 10_000, b=number % 10_000)
        company = COMPANIES[int(r() * len(COMPANIES))]
        city, country = PLACES[int(r() * len(PLACES))]
        notes = NOTES[int(r() * len(NOTES))]
        return [email, first, last, phone, company, city, country, notes]

    def record(self):
        """(fields as written, clean row or None)."""
        self.counts["records"] += 1
        kind = self.rng.random()
        if kind < INVALID_SHARE:
            return self.invalid(), None
        if kind < INVALID_SHARE + DUPLICATE_SHARE and self.unique:
            return self.duplicate(), None
        email = email_of(self.unique, self.seed)
        self.unique += 1
        self.counts["unique"] += 1
        fields = self.person(email)
        return fields, fields

    def duplicate(self):
        # Log-uniform distance: as many near (same chunk) as far (other chunks) repeats.
        distance = int(self.unique ** self.rng.random())
        target = self.unique - distance
        email = email_of(target, self.seed)
        if self.rng.random() < 0.4:
            variant = case_variant(email, self.rng)
            if variant != email:
                self.counts["duplicates_case_or_space"] += 1
            email = variant
        self.counts["duplicates"] += 1
        return self.person(email)

    def invalid(self):
        self.counts["invalid"] += 1
        r = self.rng.random()
        fields = self.person(f"bad.{base36(self.counts['records'])}@example.com")
        if r < 0.6:
            self.counts["invalid_email"] += 1
            pattern = BAD_EMAILS[int(self.rng.random() * len(BAD_EMAILS))]
            fields[0] = pattern.format(l=f"bad{base36(self.counts['records'])}")
        elif r < 0.8:
            self.counts["invalid_field_count"] += 1
            fields = fields[:6]
        else:
            self.counts["invalid_field_count"] += 1
            fields = fields + ["unexpected", "columns"]
        return fields

    def clean_line(self, fields, line):
        email, first, last, phone, company, city, country, notes = fields
        email = email.strip()
        extra = json.dumps({"notes": notes}, ensure_ascii=False) if notes else "{}"
        return CopyText.line([email, first, last, phone, company, city, country, email.lower(), extra,
                              self.upload_id, line])

    def write(self, out, clean_out=None, batch=2000):
        writer = csv.writer(out, lineterminator="\r\n")
        writer.writerow(HEADER)
        self.physical_line = 2
        written = 0
        while written < self.rows:
            rows, clean = [], []
            for _ in range(min(batch, self.rows - written)):
                fields, clean_row = self.record()
                rows.append(fields)
                newlines = sum(value.count("\n") for value in fields)
                if newlines:
                    self.counts["multiline_records"] += 1
                if clean_row is not None and clean_out is not None:
                    clean.append(self.clean_line(clean_row, self.physical_line))
                self.physical_line += 1 + newlines
            writer.writerows(rows)
            if clean_out is not None:
                clean_out.write("".join(clean))
            written += len(rows)
        self.counts["physical_lines"] = self.physical_line - 1


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("rows", type=int, help="data records after the header")
    parser.add_argument("out", help="the CSV file to write")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--clean-out", help="also write the clean, deduplicated rows (COPY text format)")
    parser.add_argument("--upload-id", type=int, default=1, help="upload_id column of --clean-out (default 1)")
    args = parser.parse_args(argv)

    started = time.monotonic()
    generator = Generator(args.rows, args.seed, args.upload_id)
    with open(args.out, "w", encoding="utf-8", newline="") as out:
        if args.clean_out:
            with open(args.clean_out, "w", encoding="utf-8", newline="") as clean_out:
                generator.write(out, clean_out)
        else:
            generator.write(out)
        size = out.tell()
    summary = dict(file=args.out, seed=args.seed, bytes=size, **generator.counts,
                   clean_out=args.clean_out, clean_columns=CLEAN_COLUMNS if args.clean_out else None,
                   seconds=round(time.monotonic() - started, 1))
    with open(args.out + ".json", "w", encoding="utf-8") as meta:
        json.dump(summary, meta, indent=2)
    json.dump(summary, sys.stdout, indent=2)
    print()
    print(f"{summary['unique']:,} clean unique rows out of {summary['records']:,} records "
          f"({summary['duplicates']:,} duplicates, {summary['invalid']:,} invalid)", file=sys.stderr)


if __name__ == "__main__":
    main()
