"""jobtui.supervisor: the daemon that forks and watches the worker pool (never imports Textual)."""
