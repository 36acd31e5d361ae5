"""Which push provider the settings ask for: FCM with credentials, else the logging one."""

import json
import logging

from app.core.config import Settings
from app.notifications.providers import LoggingProvider, PushProvider

logger = logging.getLogger(__name__)


def provider_from_settings(settings: Settings) -> PushProvider:
    credentials_json = (
        json.loads(settings.fcm_credentials_json.get_secret_value())
        if settings.fcm_credentials_json is not None
        else None
    )
    if not (settings.fcm_credentials_file or credentials_json or settings.fcm_endpoint):
        logger.warning(
            "no FCM credentials set (KAIROS_FCM_CREDENTIALS_FILE): pushes are only logged"
        )
        return LoggingProvider()
    # Imported here: firebase-admin and its Google libraries add some 35 MiB to a process,
    # and a process that runs no worker (an API process, say) never sends a push.
    from app.notifications.fcm import FcmConfig, FcmProvider

    return FcmProvider(
        FcmConfig(
            credentials_file=settings.fcm_credentials_file,
            credentials_json=credentials_json,
            project_id=settings.fcm_project_id,
            endpoint=settings.fcm_endpoint,
        )
    )
