"""Who the caller is: the role of the presented token, so a page can offer only what it may do."""

from __future__ import annotations

from typing import Annotated, Literal, cast

from fastapi import APIRouter

from genperf.api.auth import RequireRead, Role
from genperf.api.schemas import WhoAmIOut

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


@router.get("/whoami", response_model=WhoAmIOut, summary="The role of the presented token")
async def whoami(role: Annotated[Role, RequireRead]) -> WhoAmIOut:
    name = cast(Literal["read", "write", "admin"], role.name.lower())
    return WhoAmIOut(role=name)
