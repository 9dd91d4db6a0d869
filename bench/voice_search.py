"""Searching the archive by voice with 100,000 stored speaker vectors, on the fallback path.

    python bench/voice_search.py [--speakers 100000] [--queries 300]

Makes a database of its own (migrated to head) on the services' PostgreSQL, stores one tenant's
speakers (25,000 finished jobs of 4 speakers, 256-dimensional GE2E-like centroids: a common
component plus a per-person direction), plus a second tenant's 10,000 that must never be
returned, and times what `GET /v1/voices/<id>/meetings` does (hark/voice_search.py): the
in-process index's freshness check and matrix ranking, top 20 jobs. Printed: the first (cold)
load, p50 / p99 of warm searches, the cost of a refresh after new jobs arrive, and, for
comparison, the pgvector query run as plain SQL against a stand-in `vector` type (cosine in SQL
over unnest), which is what a server without pgvector would have to do in the database. pgvector
itself cannot run here (no package for this server); its query is validated by the tests.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT)]

from sqlalchemy import text  # noqa: E402

from hark.db import session_scope  # noqa: E402
from hark.settings import Settings  # noqa: E402
from hark.voice_search import PGVECTOR_SQL, SpeakerIndex  # noqa: E402
from tests.conftest import _load_service_env, alembic, create_database, drop_database  # noqa: E402

DIM = 256


def fill(url: str, tenant: uuid.UUID, speakers: int, rng: np.random.Generator, people: int = 2000) -> None:
    """`speakers` rows in finished jobs of 4 speakers, written with COPY."""
    common = rng.normal(size=DIM) * 3
    voices = common + rng.normal(size=(people, DIM))
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as conn:
        conn.execute("INSERT INTO tenants (id, name) VALUES (%s, %s)", (tenant, f"bench-{tenant.hex[:6]}"))
        jobs = [uuid.uuid4() for _ in range(speakers // 4)]
        with conn.cursor().copy("COPY jobs (id, tenant_id, status, filename, options, timings) FROM STDIN") as cp:
            for j in jobs:
                cp.write_row((j, tenant, "done", f"{j.hex[:8]}.wav", "{}", "{}"))
        with conn.cursor().copy("COPY speakers (job_id, tenant_id, label, speech_s, turns, centroid) FROM STDIN") as cp:
            for i in range(speakers):
                vec = voices[rng.integers(people)] + 0.3 * rng.normal(size=DIM)
                cp.write_row((jobs[i // 4], tenant, f"SPEAKER_{i % 4:02d}", 60.0, 10, [float(x) for x in vec]))
        conn.commit()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--speakers", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300)
    args = parser.parse_args()
    _load_service_env()
    base = Settings.from_env()
    name = f"hark_bench_voices_{uuid.uuid4().hex[:6]}"
    url = create_database(base.database_url, name)
    try:
        alembic(url, "upgrade", "head")
        rng = np.random.default_rng(0)
        tenant, other = uuid.uuid4(), uuid.uuid4()
        started = time.perf_counter()
        fill(url, tenant, args.speakers, rng)
        fill(url, other, 10_000, rng)
        with session_scope(url) as s:
            s.execute(text("ANALYZE speakers"))
        print(f"stored {args.speakers} + 10000 speaker vectors in {time.perf_counter() - started:.1f} s")

        index = SpeakerIndex()
        queries = rng.normal(size=(args.queries, DIM)) + rng.normal(size=DIM) * 3
        with session_scope(url) as s:
            t0 = time.perf_counter()
            hits = index.search(s, tenant, queries[0], 20)
            print(f"cold load + first search: {(time.perf_counter() - t0) * 1000:.0f} ms ({len(hits)} jobs)")
        times = []
        for q in queries:
            with session_scope(url) as s:
                t0 = time.perf_counter()
                index.search(s, tenant, q, 20)
                times.append(time.perf_counter() - t0)
        ms = np.array(times) * 1000
        print(
            f"warm search, {args.speakers} vectors, top 20 jobs: p50 {np.percentile(ms, 50):.1f} ms,"
            f" p99 {np.percentile(ms, 99):.1f} ms, max {ms.max():.1f} ms ({len(ms)} searches)"
        )
        fill_more = uuid.uuid4()
        with session_scope(url) as s:
            job = s.execute(text("SELECT id FROM jobs WHERE tenant_id = :t LIMIT 1"), {"t": tenant}).scalar()
            s.execute(
                text(
                    "INSERT INTO jobs (id, tenant_id, status, filename, options, timings)"
                    " VALUES (:j, :t, 'done', 'new.wav', '{}', '{}')"
                ),
                {"j": fill_more, "t": tenant},
            )
            s.execute(
                text(
                    "INSERT INTO speakers (job_id, tenant_id, label, speech_s, turns, centroid)"
                    " SELECT :j, tenant_id, label, speech_s, turns, centroid FROM speakers WHERE job_id = :old"
                ),
                {"j": fill_more, "old": job},
            )
        with session_scope(url) as s:
            t0 = time.perf_counter()
            index.search(s, tenant, queries[0], 20)
            print(f"search after a new job arrived (appends 4 rows): {(time.perf_counter() - t0) * 1000:.1f} ms")

        with session_scope(url) as s:
            s.execute(text("CREATE SCHEMA stand_in"))
            s.execute(text("CREATE DOMAIN stand_in.vector AS real[]"))
            s.execute(
                text(
                    "CREATE FUNCTION stand_in.cosine_distance(a real[], b real[]) RETURNS double precision"
                    " LANGUAGE sql IMMUTABLE AS $$ SELECT 1 - sum(x * y) / (sqrt(sum(x * x)) * sqrt(sum(y * y)))"
                    " FROM unnest(a, b) AS t(x, y) $$"
                )
            )
            s.execute(
                text(
                    "CREATE OPERATOR stand_in.<=> (LEFTARG = real[], RIGHTARG = real[],"
                    " FUNCTION = stand_in.cosine_distance)"
                )
            )
        sql_times = []
        for q in queries[:3]:
            with session_scope(url) as s:
                s.execute(text("SET LOCAL search_path = stand_in, public"))
                t0 = time.perf_counter()
                s.execute(
                    text(PGVECTOR_SQL),
                    {"q": [float(x) for x in q], "tenant": tenant, "dim": DIM, "exclude": None, "k": 20},
                ).all()
                sql_times.append(time.perf_counter() - t0)
        print(f"the same ranking as plain SQL (no pgvector): {np.median(sql_times) * 1000:.0f} ms per search")
    finally:
        drop_database(base.database_url, name)


if __name__ == "__main__":
    main()
