"""A task module that starts a thread when imported (as some SDKs do)."""

import threading
import time

from jobtui import task

threading.Thread(target=lambda: time.sleep(600), name="sdk-flusher", daemon=True).start()


@task
def hello() -> str:
    return "hello"
