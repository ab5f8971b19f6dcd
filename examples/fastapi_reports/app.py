"""A FastAPI application that queues work in its own transaction and streams its progress.

``POST /reports`` adds a report row and enqueues the job that builds it in the same
SQLAlchemy transaction: both exist, or (an error, or ``dry_run``) neither does.
``GET /reports/jobs/{id}/events`` streams the job's progress as server-sent events, from
``jobtui.aio.watch``. ``GET /`` is a page that does both from a browser.

The application and jobtui share one database: ``JOBTUI_DATABASE`` (a jobtui URL such as
``sqlite:////tmp/reports.db`` or ``postgresql://user@host/db``).
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel
from sqlalchemy import String
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from tasks import build_report

import jobtui
from jobtui import aio


class Base(DeclarativeBase):
    pass


class Report(Base):
    __tablename__ = "reports"
    id: Mapped[int] = mapped_column(primary_key=True)
    title: Mapped[str] = mapped_column(String(200))
    job_id: Mapped[str | None] = mapped_column(String(36))


def sqlalchemy_url(jobtui_url: str) -> str:
    """The same database as SQLAlchemy's async drivers name it."""
    scheme, rest = jobtui_url.split("://", 1)
    return ("sqlite+aiosqlite://" if scheme == "sqlite" else "postgresql+psycopg://") + rest


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    url = os.environ.get("JOBTUI_DATABASE", "sqlite:////tmp/reports.db")
    jobtui.use_database(url)  # creates or migrates jobtui's tables (once, at start)
    engine = create_async_engine(sqlalchemy_url(url))
    async with engine.begin() as connection:
        await connection.run_sync(Base.metadata.create_all)
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()
    await aio.close()


app = FastAPI(lifespan=lifespan)


async def session() -> AsyncIterator[AsyncSession]:
    """The request's session: what it does not commit is rolled back when it closes."""
    async with app.state.sessions() as db_session:
        yield db_session


RequestSession = Annotated[AsyncSession, Depends(session)]


class NewReport(BaseModel):
    title: str
    pages: int = 5
    dry_run: bool = False


@app.post("/reports")
async def create_report(new: NewReport, db_session: RequestSession) -> dict:
    report = Report(title=new.title)
    db_session.add(report)
    await db_session.flush()  # the report's id, for the job's arguments
    job = await aio.enqueue(build_report, args=[report.id, new.pages], session=db_session)
    report.job_id = job.id
    if new.dry_run:
        await db_session.rollback()  # neither the report nor its job
    else:
        await db_session.commit()  # both; the supervisors are woken now
    return {"report": report.id, "job": job.id, "queued": not new.dry_run}


@app.get("/reports/jobs/{job_id}/events")
async def job_events(job_id: str) -> StreamingResponse:
    async def events() -> AsyncIterator[str]:
        async for job in aio.watch(job_id, timeout=600):
            data = {"status": job.status, "percent": job.progress_percentage,
                    "message": job.progress_message}  # fmt: skip
            yield f"event: progress\ndata: {json.dumps(data)}\n\n"
        data = {"status": job.status, "result": job.result, "error": job.error_message}
        yield f"event: done\ndata: {json.dumps(data)}\n\n"

    return StreamingResponse(events(), media_type="text/event-stream")


PAGE = """<!doctype html><title>Reports</title>
<button onclick="build()">Build a report</button><pre id="log"></pre>
<script>
async function build() {
  const r = await fetch("/reports", {method: "POST", headers: {"Content-Type": "application/json"},
                                     body: JSON.stringify({title: "Monthly"})});
  const {job} = await r.json();
  const events = new EventSource(`/reports/jobs/${job}/events`);
  const log = (e) => document.getElementById("log").textContent += e.data + "\\n";
  events.addEventListener("progress", log);
  events.addEventListener("done", (e) => { log(e); events.close(); });
}
</script>"""


@app.get("/", response_class=HTMLResponse)
async def index() -> str:
    return PAGE
