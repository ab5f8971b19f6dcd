"""The enqueue form offers the task catalog's names (issue 13, item 1): tasks published by
supervisors, even stopped ones, with no job of theirs in the table yet. On SQLite and
PostgreSQL (the ``db`` fixture)."""

from __future__ import annotations

from textual.widgets import Input
from tui_dbjobs import db_app
from tui_helpers import press, run_pilot, settle

from jobtui.models import Job, Supervisor
from jobtui.registry import Task, TaskRegistry
from jobtui.supervisor.catalog import publish_catalog
from jobtui.supervisor.config import SupervisorConfig, WorkerGroup
from jobtui.tui.screens.modals import EnqueueScreen


def test_the_enqueue_form_offers_the_catalogs_task_names(db):
    registry = TaskRegistry()
    registry.register(Task(func=print, name="billing.charge_card", defaults={"queue": "ux"}))
    config = SupervisorConfig(imports=("billing",), groups=(WorkerGroup(None, 1),),
                              name="gone-1", host="h")  # fmt: skip
    publish_catalog(db, config, registry)  # its supervisor has stopped since: no row
    assert Supervisor.select().count() == 0 and Job.select().count() == 0

    async def scenario(pilot):
        await press(pilot, "e")
        assert isinstance(pilot.app.screen, EnqueueScreen)
        await settle(pilot)
        await press(pilot, *"billing.ch")
        await settle(pilot)
        await press(pilot, "right")  # at the end of the input: accept the suggestion
        assert pilot.app.screen.query_one("#task", Input).value == "billing.charge_card"
        await press(pilot, "enter")
        (job,) = Job.select()
        assert (job.job_type, job.queue_name) == ("billing.charge_card", "ux")

    run_pilot(db_app(db), scenario)
