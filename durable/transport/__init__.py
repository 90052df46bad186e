"""Transport: hand runs to django-q2 as tasks (through the engine's broker and its one adapter to
django-q2), and the poll loop that enqueues the runs that are due. The tasks' functions, which
the workers run, are in durable/tasks.py."""
