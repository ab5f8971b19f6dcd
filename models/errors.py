"""The exceptions of jobtui: one root, a docstring that is the default message.

The CLI turns every ``JobtuiError`` into one line on stderr and a non-zero exit, so a
user mistake never surfaces as a traceback. ``StoreError`` is always raised *from* the
driver's error, so the cause stays one ``__cause__`` away for whoever needs it.
"""

from __future__ import annotations


class JobtuiError(Exception):
    """jobtui failed."""

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or (self.__doc__ or "").strip())


class ConfigurationError(JobtuiError):
    """The configuration is not usable."""


class NoDatabase(ConfigurationError):
    """There is no jobtui database there yet; any write (or a supervisor) creates one."""


class StoreError(JobtuiError):
    """The job database could not be used."""


class DatabaseUnavailable(StoreError):
    """The job database cannot be reached."""


class ConnectionLost(DatabaseUnavailable):
    """The connection to the job database broke (a server restart, a cut connection)."""


class CommitUncertain(ConnectionLost):
    """The connection to the job database broke while a write was being committed: it may
    or may not have been written. Check (poll the job, list the jobs) before doing it again."""


class DiskFull(StoreError):
    """database or disk is full"""


class SchemaTooNew(StoreError):
    """The database was written by a newer jobtui; upgrade jobtui to use it."""


class JobNotFound(JobtuiError, LookupError):
    """No such job."""


class TaskNotFound(JobtuiError, LookupError):
    """No such task is registered."""


class InvalidJob(JobtuiError, ValueError):
    """The job was refused; nothing was written."""


class InvalidTransition(JobtuiError):
    """The job is not in a state that allows this."""


class JobFailed(JobtuiError):
    """The job ended without completing."""

    def __init__(self, job_id: str, status: str, error: str | None) -> None:
        self.job_id = job_id
        self.status = status
        self.error = error
        super().__init__(f"job {job_id} {status}: {error or 'no error recorded'}")


class PermanentError(Exception):
    """Raised by a task: fail the job now, without retrying it.

    It derives from ``Exception`` (not ``JobtuiError``) because task code raises it, and
    it must behave like any other task failure everywhere but in the retry decision.
    """
