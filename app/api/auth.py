"""Who is calling: a staff API key (with a role) or a participant token.

Both travel as ``Authorization: Bearer <secret>``; staff keys may also use ``X-API-Key``.
The secret's prefix (``ksk_`` staff, ``kpt_`` participant) says which kind it is.
401: no credentials, or unknown or revoked ones. 403: a valid caller who may not do this
(wrong role, a participant on a staff endpoint, a withdrawn participant).
"""

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from app.api.deps import ClockDep, SessionDep
from app.audit.service import Actor
from app.core.secrets import PARTICIPANT_TOKEN_PREFIX, STAFF_KEY_PREFIX
from app.participants.enrollment import authenticate_token
from app.participants.models import Participant, ParticipantToken
from app.participants.status import LOCKED_OUT
from app.staff.models import ApiKey, Role
from app.staff.service import authenticate_api_key

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BearerToken",
    description="A staff API key (`ksk_…`) or a participant token (`kpt_…`, from "
    "`POST /v1/enroll`).",
)
api_key_scheme = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    scheme_name="ApiKeyHeader",
    description="A staff API key (`ksk_…`), created with `kairos create-api-key`.",
)

_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="kairos"'}


@dataclass(frozen=True)
class StaffCaller:
    api_key: ApiKey

    @property
    def role(self) -> Role:
        return self.api_key.role

    @property
    def actor(self) -> Actor:
        return Actor("staff", str(self.api_key.id), str(self.api_key.role))


@dataclass(frozen=True)
class ParticipantCaller:
    participant: Participant
    token: ParticipantToken


Caller = StaffCaller | ParticipantCaller


def _unauthenticated(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers=_CHALLENGE)


def authenticate(
    session: SessionDep,
    clock: ClockDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(bearer_scheme)],
    api_key: Annotated[str | None, Security(api_key_scheme)],
) -> Caller:
    secret = bearer.credentials if bearer is not None else api_key
    if not secret:
        raise _unauthenticated(
            "credentials required: send 'Authorization: Bearer <key or token>' "
            "or 'X-API-Key: <key>'"
        )
    caller: Caller
    if secret.startswith(STAFF_KEY_PREFIX):
        key = authenticate_api_key(session, clock, secret)
        if key is None:
            raise _unauthenticated("the API key is unknown or has been revoked")
        caller = StaffCaller(key)
    elif secret.startswith(PARTICIPANT_TOKEN_PREFIX):
        found = authenticate_token(session, clock, secret)
        if found is None:
            raise _unauthenticated("the participant token is unknown or has been revoked")
        participant, token = found
        if participant.status in LOCKED_OUT:
            raise HTTPException(
                403,
                f"the participant has {participant.status} from the study; the app can "
                "no longer send or read data",
            )
        caller = ParticipantCaller(participant, token)
    else:
        raise _unauthenticated("the credentials are not a Kairos API key or participant token")
    # Persist the last-used bookkeeping now, apart from whatever the route will do (it is
    # written every few minutes at most; otherwise there is nothing to commit).
    if session.dirty:
        session.commit()
    return caller


def require_staff(*roles: Role) -> Callable[[Caller], Awaitable[StaffCaller]]:
    """A dependency that admits staff with one of ``roles`` (admin is always admitted).

    The role checks are ``async`` (they never block), so they cost no thread-pool hop;
    ``authenticate`` queries the database and runs in the pool.
    """
    allowed = {Role.admin, *roles}

    async def dependency(caller: Annotated[Caller, Depends(authenticate)]) -> StaffCaller:
        if not isinstance(caller, StaffCaller):
            raise HTTPException(403, "this endpoint is for study staff; use a staff API key")
        if caller.role not in allowed:
            needed = " or ".join(sorted(allowed))
            raise HTTPException(
                403, f"the {caller.role} role may not do this; it needs the role {needed}"
            )
        return caller

    return dependency


async def require_participant(
    caller: Annotated[Caller, Depends(authenticate)],
) -> ParticipantCaller:
    if not isinstance(caller, ParticipantCaller):
        raise HTTPException(
            403, "this endpoint is for the participant's app; use a participant token"
        )
    return caller


AnyStaff = Annotated[StaffCaller, Depends(require_staff(Role.coordinator, Role.researcher))]
Coordinator = Annotated[StaffCaller, Depends(require_staff(Role.coordinator))]
Researcher = Annotated[StaffCaller, Depends(require_staff(Role.researcher))]
Admin = Annotated[StaffCaller, Depends(require_staff())]
Me = Annotated[ParticipantCaller, Depends(require_participant)]
