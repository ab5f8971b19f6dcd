"""Demo tasks: the seeds' business jobs, with real progress, failures and retries.

Run them with ``jobtui-supervisor --import jobtui.demo`` and enqueue with
``jobtui enqueue jobtui.demo.send_email --kwargs '{"to": "a@example.com"}'``.
The sleeps stand in for I/O; nothing leaves the machine.
"""

from __future__ import annotations

import hashlib
import random
import time

from jobtui import PermanentError, current_job, task


def _steps(total_s: float, steps: int, label: str) -> None:
    for step in range(steps):
        job = current_job()
        if job.cancel_requested:
            return
        job.progress(100 * step / steps, f"{label} {step + 1}/{steps}")
        time.sleep(total_s / steps)


@task(queue="emails", max_retries=5, retry_delay=2)
def send_email(to: str, subject: str = "Hello", body: str = "") -> dict:
    """Email notification: fails now and then, as SMTP servers do, and is retried."""
    _steps(0.5, 2, "rendering")
    if random.random() < 0.15:
        raise ConnectionError(f"SMTP server refused the connection for {to}")
    return {"sent": True, "to": to, "subject": subject}


@task(queue="orders", max_retries=3, timeout=30)
def process_order(order_id: int, items: int = 3) -> dict:
    """Order processing: reserve, charge, ship — one step per item."""
    _steps(1.5, max(1, items), "processing item")
    return {"order_id": order_id, "status": "fulfilled"}


@task(queue="orders")
def process_payment(order_id: int, amount_cents: int) -> dict:
    """Payment processing: a declined card is a permanent error (never retried)."""
    _steps(0.6, 3, "authorising")
    if amount_cents <= 0:
        raise PermanentError(f"invalid amount {amount_cents} for order {order_id}")
    return {"order_id": order_id, "charged": amount_cents}


@task(queue="sync", timeout=60)
def sync_inventory(warehouse: str = "main", skus: int = 20) -> dict:
    """Inventory sync: walks the catalogue in pages."""
    _steps(3.0, 10, "page")
    return {"warehouse": warehouse, "synced": skus}


@task(queue="reports", timeout=120)
def build_report(name: str = "daily-sales") -> dict:
    """Analytics report: a slow aggregate."""
    _steps(6.0, 12, "aggregating")
    return {"report": name, "rows": random.randint(100, 5000)}


@task(queue="media", max_retries=2)
def resize_image(image_id: int, sizes: list[int] | None = None) -> dict:
    """Image processing: one rendition per size."""
    sizes = sizes or [64, 256, 1024]
    for index, size in enumerate(sizes):
        current_job().progress(100 * index / len(sizes), f"{size}px")
        time.sleep(0.3)
    return {"image_id": image_id, "renditions": sizes}


@task(queue="exports", timeout=300)
def export_data(table: str = "orders", rows: int = 10_000) -> dict:
    """Data export: streams rows into a file (here: a checksum)."""
    digest = hashlib.sha256()
    for chunk in range(20):
        digest.update(f"{table}:{chunk}".encode())
        current_job().progress(5 * chunk, f"{chunk * rows // 20} rows")
        time.sleep(0.2)
    return {"table": table, "rows": rows, "sha256": digest.hexdigest()[:16]}


@task(queue="ingest")
def ingest_file(path: str) -> dict:
    """File ingestion: parse, then split into chunks for embeddings."""
    _steps(1.0, 4, "parsing")
    return {"path": path, "chunks": 12}


@task(queue="ingest", max_retries=4)
def generate_embeddings(document_id: int, chunks: int = 12) -> dict:
    """Embedding generation: a flaky model server."""
    _steps(1.2, chunks, "chunk")
    if random.random() < 0.1:
        raise TimeoutError("embedding server timed out")
    return {"document_id": document_id, "vectors": chunks}


@task(queue="maintenance")
def cleanup(days: int = 7) -> dict:
    """Cleanup: prunes old rows."""
    _steps(0.4, 2, "pruning")
    return {"pruned_older_than_days": days}


@task(queue="default")
def always_fails(reason: str = "demo failure") -> None:
    """A job that always fails, to fill the Failures view."""
    raise RuntimeError(reason)
