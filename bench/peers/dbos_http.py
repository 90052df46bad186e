"""The one-click JSON API in FastAPI with DBOS workflows, for the HTTP benchmark's peer:
`POST /api/buy/{key}`, `POST /api/cancel/{key}`, `GET /api/status/{key}`, and `GET /healthz`.

Served by uvicorn (`python -m uvicorn bench.peers.dbos_http:app --workers 2`); each worker
process launches DBOS on startup with the databases named by DBOS_BENCH_APP_DB and
DBOS_BENCH_SYS_DB, and a window of DBOS_BENCH_WINDOW seconds. Auth: `Authorization: Token <t>`
looked up in the application database's bench_token table on every request, as DRF's
TokenAuthentication looks its token up. A purchase is the workflow whose id is
"<user>:<key>", started idempotently (DBOS answers a second start with the first workflow);
a buy answers 202 without first reading whether the key was used (ours answers 200 then),
which spares DBOS a query.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

import sqlalchemy as sa
from dbos import DBOS
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from bench.peers import dbos_oneclick

KEY = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _window() -> float:
    return float(os.environ.get("DBOS_BENCH_WINDOW", "5"))


@asynccontextmanager
async def _lifespan(_: FastAPI) -> AsyncIterator[None]:
    dbos_oneclick.launch(os.environ["DBOS_BENCH_APP_DB"], os.environ["DBOS_BENCH_SYS_DB"])
    yield
    DBOS.destroy()


app = FastAPI(lifespan=_lifespan)


class BuyRequest(BaseModel):
    item_id: str


def user(authorization: Annotated[str, Header()] = "") -> str:
    """The username whose token the request carries; 401 otherwise."""
    scheme, _, token = authorization.partition(" ")
    if scheme != "Token" or not token:
        raise HTTPException(401, "Authentication credentials were not provided.")
    with dbos_oneclick.datasource().engine.connect() as conn:
        name = conn.execute(
            sa.text("SELECT username FROM bench_token WHERE token = :t"), {"t": token}
        ).scalar()
    if name is None:
        raise HTTPException(401, "Invalid token.")
    return str(name)


User = Annotated[str, Depends(user)]


def _workflow_id(username: str, key: str) -> str:
    if not KEY.match(key):
        raise HTTPException(400, "A key is 1 to 64 characters of A-Z a-z 0-9 _ -.")
    return f"{username}:{key}"


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.post("/api/buy/{key}", status_code=202)
def buy(key: str, body: BuyRequest, username: User) -> dict[str, Any]:
    workflow_id = _workflow_id(username, key)
    with dbos_oneclick.datasource().engine.connect() as conn:
        known = conn.execute(
            sa.text("SELECT 1 FROM bench_product WHERE item_id = :i"), {"i": body.item_id}
        ).first()
    if known is None:
        raise HTTPException(400, f"no product with item_id {body.item_id!r}")
    window = _window()
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=window)
    dbos_oneclick.start(workflow_id, window, body.item_id)
    return {"key": key, "status": "pending", "item_id": body.item_id, "cancel_until": until}


@app.post("/api/cancel/{key}")
def cancel(key: str, username: User) -> JSONResponse:
    workflow_id = _workflow_id(username, key)
    current = DBOS.get_workflow_status(workflow_id)
    if current is None:
        return JSONResponse({"status": "not_found"}, status_code=404)
    if current.status != "PENDING":
        body = {"key": key, "status": "done", "cancelled": False, "result": current.output}
        return JSONResponse(body, status_code=409)
    DBOS.send(workflow_id, True, topic="cancel")
    return JSONResponse({"key": key, "status": "pending", "cancelled": True})


@app.get("/api/status/{key}")
def status(key: str, username: User) -> JSONResponse:
    current = DBOS.get_workflow_status(_workflow_id(username, key))
    if current is None:
        return JSONResponse({"status": "not_found"}, status_code=404)
    if current.status in ("PENDING", "ENQUEUED"):
        return JSONResponse({"key": key, "status": "pending"})
    return JSONResponse({"key": key, "status": "done", "result": current.output})
