from django.db import migrations, models


def kind_from_reason(apps, schema_editor):
    """Runs blocked for an unknown outcome before the kind existed (0005_run_blocked_kind took
    every reason it did not know for `cannot_replay`): the reason's start says which they are."""
    WorkflowRun = apps.get_model("durable", "WorkflowRun")
    WorkflowRun.objects.filter(blocked_reason__startswith="outcome unknown").update(
        blocked_kind="outcome_unknown"
    )


class Migration(migrations.Migration):

    dependencies = [
        ("durable", "0005_run_blocked_kind"),
        ("durable", "0005_step_outcome_unknown"),
    ]

    operations = [
        migrations.AlterField(
            model_name="workflowrun",
            name="blocked_kind",
            field=models.CharField(
                blank=True,
                choices=[
                    ("cannot_replay", "Code cannot replay it"),
                    ("version_missing", "No worker has its version"),
                    ("outcome_unknown", "A step's outcome stayed unknown"),
                ],
                default="",
                max_length=20,
            ),
        ),
        migrations.RunPython(kind_from_reason, migrations.RunPython.noop),
    ]
