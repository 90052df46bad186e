"""Imported by a process (DURABLE_WORKFLOW_MODULES) that has deploy_flow v2 beside v1."""

from __future__ import annotations

from tests.durable.deploy_workflows import deploy, inserted_step

deploy("deploy_flow", inserted_step, version=2)
