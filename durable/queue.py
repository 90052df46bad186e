"""Compatibility for one release: the task paths the previous release wrote.

Tasks queued before the deploy that renamed this module name "durable.queue.advance_task" and
"durable.queue.advance_batch_task"; django-q2 finds a task's function by that path when a worker
runs it. Delete this module in the release after the one that added durable.tasks (then no task
names these paths any more: every process writes the new ones, and a task written before is run
or, once lost, replaced by the poller's redelivery under the new path), together with
tasks.LEGACY_TASK_PATHS.
"""

from durable.tasks import advance_batch_task, advance_task

__all__ = ["advance_batch_task", "advance_task"]
